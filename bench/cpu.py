"""CPU seconds from ``/proc``: of a process, of a Postgres server, of this process.

What the benches report as CPU per operation: a difference of these around a phase,
divided by the operations in it. Ticks are 10 ms, so phases run long enough for many.
"""

from __future__ import annotations

import os
from pathlib import Path

from controlplane.localpg.processes import processes_in

__all__ = ["own_cpu", "postgres_cpu", "process_cpu"]

_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int, *, children: bool) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: children that exited
    return ticks / _TICKS


def postgres_cpu(data_dir: Path) -> float:
    """CPU seconds of the server: every live process of its data directory, plus what
    exited backends left in the postmaster's children's account."""
    pids = processes_in(data_dir)
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    return sum(_cpu_of(pid, children=pid == postmaster) for pid in pids)


def process_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and of its children that exited (API workers)."""
    return _cpu_of(pid, children=True)


def own_cpu() -> float:
    """CPU seconds of this process: the load generator's."""
    times = os.times()
    return times.user + times.system
