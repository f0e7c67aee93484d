"""Plain-data views of a registry state: ``observe_state`` (what the conformance harness
compares with the runtime) and ``describe_state`` (field -> value for traces and diffs)."""

from __future__ import annotations

from typing import Any

from meerkat_model.ops.payloads import PayloadDomains
from meerkat_model.ops.state import NO_OUTCOME, OpRecord, RegistryState
from meerkat_model.vocab.statuses import OpKind, OpStatus


def decoded(kind: type[OpStatus] | type[OpKind], value: Any) -> str:
    """The lower-case name of ``value`` in ``kind``, or the raw value in angle brackets when
    it names none (a malformed state is shown as it is, never refused)."""
    try:
        return kind(value).name.lower()
    except (ValueError, TypeError):
        return f"<{value!r}>"


def _outcome(domains: PayloadDomains, outcome: int, payload: int) -> Any:
    view = domains.views.get((outcome, payload))
    return view if view is not None else (decoded(OpStatus, outcome), f"<payload {payload!r}>")


def op_view(rec: OpRecord, domains: PayloadDomains) -> dict[str, Any]:
    return {
        "status": decoded(OpStatus, rec.status),
        "kind": decoded(OpKind, rec.kind),
        "peer_ready": rec.peer_ready,
        "progress_count": rec.progress,
        "watcher_count": rec.watchers,
        "terminal_outcome": _outcome(domains, rec.outcome, rec.payload) if rec.outcome != NO_OUTCOME else None,
        "completion_seq": rec.seq or None,
    }


def observe_state(state: RegistryState, domains: PayloadDomains) -> dict[str, Any]:
    """``ops`` (id -> view, tracked ids only), ``completed_order``, ``active_count``,
    ``wait_active`` / ``wait_operation_ids``, ``feed`` ((seq, id, outcome) oldest first),
    ``watermark`` and ``next_seq``."""
    return {
        "ops": {i: op_view(rec, domains) for i, rec in enumerate(state.ops) if isinstance(rec, OpRecord)},
        "completed_order": list(state.completed),
        "active_count": state.active_count,
        "wait_active": bool(state.barrier),
        "wait_operation_ids": list(state.barrier),
        "feed": [(s, i, _outcome(domains, o, p)) for (s, i, _k, o, p) in state.feed],
        "watermark": state.watermark,
        "next_seq": state.next_seq,
    }


def describe_state(state: RegistryState, domains: PayloadDomains) -> dict[str, Any]:
    """Flat field -> value view: one entry per tracked operation plus registry fields."""
    out: dict[str, Any] = {}
    for i, rec in enumerate(state.ops):
        if isinstance(rec, OpRecord):
            v = op_view(rec, domains)
            flags = [v["kind"]]
            if rec.peer_ready:
                flags.append("peer_ready")
            if rec.progress:
                flags.append(f"progress={rec.progress}")
            if rec.watchers:
                flags.append(f"watchers={rec.watchers}")
            text = f"{v['status']} ({', '.join(flags)})"
            if v["terminal_outcome"] is not None:
                text += f" outcome={v['terminal_outcome']} seq={rec.seq}"
            out[f"op[{i}]"] = text
        else:
            out[f"op[{i}]"] = "absent"
    out["registration_order"] = state.active_order
    out["active_count"] = state.active_count
    out["completed_order"] = state.completed
    out["barrier"] = state.barrier or None
    out["feed_seqs"] = tuple(e[0] for e in state.feed)
    out["watermark"] = state.watermark
    out["next_seq"] = state.next_seq
    if state.disk:
        disk = state.disk
        on_disk = tuple(i for i, r in enumerate(disk.ops) if r)
        out["disk"] = f"ops={on_disk} completed={disk.completed} next_seq={disk.next_seq}"
    else:
        out["disk"] = None
    return out
