"""Shared vocabulary of the production runtime: ids, statuses, outcomes and error types.

Each concept lives in its own small module; this package re-exports nothing so that imports
say where a name comes from.
"""
