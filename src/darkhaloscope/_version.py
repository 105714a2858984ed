"""Package version and the code version recorded in every output."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

__version__ = "0.1.0"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``<version>+g<short commit>`` when run from a git checkout, else ``<version>``.

    The commit is read once per process; a dirty tree is not marked, so that re-running the
    same commit gives identical bytes.
    """
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=10", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        return f"{__version__}+g{out}" if out else __version__
    except (OSError, subprocess.SubprocessError):
        return __version__
