"""The reference model of the session runtime: input lifecycle, runtime control, registration,
the run loop, durable writes, crashes and recovery (see ``meerkat_model.session.machine``)."""

from meerkat_model.session.machine import SessionMachine

__all__ = ["SessionMachine"]
