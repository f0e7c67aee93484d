"""Persistence for the runtime: the ``RuntimeStore`` protocol and its built-in stores."""
