"""The explorer's data: compact, independent of exploration order, and faithful to the exploration."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from meerkat_model.diagrams.explorer_data import ExplorerTooLargeError, explorer_graph, pack, unpack
from meerkat_model.diagrams.explorer_page import build_explorer_page
from meerkat_model.machine import Bounds
from meerkat_model.verifier import explore
from meerkat_model.verifier.report import plain

from tests.diagrams.fakes import DoorMachine
from tests.verifier.toys import DrainIsDropping, Livelock

DIAGRAMS = Path(__file__).resolve().parents[2] / "diagrams"


@pytest.mark.parametrize("numbers", [[], [0], [63], [64], [0, 5, 4095, 4096, 262143, 7], list(range(300))])
def test_pack_round_trip(numbers: list[int]) -> None:
    packed = pack(numbers)
    assert unpack(packed) == numbers
    assert len(packed["d"]) == packed["w"] * len(numbers)


def test_pack_refuses_negative_numbers() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        pack([1, -1])


def _door(bounds: Bounds | None = None) -> tuple[DoorMachine, Any, dict[str, Any]]:
    machine = DoorMachine(bounds)
    exploration = explore(machine)
    data = explorer_graph("door", exploration, profile="t", bounds={"max_opens": machine.max_opens})
    return machine, exploration, data


def _described(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows, names, nf = unpack(data["rows"]), [f["name"] for f in data["fields"]], len(data["fields"])
    return [
        {names[f]: data["values"][rows[s * nf + f] - 1] for f in range(nf) if rows[s * nf + f]}
        for s in range(data["states"])
    ]


def test_every_state_is_there_with_every_described_field() -> None:
    machine, exploration, data = _door()
    assert data["states"] == exploration.states
    described = _described(data)
    expected = sorted(exploration.state_list, key=lambda s: (exploration.depths[exploration.index_of(s)], repr(s)))
    assert described == [plain(dict(machine.describe(s))) for s in expected]
    assert [f["name"] for f in data["fields"]] == ["door_status", "opens", "key"]


def test_edges_are_every_action_of_the_exploration() -> None:
    machine, exploration, data = _door()
    order = sorted(range(exploration.states), key=lambda i: (exploration.depths[i], repr(exploration.state_list[i])))
    new = {old: index for index, old in enumerate(order)}
    expected = {(new[a], machine.action_label(x), t, new[b]) for a, b, x, t in exploration.edge_list}
    start, target, kind = unpack(data["out_start"]), unpack(data["out_target"]), unpack(data["out_kind"])
    found = set()
    for s in range(data["states"]):
        for e in range(start[s], start[s + 1]):
            label, transition = data["kinds"][kind[e]]
            found.add((s, data["labels"][label], data["transitions"][transition], target[e]))
    assert found == expected and data["edges"] == len(expected)


def test_parents_form_a_shortest_path_tree() -> None:
    _, _, data = _door()
    depths, parents = unpack(data["depths"]), [p - 1 for p in unpack(data["parents"])]
    start, target = unpack(data["out_start"]), unpack(data["out_target"])
    assert parents[0] == -1 and depths[0] == 0
    for s in range(1, data["states"]):
        p = parents[s]
        assert depths[p] == depths[s] - 1
        assert s in target[start[p] : start[p + 1]]
    assert depths == sorted(depths)


def test_the_output_does_not_depend_on_the_exploration_order() -> None:
    _, _, first = _door()
    exploration = explore(DoorMachine())
    # The same graph found in another order: states numbered backwards, edges listed backwards.
    n = exploration.states
    back = [n - 1 - i for i in range(n)]
    exploration.state_list = list(reversed(exploration.state_list))
    exploration.depths = list(reversed(exploration.depths))
    exploration.edge_list = [(back[a], back[b], x, t) for a, b, x, t in reversed(exploration.edge_list)]
    exploration.stuck = [back[i] for i in exploration.stuck]
    exploration.stranded = [back[i] for i in exploration.stranded or ()]
    exploration.stranded_without_give_ups = [back[i] for i in exploration.stranded_without_give_ups or ()]
    second = explorer_graph("door", exploration, profile="t", bounds={"max_opens": 2})
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_violations_stuck_states_invariants_and_declared_transitions() -> None:
    _, exploration, data = _door(Bounds({"buggy": 1}))
    described = _described(data)
    violating = {v["state"] for v in data["violations"]}
    assert violating == {s for s, d in enumerate(described) if d["opens"] > 1}
    assert {v["invariant"] for v in data["violations"]} == {"opens_bounded"}
    assert data["invariants"] == [
        {"name": "opens_bounded", "description": "the door is opened at most the limit", "violated": True}
    ]
    assert {d["name"] for d in data["declared"]} == {"install", *data["transitions"]}
    assert data["dead"] == list(exploration.coverage.dead)


def test_stranded_states_are_listed_and_the_page_filters_them() -> None:
    exploration = explore(Livelock())
    data = explorer_graph("livelock", exploration, profile="t", bounds={})
    described = _described(data)
    assert [described[s]["job"] for s in data["stranded"]] == ["queued", "spinning"]
    assert data["stuck"] == []
    assert explorer_graph("livelock", explore(Livelock(drain=True)), profile="t", bounds={})["stranded"] == []
    incomplete = explore(Livelock(), max_states=2)
    assert explorer_graph("livelock", incomplete, profile="t", bounds={})["stranded"] == []
    page = build_explorer_page([data], intro="")
    assert 'data-query="is:stranded"' in page and "is:stranded" in page


def test_states_that_need_a_give_up_are_listed_apart_from_stranded_ones() -> None:
    data = explorer_graph("dropping", explore(DrainIsDropping(drain=True)), profile="t", bounds={})
    described = _described(data)
    assert [described[s]["job"] for s in data["needs_give_up"]] == ["queued", "spinning"]
    assert data["stranded"] == []
    # a stranded state is listed as stranded only, not as needing a give-up
    assert explorer_graph("livelock", explore(Livelock()), profile="t", bounds={})["needs_give_up"] == []
    assert explorer_graph("door", explore(Livelock(drain=True)), profile="t", bounds={})["needs_give_up"] == []
    incomplete = explore(DrainIsDropping(drain=True), max_states=2)
    assert explorer_graph("dropping", incomplete, profile="t", bounds={})["needs_give_up"] == []
    page = build_explorer_page([data], intro="")
    assert 'data-query="is:needs-give-up"' in page and "<code>is:needs-give-up</code>" in page


def test_a_graph_above_the_limit_is_refused_with_the_numbers() -> None:
    exploration = explore(DoorMachine())
    with pytest.raises(ExplorerTooLargeError, match=rf"{exploration.states:,} states, above the explorer's limit of 5"):
        explorer_graph("door", exploration, profile="t", bounds={}, state_limit=5)


def test_every_field_of_the_committed_explorer_says_what_it_means() -> None:
    page = (DIAGRAMS / "explorer.html").read_text()
    raw = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>', page, re.DOTALL)
    assert raw is not None
    document = json.loads(raw.group(1))
    assert [m["key"] for m in document["machines"]] == ["ops", "session"]
    for machine in document["machines"]:
        undocumented = [f["name"] for f in machine["fields"] if not f["doc"]]
        assert undocumented == [], f"{machine['key']}: describe() fields without a meaning: {undocumented}"
