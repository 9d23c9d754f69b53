"""Scratch directories that a killed process cannot leak.

A backup, a restore or an uploaded backup needs room for files as large as the tenant
(a dump, an extracted archive). Each gets a directory of its own under
``<TENANTVEC_HOME>/scratch`` and holds an exclusive ``flock`` on the ``.lock`` file in
it while in use. The kernel drops the lock when the process dies, however it dies, so a
directory whose lock can be taken has no owner any more: :func:`sweep` removes it.
``reconcile`` sweeps, and so does every new scratch directory -- a host that restores
cleans up after its own killed restores without an operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType

__all__ = ["LOCK_NAME", "Scratch", "scratch_dir", "sweep"]

LOCK_NAME = ".lock"

# A directory is made and locked under a ``.new-`` name, then renamed: one that keeps
# that name was left by a process killed in between, and is removed once this old.
_NEW_PREFIX = ".new-"
_GRACE_SECONDS = 30.0


class Scratch:
    """A private directory under ``root``, removed by :meth:`close` -- or, should the
    process die first, by the next :func:`sweep`."""

    def __init__(self, root: Path, purpose: str) -> None:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        sweep(root)
        making = Path(tempfile.mkdtemp(prefix=f"{_NEW_PREFIX}{purpose}-", dir=root))
        self._fd: int | None = os.open(making / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        # Locked before it is visible: a sweep never sees it unlocked while we live.
        self.path = root / making.name.removeprefix(_NEW_PREFIX)
        making.rename(self.path)

    def close(self) -> None:
        """Remove the directory (idempotent)."""
        if self._fd is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> Path:
        return self.path

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@asynccontextmanager
async def scratch_dir(root: Path, purpose: str) -> AsyncIterator[Path]:
    """A :class:`Scratch` for async code: made and removed off the event loop (sweeping
    and removing can mean gigabytes)."""
    scratch = await asyncio.to_thread(Scratch, root, purpose)
    try:
        yield scratch.path
    finally:
        await asyncio.to_thread(scratch.close)


def sweep(root: Path) -> list[Path]:
    """Remove the scratch directories under ``root`` that no living process holds;
    the ones removed, for the report."""
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink() and _abandoned(entry):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _abandoned(directory: Path) -> bool:
    if directory.name.startswith(_NEW_PREFIX):
        with contextlib.suppress(FileNotFoundError):
            return time.time() - directory.stat().st_mtime > _GRACE_SECONDS
        return False
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:
        return True  # a scratch directory is never without its lock
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # held: in use
    finally:
        os.close(fd)  # a lock we took dies with the descriptor; the directory goes next
    return True
