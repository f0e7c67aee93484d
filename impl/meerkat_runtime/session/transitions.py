"""Every rule of the session model (input lifecycle, runtime control, registration), and where
the runtime implements it: the core method that decides it and the shell function that
drives it (see :class:`~meerkat_runtime.vocab.transitions.RuleBinding`).

Rule names are the model's ``TransitionDecl`` names; a test checks this table covers exactly
the model's declared session transitions and that every path resolves. Names ending in
``_retired`` are the same run outcome for a run that ends with the runtime Retired, names ending
in ``_without_loop`` for a run ``accept_input_and_run`` started that ends Idle.
"""

from __future__ import annotations

from meerkat_runtime.vocab.transitions import RuleBinding

_CORE = "session.core.session_core.SessionCore"
_MACHINE = "session.machine.MeerkatMachine"
_END_RUN = "session.run_end.end_run"


def _bind(rules: tuple[str, ...], core: str | None, shell: str, note: str = "") -> tuple[RuleBinding, ...]:
    return tuple(RuleBinding(rule, core, shell, note) for rule in rules)


SESSION_RULES: tuple[RuleBinding, ...] = (
    *_bind(
        ("accept", "accept_superseding", "accept_coalescing", "deduplicate", "reject_invalid"),
        f"{_CORE}.accept",
        f"{_MACHINE}.accept_input",
    ),
    *_bind(
        ("accept_and_run",),
        f"{_CORE}.accept",
        f"{_MACHINE}.accept_input_and_run",
        "the accept is committed (its event folded in), then the input staged for a run the caller drives",
    ),
    *_bind(("start_run",), f"{_CORE}.start_run", "session.loop_task.run_loop"),
    *_bind(
        ("executor_succeeded", "executor_succeeded_retired", "executor_succeeded_without_loop"),
        f"{_CORE}.executor_succeeded",
        _END_RUN,
    ),
    *_bind(
        (
            "executor_failed",
            "executor_failed_retired",
            "executor_failed_without_loop",
            "executor_failed_exhausted",
            "executor_failed_exhausted_retired",
            "executor_failed_exhausted_without_loop",
        ),
        f"{_CORE}.executor_failed",
        _END_RUN,
    ),
    *_bind(
        ("interrupt", "interrupt_retired", "interrupt_without_loop", "interrupt_noop"),
        f"{_CORE}.interrupt",
        f"{_MACHINE}.interrupt_current_run",
    ),
    *_bind(("boundary_commit_failed", "boundary_commit_failed_retired"), f"{_CORE}.boundary_commit_failed", _END_RUN),
    *_bind(
        ("terminal_snapshot_failed",),
        None,
        _END_RUN,
        "nothing changes in memory, since the failed commit applied nothing; the session is unregistered",
    ),
    *_bind(("retire", "retire_without_loop", "retire_noop"), f"{_CORE}.retire", f"{_MACHINE}.retire_runtime"),
    *_bind(("reset", "reset_with_loop"), f"{_CORE}.reset", f"{_MACHINE}.reset_runtime"),
    *_bind(("recycle", "recycle_with_loop"), f"{_CORE}.recycle", f"{_MACHINE}.recycle_runtime"),
    *_bind(("stop", "stop_with_loop"), f"{_CORE}.stop", f"{_MACHINE}.stop_runtime"),
    *_bind(("destroy", "destroy_with_loop"), f"{_CORE}.destroy", f"{_MACHINE}.destroy_runtime"),
    *_bind(("recover", "recover_noop"), f"{_CORE}.recover", f"{_MACHINE}.recover_session"),
    *_bind(("register",), f"{_CORE}.register", f"{_MACHINE}.register_session"),
    *_bind(("register_noop",), None, f"{_MACHINE}.register_session", "already registered: returns at once"),
    *_bind(("begin_attach",), f"{_CORE}.begin_attach", f"{_MACHINE}.ensure_session_with_executor"),
    *_bind(
        ("begin_attach_noop",),
        None,
        f"{_MACHINE}.ensure_session_with_executor",
        "a loop is attached or being attached: returns False at once",
    ),
    *_bind(
        ("finish_attach", "finish_attach_keep_phase"),
        f"{_CORE}.finish_attach",
        f"{_MACHINE}.ensure_session_with_executor",
    ),
    *_bind(("attach_failed",), f"{_CORE}.attach_failed", f"{_MACHINE}.ensure_session_with_executor"),
    *_bind(
        ("unregister",),
        None,
        f"{_MACHINE}.unregister_session",
        "the session is forgotten in memory; waiters get runtime_terminated",
    ),
    *_bind(("crash",), None, f"{_MACHINE}.halt", "the process dies: every session is forgotten, nothing is written"),
)
