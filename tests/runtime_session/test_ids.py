"""Time-ordered ids (:mod:`meerkat_runtime.vocab.ids`): unique, strictly increasing, UUID v7 text,
and a forked child never mints from the parent's unused random bytes."""

from __future__ import annotations

import os
import uuid

import pytest
from meerkat_runtime.vocab import ids

RANDOM_BITS = (1 << 62) - 1


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
