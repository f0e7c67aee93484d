"""Store conformance: named checks any ``RuntimeStore`` can run against itself, the built-in
backends, and the crash-durability harness. The public entry point is
``meerkat_conformance.stores.suite``.
"""
