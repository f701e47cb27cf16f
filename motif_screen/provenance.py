"""Where a model or a figure came from: the code that made it and the file it used.

``code_commit()`` names the git commit of the installed source tree (``+modified`` when tracked
files differ from it), or None where the package is not a git checkout (a wheel); checkpoints
record it beside the package version, and benchmarks record ``file_provenance`` of the
checkpoint they measured, so a figure names the exact model file.
"""

from __future__ import annotations

import hashlib
import subprocess
from functools import lru_cache
from pathlib import Path

from motif_screen import __version__

__all__ = ["code_commit", "code_version", "file_sha256"]

_SOURCE = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def code_commit() -> str | None:
    """``<commit>`` or ``<commit>+modified`` of the source tree, None outside a git checkout."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(_SOURCE), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    changed = git("status", "--porcelain", "--untracked-files=no", "--", str(_SOURCE))
    return f"{commit}+modified" if changed else commit


def code_version() -> dict:
    """``{"package": version, "commit": code_commit()}``."""
    return {"package": __version__, "commit": code_commit()}


def file_sha256(path) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
