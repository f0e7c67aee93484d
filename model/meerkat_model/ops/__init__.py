"""Reference model of the operation registry (see :mod:`meerkat_model.ops.machine`)."""

from meerkat_model.ops.machine import OpsMachine

__all__ = ["OpsMachine"]
