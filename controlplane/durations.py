"""Human durations such as ``30m``, ``1h30m`` or ``7d`` (tenant TTLs)."""

from __future__ import annotations

import re
from datetime import timedelta

from controlplane.errors import InvalidRequest

__all__ = ["parse_duration"]

_PART_RE = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION = timedelta(days=3650)


def parse_duration(text: str) -> timedelta:
    cleaned = text.strip().lower()
    parts = _PART_RE.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise InvalidRequest(
            f"invalid duration {text!r}: use a number and a unit (s, m, h, d, w), e.g. "
            "30m, 1h30m, 7d"
        )
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise InvalidRequest("a duration must be longer than zero")
    if seconds > MAX_DURATION.total_seconds():
        raise InvalidRequest("a duration may not exceed 3650 days")
    return timedelta(seconds=seconds)
