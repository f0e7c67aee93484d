"""Conformance of the session runtime: ``SessionMachine`` against ``MeerkatMachine``."""
