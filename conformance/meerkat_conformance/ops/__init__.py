"""Conformance of the operation registry: ``OpsMachine`` against ``OpsLifecycleRegistry``."""
