"""Memory sizes: what this machine (or its container) has, and Postgres's size syntax.

The embedded server is the database of every ``postgres`` tenant on the machine. Left at
Postgres's own default of 128 MB of shared buffers, a few tenants' HNSW indexes outgrow
them and every search reads its index pages through the kernel's page cache: measured
here, half the server's CPU time in system calls. Its default is the customary share of
a database server's memory instead -- a quarter -- within sensible bounds.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["default_shared_buffers", "machine_memory", "parse_pg_size"]

_UNITS = {"kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
_SIZE_RE = re.compile(r"([1-9][0-9]{0,12})(kB|MB|GB|TB)")
_MIN_SHARED_BUFFERS = 128 << 20  # Postgres's own default
_MAX_SHARED_BUFFERS = 8 << 30  # beyond this the kernel's cache serves as well
_CGROUP_LIMIT = Path("/sys/fs/cgroup/memory.max")  # cgroup v2: a container's memory


def machine_memory() -> int:
    """Bytes of memory this process may use: the machine's, or its cgroup's if less."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = _CGROUP_LIMIT.read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def default_shared_buffers() -> str:
    """A quarter of :func:`machine_memory`, between 128 MB and 8 GB, in MB."""
    share = min(max(machine_memory() // 4, _MIN_SHARED_BUFFERS), _MAX_SHARED_BUFFERS)
    return f"{share >> 20}MB"


def parse_pg_size(raw: str) -> str:
    """A memory size as Postgres writes it (``512MB``, ``2GB``), of at least 128 kB."""
    value = raw.strip()
    match = _SIZE_RE.fullmatch(value)
    if match is None:
        raise ValueError("expected a whole number and a unit: kB, MB, GB or TB (e.g. 2GB)")
    if int(match.group(1)) * _UNITS[match.group(2)] < 128 << 10:
        raise ValueError("must be at least 128kB")
    return value
