"""The damage sweep on a real file set (a session history written through the runtime by a
process that then exits without closing): bits flipped in database pages (also inside the keys
of index pages), in log frames and in the wal-index, and the log cut at many offsets. Every case
recovers everything acknowledged or is refused with a typed error; with the protections off the
same sweep finds silent losses. ``scripts/damage_sweep.py`` runs a bigger sweep."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from meerkat_conformance.stores.damage_sweep import FileSet, cases, make_file_set, sweep

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> FileSet:
    return make_file_set(tmp_path_factory.mktemp("damage") / "pristine", sessions=2, inputs=4, ops=2)


def test_every_case_recovers_everything_acknowledged_or_is_refused(pristine: FileSet, tmp_path: Path) -> None:
    found = cases(pristine, random.Random(13), flips_per_page=2, wal_flips=60, shm_flips=8, key_flips=60, cut_frames=40)
    stats = sweep(pristine, found, tmp_path)
    print(stats.summary(), dict(stats.refusals))
    assert stats.outcomes["lost"] == 0, stats.examples.get("lost")
    assert stats.outcomes["error"] == 0, stats.examples.get("error")
    assert stats.cases == len(found) > 120
    assert stats.by_kind["page"]["recovered"] > 0 and stats.by_kind["page"]["refused"] > 0
    assert stats.by_kind["wal"]["refused"] > 0 and stats.by_kind["truncate"]["refused"] > 0
    assert stats.by_kind["truncate"]["recovered"] > 0  # the cut at the log's end loses nothing
    assert stats.by_kind["shm"]["recovered"] > 0  # a damaged wal-index is rebuilt from the log


def test_without_the_protections_the_same_damage_is_lost_silently(pristine: FileSet, tmp_path: Path) -> None:
    found = cases(pristine, random.Random(13), flips_per_page=0, wal_flips=10, shm_flips=0, key_flips=0, cut_frames=8)
    stats = sweep(pristine, found, tmp_path, protections=False)
    print(stats.summary())
    assert stats.outcomes["lost"] > 0, stats.summary()
