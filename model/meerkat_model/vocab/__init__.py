"""Vocabulary of the reference model (independent of the runtime's own vocabulary)."""
