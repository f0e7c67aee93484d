"""The session model's profiles as the catalog declares them."""

from __future__ import annotations

from meerkat_model.catalog import PROFILES
from meerkat_model.machine import Bounds


def session_bounds(profile: str) -> Bounds:
    return PROFILES[profile]["session"]
