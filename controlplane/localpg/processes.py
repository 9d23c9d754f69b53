"""What runs where on this machine: server pid files, processes in a data directory,
free ports, file locks, memory. The facts ``localpg.cluster`` decides by."""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from controlplane.errors import EmbeddedServerError

__all__ = [
    "PidFile",
    "held_lock",
    "is_postmaster",
    "port_is_free",
    "process_tree_memory",
    "processes_in",
    "read_pidfile",
]

LISTEN_HOST = "127.0.0.1"


@contextmanager
def held_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) across processes."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:``port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Postgres binds with SO_REUSEADDR too, so TIME_WAIT leftovers do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LISTEN_HOST, port))
        except OSError:
            return False
        return True


def process_tree_memory(pid: int) -> int | None:
    """Proportional set size (bytes) of ``pid`` and its children: what the server costs.

    PSS splits shared pages (shared_buffers, the binary) between the processes that map
    them, so summing it over a server's processes counts each page once. None where
    /proc does not tell (not Linux, or not allowed).
    """
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        total = 0
        for member in [pid, *map(int, children)]:
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        return None
    return total


@dataclass(frozen=True)
class PidFile:
    pid: int
    port: int
    started_at: datetime
    socket_dir: Path | None


def read_pidfile(data_dir: Path) -> PidFile | None:
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError:
        raise EmbeddedServerError(
            f"cannot read {data_dir}/postmaster.pid: run tenantctl as root or as the server's owner"
        ) from None
    try:
        return PidFile(
            pid=int(lines[0]),
            started_at=datetime.fromtimestamp(int(lines[2]), tz=UTC),
            port=int(lines[3]),
            socket_dir=Path(lines[4]) if len(lines) > 4 and lines[4].strip() else None,
        )
    except (IndexError, ValueError):
        # A half-written file from a crash during start-up: there is no server behind it.
        return PidFile(pid=0, port=0, started_at=datetime.now(UTC), socket_dir=None)


def is_postmaster(pid: int, data_dir: Path) -> bool:
    """Is ``pid`` a live postgres process serving ``data_dir``?"""
    if pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return False
    except OSError:
        # No /proc (macOS) or no access: fall back to "is the pid alive".
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    args = [part.decode(errors="replace") for part in cmdline if part]
    if not args or not Path(args[0]).name.startswith("postgres"):
        return False
    try:
        index = args.index("-D")
    except ValueError:
        return True
    return index + 1 < len(args) and Path(args[index + 1]).resolve() == data_dir.resolve()


def processes_in(directory: Path) -> list[int]:
    """Live processes whose working directory is ``directory`` (Linux; [] elsewhere)."""
    target = str(directory.resolve())
    found = []
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") == target:
                found.append(int(entry.name))
        except OSError:
            continue  # gone, a zombie, or not ours to look at
    return found
