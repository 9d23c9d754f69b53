"""A copy of this repository, as a reader's clone, for tests that run what the docs say.

The suite's own ``.venv`` is linked into it, and the copies of what ``make`` installs
from are made no newer than that virtualenv's install stamp: ``make demo`` or ``make
wheel`` in the copy then use the virtualenv as it is, instead of installing the copy into
it. Bytecode is copied too (its sources keep their times): Python run in the copy does
not compile everything again.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["copy_clone"]

_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".pytest_cache", ".mypy_cache", ".ruff_cache", "*.egg-info", "dist"
)


def copy_clone(root: Path, dest: Path) -> Path:
    shutil.copytree(root, dest, ignore=_IGNORE, copy_function=shutil.copy2)
    (dest / ".venv").symlink_to(root / ".venv")
    stamp = root / ".venv" / ".installed-stamp"
    if stamp.exists():
        when = stamp.stat().st_mtime - 1
        for name in ("pyproject.toml", "constraints.txt"):
            os.utime(dest / name, (when, when))
    return dest
