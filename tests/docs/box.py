"""A network of its own for one document's session.

The docs name fixed ports -- the API on ``localhost:8080``, the embedded server's 5454,
the fake Neon's 8098 -- so two documents run at once (two xdist workers) would fight
over them. As root, each session gets a network namespace of its own with just a
loopback (``unshare --net``), and every process of the session enters it (``nsenter``):
the ports are its own, as on a user's machine. Elsewhere the sessions take turns, on a
lock shared by every process on the machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["Box"]

# Brings the namespace's loopback up (SIOCGIFFLAGS / SIOCSIFFLAGS on "lo"), says so and
# holds the namespace open until it is killed.
_HOLDER = """
import fcntl, signal, socket, struct, sys
s = socket.socket()
req = struct.pack("16sH14x", b"lo", 0)
flags = struct.unpack("16sH14x", fcntl.ioctl(s, 0x8913, req))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", flags | 1))
sys.stdout.write("up\\n")
sys.stdout.flush()
signal.pause()
"""
_TURNS = Path(tempfile.gettempdir()) / "tenantvec-doc-sessions.lock"


class Box:
    """Where a session's processes run: a network namespace (``netns`` is True), or the
    machine's own network taken in turns."""

    def __init__(self) -> None:
        self._holder: subprocess.Popen[str] | None = None
        self._turn: int | None = None
        if _can_unshare():
            self._holder = subprocess.Popen(
                ["unshare", "--net", "--", sys.executable, "-c", _HOLDER],
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
            assert self._holder.stdout is not None
            if self._holder.stdout.readline().strip() != "up":
                self._holder.kill()
                raise RuntimeError("the session's network namespace did not come up")
        else:
            self._turn = os.open(_TURNS, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            fcntl.flock(self._turn, fcntl.LOCK_EX)

    @property
    def netns(self) -> bool:
        return self._holder is not None

    def command(self, args: Sequence[str]) -> list[str]:
        """``args`` as run inside the box."""
        if self._holder is None:
            return list(args)
        return ["nsenter", f"--net=/proc/{self._holder.pid}/ns/net", "--", *args]

    def popen(self, args: Sequence[str], **options: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(self.command(args), **options)

    def close(self) -> None:
        if self._holder is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._holder.pid, signal.SIGKILL)
            self._holder.wait()
            if self._holder.stdout is not None:
                self._holder.stdout.close()
            self._holder = None
        if self._turn is not None:
            os.close(self._turn)
            self._turn = None


def _can_unshare() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"):
        return False
    probe = subprocess.run(["unshare", "--net", "--", "true"], capture_output=True, check=False)
    return probe.returncode == 0
