"""Which z3 invariant proves each check of the executable model, and why the others have none.

``PYTHON_TO_Z3[machine][check]`` is either a tuple of z3 obligation names (``inductive:`` /
``step:`` without the prefix) that together state the check for any number of ids, or a string
explaining why no z3 invariant states it. ``Z3_ONLY[machine][name]`` explains each z3 invariant
no model check corresponds to. A test keeps both tables complete: every invariant and step
check of the models, every invariant and step property of the encodings.
"""

from __future__ import annotations

Mapping_ = dict[str, tuple[str, ...] | str]

_NO_STORE = "the encodings have no store: memory is what recovery gives, so this is not stated there"

PYTHON_TO_Z3: dict[str, Mapping_] = {
    "ops": {
        "terminal_outcome_matches": ("op.terminal_outcome",),
        "peer_ready_consistent": ("op.peer_ready",),
        "kind_known": ("op.kind_known",),
        "active_count_matches": (
            "registry.active_count",
            "registry.registration_rank",
            "registry.registration_order",
        ),
        "max_concurrent_respected": ("registry.max_concurrent",),
        "completed_order_bounded": ("registry.completed_order", "registry.retention_bound"),
        "terminal_ops_in_completed_order": ("registry.completed_order",),
        "barrier_members_tracked": ("registry.barrier_members", "registry.barrier_pending"),
        "feed_sequences_ordered": ("feed.watermark", "feed.seq_issued", "feed.seq_distinct"),
        "watchers_resolved": ("op.watchers_resolved",),
        "acknowledged_terminal_ops_recoverable": _NO_STORE
        + " (the encoding recovers from the terminal part of memory; this check shows it equal to the last write)",
        "terminate_order": "a step rule: terminate_owner's effect issues sequence numbers in rank order, and the "
        "differential check compares it with the model on every state",
        "watchers_released": ("op.watchers_resolved",),
        "retention_after_recovery": "a step rule: crash_recover's effect keeps the newest max_completed (retention "
        "by sequence number), compared with the model by the differential check",
        "transitions_match_declarations": "the table:ops and drift:ops obligations: the encoding's rows are exactly "
        "what its formulas allow and equal the model's declarations",
        "steps_raise_nothing": "z3 formulas cannot raise; the totality obligations show every enabled step has a "
        "post-state",
    },
    "session": {
        "input_in_exactly_one_state": ("input.queued_in_lane", "input.untracked_is_clean", "input.one_per_run"),
        "queued_exactly_in_lanes": ("input.queued_in_lane", "input.lane_positions"),
        "staged_belong_to_current_run": ("input.in_current_run", "input.one_per_run"),
        "idempotency_key_unique": ("input.idempotency_keys_unique", "input.one_live_per_key"),
        "running_iff_current_run": ("runtime.running_has_run", "runtime.run_phase"),
        "current_run_has_pre_run_phase": ("runtime.run_phase", "runtime.running_has_run"),
        "attached_iff_loop": ("runtime.loop_phase",),
        "destroyed_is_absorbing": ("runtime.destroyed_absorbing",),
        "attempts_bounded": ("input.attempts",),
        "pending_waiter_has_live_input": "completion handles are not encoded",
        "accepted_inputs_are_stored": _NO_STORE,
        "recovery_matches_memory": _NO_STORE
        + " (crash, unregister and a failed snapshot apply the recovery rules in the effect itself)",
        "record_is_durable_phase": _NO_STORE,
        "no_active_input_when_stopped": ("input.quiet_when_closed",),
        "requeue_position": "a step rule: the run-end effects put the input at the back (next_pos) or head (front) "
        "of its lane, compared with the model by the differential check",
        "transitions_match_declarations": "the table:session and drift:session obligations",
        "steps_raise_nothing": "z3 formulas cannot raise; the totality obligations show every enabled step has a "
        "post-state",
    },
    "ownership": {
        "no_input_consumed_twice": ("input.consumed_once",),
        "consumed_stays_consumed": ("input.consumed_stays_consumed",),
        "halt_never_undone": ("runtime.halt_never_undone",),
        "acknowledged_inputs_recoverable": "about the whole session (recovery reads every row and the lane "
        "order); the encoding keeps one status per input and no lanes",
        "owner_agrees_with_store": "the encoding states its per-input part, owner.agrees_with_store (the "
        "holder's memory and the store agree on each input's status and on the record); the rest is every "
        "session invariant, which needs the session encoding over a store",
        "worker_memory_well_formed": "the session invariants of one memory: the session encoding proves them "
        "for one memory; the ownership encoding keeps one status per input",
        "steps_raise_nothing": "z3 formulas cannot raise; total:ownership shows every enabled step has a post-state",
        "completion_seqs_never_reused": ("op.seqs_never_reused", "op.store_numbers"),
        "op_terminal_never_undone": ("op.terminal_never_undone",),
        "owner_registry_agrees_with_store": ("op.owner_registry_agrees",),
        "published_outcome_is_stored": "about a registry in doubt (a terminal write whose outcome is unknown, "
        "settled by the read-back): the encoding has no pending write, and states with one are not encoded",
    },
}

Z3_ONLY: dict[str, dict[str, str]] = {
    "ops": {
        "op.typed": "value ranges: the model's fields are typed by construction",
        "op.untracked_is_clean": "an untracked id is the empty slot () in the model",
        "registry.registration_rank": "the encoding's form of the model's registration order tuple",
        "registry.registration_order": "the encoding's form of the model's registration order tuple",
    },
    "session": {
        "runtime.typed": "value ranges: the model's fields are typed by construction",
        "input.typed": "value ranges: the model's fields are typed by construction",
        "input.at_rest": "the model never stores Accepted/Applied phases between steps (by construction)",
        "input.terminal_absorbing": "the model's declarations (transitions_match_declarations) allow no move out "
        "of a terminal phase",
    },
    "ownership": {
        "ownership.typed": "value ranges: the model's fields are typed by construction",
        "lease.tokens": "strengthening: a worker is registered iff it holds a token, never above the lease's",
        "worker.unregistered_is_clean": "an unregistered worker is Worker(None, ...) in the model",
        "owner.agrees_with_store": "strengthening, the per-input part of owner_agrees_with_store: the fence "
        "argument (a landed write comes from the holder, whose memory agrees with the store)",
    },
}
