"""The cyclic garbage collector held off while a restart builds a large backlog in memory.

Recovering a session creates a few objects per stored row (the row, its record, dictionary
entries), all of them long-lived and none in a reference cycle. With the collector running,
every few hundred of them start a collection that walks the young objects and, as the heap
grows, the older generations too: with 100,000 pending rows that is a sizeable share of the
restart for no garbage found. :func:`collection_paused` turns automatic collection off for the
duration of a block and back on after it (only if it was on before the first of any nested or
concurrent pauses), so nothing is collected less often than before once it ends.

When the last pause ends, the objects made meanwhile (still counted as young) are moved to the
oldest generation, where the survivors of a few collections would end up anyway, without
walking them (``gc.freeze`` then ``gc.unfreeze``): otherwise the first young collection after
the pause would walk the whole backlog once (about 70 ms for 100,000 records). Nothing is lost
by it: an object among them that becomes cyclic garbage is found by the next full collection.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_was_enabled = False


@contextmanager
def collection_paused() -> Iterator[None]:
    """Automatic garbage collection off inside the block (process-wide; pauses may nest and
    overlap across threads: the collector comes back on when the last one ends, if it was on
    when the first began)."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                gc.freeze()  # every tracked object into the permanent generation, then
                gc.unfreeze()  # back into the oldest one (a list splice, nothing walked)
                if _was_enabled:
                    gc.enable()
