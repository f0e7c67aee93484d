"""meerkat_runtime: the production runtime control plane for AI-agent sessions.

Standard library only. Durable input queues, the run loop, the async-operation registry
and crash recovery. This package never imports ``meerkat_model`` or ``meerkat_conformance``.
"""

__version__ = "0.1.0"
