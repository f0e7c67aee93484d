"""Session-scoped runtime: inputs, the per-session run loop, completions, lifecycle control,
durable persistence and crash recovery.

The entry point is :class:`meerkat_runtime.session.machine.MeerkatMachine`. Each concept lives
in its own module; import names from the module that defines them.
"""
