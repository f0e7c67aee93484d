"""meerkat_conformance: proves the production runtime behaves like the reference model."""
