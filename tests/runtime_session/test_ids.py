"""Time-ordered ids (:mod:`meerkat_runtime.vocab.ids`): unique, strictly increasing, UUID v7 text,
and a forked child never mints from the parent's unused random bytes."""

from __future__ import annotations

import os
import signal
import threading
import uuid

import pytest
from meerkat_runtime.vocab import ids

RANDOM_BITS = (1 << 62) - 1
FORKS = 100
CHILD_SECONDS = 10


def test_ids_are_unique_increasing_version_7_uuids_across_several_random_blocks() -> None:
    minted: list[str] = [ids.new_input_id() for _ in range(3 * ids._RANDOM_BLOCK + 5)]
    minted += [str(ids.uuid7()), ids.new_run_id(), ids.new_epoch_id(), ids.new_session_id()]
    assert len(set(minted)) == len(minted)
    assert minted == sorted(minted)
    for text in minted:
        value = uuid.UUID(text)
        assert str(value) == text  # the canonical lower-case 8-4-4-4-12 form
        assert value.version == 7
        assert value.variant == uuid.RFC_4122
    randoms = {uuid.UUID(text).int & RANDOM_BITS for text in minted}
    assert len(randoms) == len(minted)


def _mint_one_id_and_exit() -> None:
    """In a forked child: mint one id within the alarm, then leave at once (status 0 if it is a
    version 7 UUID; killed by the alarm if minting hangs)."""
    code = 1
    try:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(CHILD_SECONDS)
        code = 0 if uuid.UUID(ids.new_input_id()).version == 7 else 1
    finally:
        os._exit(code)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_mint_the_random_bits_of_the_parent() -> None:
    """The parent holds unused random values when it forks; the child's next id and the
    parent's next id must not share them."""
    ids.new_input_id()  # the parent now holds a block of unused random values
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id, then leave at once
        try:
            os.close(read)
            os.write(write, ids.new_input_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    parent_next = ids.new_input_id()
    with os.fdopen(read, "rb") as pipe:
        child_next = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert uuid.UUID(child_next).version == 7
    assert uuid.UUID(child_next).int & RANDOM_BITS != uuid.UUID(parent_next).int & RANDOM_BITS, (
        child_next,
        parent_next,
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_another_thread_mints_ids_can_mint_an_id() -> None:
    """A thread mints ids without pause while this thread forks: whatever the minting thread
    held at the fork (the id lock among it), each child mints an id of its own and exits at
    once; a child stuck on a lock held by a thread it does not have is killed by its alarm."""
    stop = threading.Event()

    def mint() -> None:
        while not stop.is_set():
            ids.new_input_id()

    minter = threading.Thread(target=mint, daemon=True)
    minter.start()
    try:
        for _ in range(FORKS):
            pid = os.fork()
            if pid == 0:  # the child: one id within the alarm, then leave at once
                _mint_one_id_and_exit()
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0, f"child ended with status {status}"
    finally:
        stop.set()
        minter.join()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_the_id_lock_is_held_can_mint_an_id() -> None:
    """The fork happens with the id lock held (as by a thread minting at that moment): the child
    does not inherit a lock that nobody will release."""
    with ids._lock:
        pid = os.fork()
        if pid == 0:
            _mint_one_id_and_exit()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"child ended with status {status}"


def test_threads_minting_at_once_never_share_random_bits() -> None:
    """Several threads run out of random values at about the same time and refill at once: each
    value is handed out once (every id's random bits differ)."""
    per_thread = 2 * ids._RANDOM_BLOCK
    minted: list[list[str]] = []
    start = threading.Barrier(4)

    def mint() -> None:
        start.wait()
        minted.append([ids.new_input_id() for _ in range(per_thread)])

    threads = [threading.Thread(target=mint) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [text for batch in minted for text in batch]
    assert len(every) == 4 * per_thread
    assert len({uuid.UUID(text).int & RANDOM_BITS for text in every}) == len(every)
