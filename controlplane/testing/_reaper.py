"""Throwaway homes that outlive nobody.

A throwaway control plane (``Harness.throwaway``, the pytest plugin's default) lives in
a temporary home holding an embedded Postgres, which runs in a session of its own and so
survives the death of the process that started it. Three things end it:

- the owner's own ``close()`` (the normal way);
- a watchdog: a small process in a session of its own (out of reach of a signal to the
  owner's process group) that blocks on the home's *owner lock* -- an ``flock`` the
  owner holds as long as it lives, which the kernel releases when it dies, by SIGTERM
  or SIGKILL alike -- and then stops what the home runs and removes it;
- the next throwaway home made on the machine, which sweeps the temporary directory
  for homes whose owner lock nobody holds (owner and watchdog both killed).

Whoever reaps a home holds its owner lock meanwhile, so two never reap one at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from controlplane.settings import Settings

__all__ = ["PREFIX", "OwnerLock", "make_home", "reap", "start_watchdog", "sweep"]

logger = logging.getLogger(__name__)

PREFIX = "tenantvec-pytest-"
LOCK_FILE = "owner.lock"
WATCHDOG_PID_FILE = "watchdog.pid"
# A home without an owner lock is one whose owner died between making it and locking
# it (microseconds), or one made by an older tenantvec: reaped once this old.
_UNLOCKED_GRACE_SECONDS = 600.0


class OwnerLock:
    """The lock a home's owner holds for as long as it lives (see the module's doc)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def take(cls, home: Path) -> OwnerLock:
        fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        return cls(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def make_home() -> tuple[Path, OwnerLock]:
    """A new throwaway home in the temporary directory, locked by this process; homes
    that dead owners left there are reaped first."""
    sweep(Path(tempfile.gettempdir()))
    home = Path(tempfile.mkdtemp(prefix=PREFIX))
    return home, OwnerLock.take(home)


def start_watchdog(home: Path) -> subprocess.Popen[bytes]:
    """Start the watchdog of ``home`` (whose owner lock this process holds)."""
    return subprocess.Popen(
        [sys.executable, "-m", "controlplane.testing._reaper", str(home)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def reap(home: Path, base: Settings | None = None) -> None:
    """Stop every server ``home`` runs (instances, then the embedded server) and remove
    it. Safe on a home half made, half removed or long dead."""
    if not home.exists():
        return
    from controlplane.backends.instance.backend import InstanceBackend
    from controlplane.localpg import EmbeddedServer

    base = base or Settings.from_env()
    settings = base.replace(home=home, catalog=base.catalog.replace(url=None))
    with contextlib.suppress(Exception):  # remove() below ends what this could not
        InstanceBackend(settings).stop_all()
    with contextlib.suppress(Exception):  # a home without a server: nothing to stop
        EmbeddedServer(settings).remove()
    shutil.rmtree(home, ignore_errors=True)


def sweep(directory: Path, base: Settings | None = None) -> list[Path]:
    """Reap the throwaway homes in ``directory`` whose owner is gone; what was reaped."""
    reaped = []
    for home in sorted(directory.glob(PREFIX + "*")):
        if not home.is_dir() or home.is_symlink():
            continue
        lock = home / LOCK_FILE
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            if time.time() - _mtime(home) < _UNLOCKED_GRACE_SECONDS:
                continue
            logger.info("reaping %s (no owner lock)", home)
            reap(home, base)
            reaped.append(home)
            continue
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its owner (or a reaper) is alive
            logger.info("reaping %s (its owner is gone)", home)
            reap(home, base)
            reaped.append(home)
        finally:
            os.close(fd)
    return reaped


def _watch(home: Path) -> None:
    """Wait for the owner of ``home`` to let go of it, then reap what it left."""
    try:
        fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # reaped already
    (home / WATCHDOG_PID_FILE).write_text(str(os.getpid()))
    fcntl.flock(fd, fcntl.LOCK_EX)  # blocks until the owner closes or dies
    try:
        reap(home)
    finally:
        os.close(fd)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


if __name__ == "__main__":
    _watch(Path(sys.argv[1]))
