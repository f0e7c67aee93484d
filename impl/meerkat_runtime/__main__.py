"""``python -m meerkat_runtime``: the ``meerkat-runtime`` command
(:func:`meerkat_runtime.cli.main.main`, the console script's entry point)."""

from __future__ import annotations

import sys

from meerkat_runtime.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
