"""Turning the text of ``TENANTVEC_*`` variables into setting values.

Each parser raises ValueError with a message fit to follow the variable's name.
"""

from __future__ import annotations

from controlplane.durations import parse_duration
from controlplane.errors import InvalidRequest

__all__ = [
    "parse_bool",
    "parse_duration_seconds",
    "parse_non_negative_float",
    "parse_non_negative_int",
    "parse_port",
    "parse_port_range",
    "parse_positive_float",
    "parse_positive_int",
]


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def parse_positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def parse_non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0 or value == float("inf"):
        raise ValueError("must be a number of zero or more")
    return value


def parse_non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be 0 or a positive integer")
    return value


def parse_positive_float(raw: str) -> float:
    value = float(raw)
    if not 0 < value < float("inf"):  # NaN compares false: refused too
        raise ValueError("must be a positive number")
    return value


def parse_port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be a TCP port between 1 and 65535")
    return value


def parse_port_range(raw: str) -> tuple[int, int]:
    low, sep, high = raw.partition("-")
    if not sep:
        raise ValueError("expected a port range such as 26000-26999")
    first, last = parse_port(low.strip()), parse_port(high.strip())
    if first > last:
        raise ValueError("the range's first port is above its last")
    return first, last


def parse_duration_seconds(raw: str) -> float | None:
    """A duration such as ``15m``; ``0`` or ``off`` for none."""
    if raw.strip().lower() in {"0", "off", "never"}:
        return None
    try:
        return parse_duration(raw).total_seconds()
    except InvalidRequest as exc:
        raise ValueError(str(exc)) from None
