"""The ``meerkat-conformance`` command: suites, profiles, progress and the report."""
