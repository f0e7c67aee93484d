"""The planted runtime bugs of the mutation benchmark: each one a realistic mistake in
``meerkat_runtime``, written as a textual patch (``before`` replaced by ``after`` in one file).

A mutant names the area it breaks (``area``) and the rule it breaks (``what``). ``before`` must
occur exactly once in its file, so a change to the runtime that moves the code makes the
catalog fail loudly (:func:`~meerkat_conformance.mutants.planting.check_catalog`, run by the
test suite) instead of planting nothing. ``equivalent`` marks a mutant shown to change no
observable behaviour, with the reason; it is still run, but left out of the kill rates.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Mutant:
    """One planted bug: in ``path`` (relative to the ``meerkat_runtime`` package) replace the
    single occurrence of ``before`` by ``after``."""

    id: str
    area: str
    path: str
    before: str
    after: str
    what: str
    equivalent: str = ""


_RUN_LOOP = "session/core/run_loop.py"
_ADMISSION = "session/core/admission.py"
_CONTROL = "session/core/control.py"
_RECOVERY = "session/core/recovery.py"
_OPS_CORE = "ops/core.py"

MUTANTS: tuple[Mutant, ...] = (
    # --- retry budget and requeue position ----------------------------------------------------
    Mutant(
        "retry-budget-off-by-one",
        "retry budget",
        _RUN_LOOP,
        "if record.attempts >= self.max_attempts:",
        "if record.attempts > self.max_attempts:",
        "an input is abandoned after its 4th failed attempt, not its 3rd",
    ),
    Mutant(
        "requeue-at-head",
        "requeue position",
        _RUN_LOOP,
        'requeued", now)\n                plan.append_to_lane(record)',
        'requeued", now)\n                plan.prepend_to_lane(record)',
        "a failed run's input goes back to the head of its lane, not the back",
    ),
    Mutant(
        "requeue-keeps-position",
        "requeue position",
        _RUN_LOOP,
        "record.admission_seq = plan.take_admission_seq()",
        "record.admission_seq = record.admission_seq",
        "a requeued input keeps its old admission position (recovery puts it back in front)",
    ),
    Mutant(
        "boundary-failure-requeues-at-back",
        "requeue position",
        _RUN_LOOP,
        "plan.prepend_to_lane(before)",
        "plan.append_to_lane(before)",
        "after a failed boundary commit the input goes to the back of its lane, not the head",
    ),
    Mutant(
        "boundary-failure-keeps-loop",
        "run loop",
        _RUN_LOOP,
        "plan.registration = RegistrationPhase.QUEUING\n        return plan",
        "return plan",
        "a failed boundary commit leaves the loop attached",
        equivalent="the shell detaches the loop after a failed boundary commit (RuntimeSession.detach sets the "
        "registration to Queuing itself), so the plan's own assignment changes nothing",
    ),
    Mutant(
        "success-drops-result",
        "run loop",
        _RUN_LOOP,
        "plan.resolve(input_id, outcome)",
        "plan.resolve(input_id, CompletedWithoutResult())",
        "a successful run's waiters are told 'completed without result' even when it had one",
    ),
    Mutant(
        "interrupt-tells-abandoned",
        "run loop",
        _RUN_LOOP,
        "record.outcome = CancelledOutcome()",
        'record.outcome = AbandonedOutcome("cancelled")',
        "an interrupted run's waiters are told 'abandoned', not 'cancelled'",
    ),
    # --- supersession, coalescing, deduplication ----------------------------------------------
    Mutant(
        "supersede-writes-new-row-only",
        "supersession",
        _ADMISSION,
        "displaced = plan.put(candidate.copy())",
        "displaced = candidate.copy()",
        "a superseding accept writes (and installs) only the new row; the old one stays Queued",
    ),
    Mutant(
        "supersede-ignores-kind",
        "supersession",
        _ADMISSION,
        "if record.input.kind == item.kind and record.input.header.supersession_key == key:",
        "if record.input.header.supersession_key == key:",
        "an input supersedes a queued input of another kind with the same key",
    ),
    Mutant(
        "coalesce-as-supersede",
        "supersession",
        _ADMISSION,
        "if wants_coalesce(item):",
        "if False:",
        "a coalescing input supersedes instead (outcome Superseded, not Coalesced)",
    ),
    Mutant(
        "dedupe-off",
        "deduplication",
        _ADMISSION,
        "existing = ledger.keys.get(header.idempotency_key)",
        "existing = None",
        "a reused idempotency key is accepted again instead of deduplicated",
    ),
    Mutant(
        "idempotency-key-not-indexed",
        "deduplication",
        _ADMISSION,
        "plan.keys[header.idempotency_key] = header.id",
        "pass",
        "an accepted input's idempotency key is not remembered (until recovery rebuilds the index)",
    ),
    # --- control: retire, reset, recycle, stop, destroy, interrupt ----------------------------
    Mutant(
        "retire-noop-writes",
        "destroy/stop/reset",
        _CONTROL,
        'self.draft("retire_noop")',
        'self.draft("retire_noop", LifecycleWrite())',
        "retiring a retired runtime writes the lifecycle record (and fails when the store does)",
    ),
    Mutant(
        "retire-abandons-direct-run",
        "destroy/stop/reset",
        _CONTROL,
        "skip = self.current_run.input_ids if self.current_run else ()",
        "skip = ()",
        "retiring without a loop abandons the input of a run accept_input_and_run started",
    ),
    Mutant(
        "reset-keeps-waiters",
        "destroy/stop/reset",
        _CONTROL,
        'plan.terminate_all = "runtime reset"',
        "pass",
        "a reset leaves the waiters of the inputs it abandoned pending",
    ),
    Mutant(
        "reset-during-run",
        "destroy/stop/reset",
        _CONTROL,
        "if self.current_run is not None or self.phase in (RuntimeState.RUNNING, RuntimeState.STOPPED):",
        "if self.phase is RuntimeState.STOPPED:",
        "reset is allowed with a run in flight",
    ),
    Mutant(
        "recycle-refuses-retired",
        "destroy/stop/reset",
        _CONTROL,
        "allowed = (RuntimeState.IDLE, RuntimeState.ATTACHED, RuntimeState.RETIRED)",
        "allowed = (RuntimeState.IDLE, RuntimeState.ATTACHED)",
        "a retired runtime cannot be recycled",
    ),
    Mutant(
        "halt-keeps-loop",
        "destroy/stop/reset",
        _CONTROL,
        "plan.registration = RegistrationPhase.QUEUING\n        plan.terminate_all",
        "plan.terminate_all",
        "stop and destroy leave the loop attached",
        equivalent="stop and destroy detach the loop in the shell right after their commit (RuntimeSession.detach "
        "sets the registration to Queuing), so the plan's own assignment changes nothing",
    ),
    Mutant(
        "halt-keeps-inputs",
        "destroy/stop/reset",
        _CONTROL,
        "abandoned = self._abandon(plan, kind, now)",
        "abandoned: list[InputId] = []",
        "stop and destroy leave the queued inputs Queued",
    ),
    Mutant(
        "abandon-leaves-lane",
        "destroy/stop/reset",
        _CONTROL,
        "if current.phase is S.QUEUED:\n                plan.remove_from_lane(current)",
        "if False:\n                plan.remove_from_lane(current)",
        "an abandoned input stays in its lane",
    ),
    Mutant(
        "interrupt-trusts-executor",
        "interrupt",
        "session/control_commands.py",
        "apply_task.cancel()",
        "pass",
        "interrupt relies on the executor honouring CancelCurrentRun and never cancels the apply",
    ),
    # --- durable before acknowledged ----------------------------------------------------------
    Mutant(
        "failed-write-applied",
        "durable-before-ack",
        "session/commit.py",
        "except Exception as exc:\n        raise error(what, exc) from exc",
        "except Exception as exc:\n        session.core.apply(plan)\n        raise error(what, exc) from exc",
        "a failed session write still changes memory",
    ),
    Mutant(
        "rows-marked-written-early",
        "durable-before-ack",
        "session/persistence.py",
        "rt, fence, rows = self.runtime_id, self.claim.fence, written.rows\n",
        "rt, fence, rows = self.runtime_id, self.claim.fence, written.rows\n"
        "        self.written.update({r.input_id: w.payload for r, w in zip(written.records, rows, strict=True)})\n",
        "a commit marks its rows written before the write succeeded (a failed commit's rows are skipped later)",
    ),
    Mutant(
        "dirty-rows-skipped",
        "durable-before-ack",
        "session/persistence.py",
        "covered = set(ledger.dirty)\n        covered.update(plan.records)\n        records",
        "covered = set(plan.records)\n        records",
        "a lifecycle commit writes only the plan's own rows, not the rows changed in memory meanwhile",
    ),
    Mutant(
        "ops-failed-write-acknowledged",
        "durable-before-ack",
        "ops/registry.py",
        'raise PersistenceFailed(f"{plan.subject} was rolled back: the durable write failed: {exc}") from exc',
        "del exc",
        "an ops call whose durable write failed is acknowledged and applied",
    ),
    # --- recovery -----------------------------------------------------------------------------
    Mutant(
        "recovery-counts-interrupted-run",
        "recovery",
        _RECOVERY,
        "rec.attempts = max(rec.attempts - 1, 0)  # the interrupted run is not counted",
        "rec.attempts = rec.attempts",
        "a run interrupted by a crash counts against the retry budget",
    ),
    Mutant(
        "recovery-consumes-without-receipt",
        "recovery",
        _RECOVERY,
        "if run_id is not None and seq is not None and receipt_exists(run_id, seq):",
        "if run_id is not None and seq is not None:",
        "an applied input whose boundary receipt is missing is recovered Consumed, not replayed",
    ),
    Mutant(
        "recovery-order",
        "recovery order",
        _RECOVERY,
        'queued.sort(key=attrgetter("admission_seq"))',
        'queued.sort(key=attrgetter("admission_seq"), reverse=True)',
        "recovered inputs are queued newest first",
    ),
    Mutant(
        "recovery-reuses-admission-seq",
        "recovery order",
        _RECOVERY,
        "top = max(top, rec.admission_seq + 1)",
        "top = max(top, rec.admission_seq)",
        "after recovery the next input reuses the admission position of the newest stored one",
    ),
    # --- ops registry -------------------------------------------------------------------------
    Mutant(
        "ops-max-concurrent-off-by-one",
        "ops rules",
        _OPS_CORE,
        "if limit is not None and self.active_count >= limit:",
        "if limit is not None and self.active_count > limit:",
        "one operation more than max_concurrent may be registered",
    ),
    Mutant(
        "ops-peer-ready-while-provisioning",
        "ops rules",
        _OPS_CORE,
        "if rec.status not in _RUNNING_OR_RETIRING:",
        "if rec.status not in _ACTIVE:",
        "peer_ready is accepted while the operation is still provisioning",
    ),
    Mutant(
        "ops-complete-while-provisioning",
        "ops rules",
        _OPS_CORE,
        'Completed(result), _RUNNING_OR_RETIRING, "complete_operation"',
        'Completed(result), _ACTIVE, "complete_operation"',
        "an operation still provisioning may complete",
    ),
    Mutant(
        "ops-terminate-skips-provisioning",
        "ops rules",
        _OPS_CORE,
        "targets = [rec for rec in self.ops.values() if rec.status in _ACTIVE]",
        "targets = [rec for rec in self.ops.values() if rec.status in _RUNNING_OR_RETIRING]",
        "terminate_owner leaves provisioning operations alive",
    ),
    Mutant(
        "ops-wait-all-counts-terminal",
        "wait_all",
        _OPS_CORE,
        "remaining = {oid for oid in ids if self.ops[oid].outcome is None}",
        "remaining = set(ids)",
        "wait_all on operations already terminal opens a barrier that never resolves",
    ),
    Mutant(
        "ops-wait-cancel-skips-retention",
        "wait_all",
        _OPS_CORE,
        "evicted = self._retain_now()",
        "evicted: list[str] = []",
        "cancelling a barrier does not release the completed operations it pinned",
    ),
    Mutant(
        "ops-collect-takes-pinned",
        "wait_all",
        _OPS_CORE,
        "if oid in pinned:\n                continue",
        "if False:\n                continue",
        "collect_completed removes operations a pending wait_all still pins",
    ),
    Mutant(
        "ops-retention-keeps-one-less",
        "retention",
        "ops/retention.py",
        "- len(self.evicted) - self._max",
        "- len(self.evicted) - self._max + 1",
        "retention keeps one completed operation fewer than max_completed",
    ),
    Mutant(
        "ops-retention-ignores-pins",
        "retention",
        "ops/retention.py",
        "if operation_id in pinned or operation_id in gone:",
        "if operation_id in gone:",
        "retention evicts operations a pending wait_all pins",
    ),
    Mutant(
        "ops-recovery-keeps-active",
        "recovery",
        _OPS_CORE,
        "if op.status.is_terminal:\n                core.ops[op.id]",
        "if True:\n                core.ops[op.id]",
        "operations that were still active come back after a crash",
    ),
    Mutant(
        "ops-recovery-skips-retention",
        "recovery",
        _OPS_CORE,
        "core.pending_evictions.extend(core._retain_now())",
        "pass",
        "recovery does not apply retention again (a barrier's extra pins outlive the crash)",
    ),
    Mutant(
        "journal-drops-pre-evictions",
        "journal",
        _OPS_CORE,
        "pre_evicted=tuple(self.pending_evictions),",
        "pre_evicted=(),",
        "the journal record omits evictions not yet written (they come back after a crash)",
    ),
    Mutant(
        "journal-ignores-cursors",
        "cursors",
        "ops/journal.py",
        "cursors = cursors.merged(record.cursors)",
        "cursors = snapshot.cursors",
        "journal replay forgets the cursors the records carried",
    ),
    Mutant(
        "cursor-moves-backward",
        "cursors",
        "ops/cursors.py",
        "self._agent_applied = max(self._agent_applied, seq)",
        "self._agent_applied = seq",
        "the agent_applied cursor may move backward",
    ),
    Mutant(
        "feed-keeps-one-less",
        "feed",
        "ops/feed.py",
        "while len(self._entries) > self._capacity:",
        "while len(self._entries) >= self._capacity:",
        "the completion feed retains one entry fewer than its capacity",
    ),
    # --- stores -------------------------------------------------------------------------------
    Mutant(
        "memory-store-duplicate-receipt",
        "memory store",
        "store/memory.py",
        "if key in receipts:",
        "if False:",
        "the memory store accepts a second receipt for the same run and sequence",
    ),
    Mutant(
        "memory-store-keeps-journal",
        "memory store",
        "store/memory.py",
        "self.storage.ops_snapshots[rt] = sealed\n            self.storage.ops_records.pop(rt, None)",
        "self.storage.ops_snapshots[rt] = sealed",
        "compacting the ops journal into a snapshot keeps the old records (replayed twice)",
    ),
    Mutant(
        "sqlite-keeps-journal",
        "sqlite store",
        "store/sqlite.py",
        'conn.execute(f"DELETE FROM {OPS_RECORDS} WHERE runtime_id = ?", (rt,))\n'
        "            advance_mark(conn, rt, MarkStep(ops_snapshot=True, ops_records_cleared=True))",
        "pass\n            advance_mark(conn, rt, MarkStep(ops_snapshot=True, ops_records_cleared=True))",
        "the SQLite store keeps the ops journal after compaction",
    ),
    Mutant(
        "sqlite-lifecycle-first-row-only",
        "sqlite store",
        "store/sqlite.py",
        "added = _upsert_inputs(conn, rt, params)\n"
        "            advance_mark(conn, rt, MarkStep(inputs_added=added, lifecycle=True))",
        "added = _upsert_inputs(conn, rt, params[:1])\n"
        "            advance_mark(conn, rt, MarkStep(inputs_added=added, lifecycle=True))",
        "a lifecycle commit in the SQLite store writes only its first input row",
    ),
)
