"""Session-scoped runtime: inputs, the per-session run loop, completions, lifecycle control,
durable persistence and crash recovery.

The entry point is :class:`meerkat_runtime.session.machine.MeerkatMachine`. The synchronous
rules live in :mod:`meerkat_runtime.session.core` (named as the model names them); the shell
(``machine``, ``loop_task``, ``run_end``, ``control_commands``) makes their plans take effect
through :mod:`meerkat_runtime.session.commit`; ``transitions`` maps every rule to both. Each
concept lives in its own module; import names from the module that defines them.
"""
