"""``meerkat-verify``: exhaustive verification of the lifecycle model (being built)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("meerkat-verify: no machine is registered yet", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
