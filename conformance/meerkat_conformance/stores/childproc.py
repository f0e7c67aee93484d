"""Starting Python child processes that can import this project's packages."""

from __future__ import annotations

import os
from pathlib import Path

import meerkat_runtime

import meerkat_conformance


def package_roots() -> list[str]:
    """Directories that hold ``meerkat_runtime`` and ``meerkat_conformance``."""
    roots = {
        str(Path(meerkat_runtime.__file__).resolve().parent.parent),
        str(Path(meerkat_conformance.__file__).resolve().parent.parent),
    }
    return sorted(roots)


def child_env() -> dict[str, str]:
    """This environment with the package roots prepended to ``PYTHONPATH``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*package_roots(), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env
