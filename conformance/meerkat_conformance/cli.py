"""``meerkat-conformance``: the deep conformance profile (being built)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("meerkat-conformance: not available yet", file=sys.stderr)
    return 1
