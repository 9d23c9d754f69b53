"""How big a tenant's own Postgres is: named tiers and explicit resource settings.

Backends that run a server per tenant (``instance``, ``docker``) size it with a
:class:`ComputeSpec`: a tier (``small``, ``medium``, ``large``) and any explicit
values that override it. The values are Postgres settings, written to the server's
configuration and visible with ``SHOW``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from controlplane.errors import InvalidRequest
from controlplane.tiers import Tier

__all__ = [
    "MEMORY_SETTINGS",
    "SIZED_SETTINGS",
    "ComputeSpec",
    "parse_memory",
    "parse_tier",
]


# The memory settings a tenant may size, with the smallest and largest value accepted.
MEMORY_SETTINGS: dict[str, tuple[int, int]] = {
    "shared_buffers": (128 * 1024, 64 * 1024**3),
    "work_mem": (64 * 1024, 2 * 1024**3),
    "maintenance_work_mem": (1024**2, 16 * 1024**3),
}
_CONNECTIONS = (10, 5000)
# Every setting a ComputeSpec holds, in the order they are shown.
SIZED_SETTINGS = (*MEMORY_SETTINGS, "max_connections")
_MEMORY_RE = re.compile(r" *(\d{1,12}) *(kb|mb|gb|tb) *", re.IGNORECASE)  # whole string
_UNITS = {"kb": ("kB", 1024), "mb": ("MB", 1024**2), "gb": ("GB", 1024**3), "tb": ("TB", 1024**4)}


@dataclass(frozen=True)
class ComputeSpec:
    tier: Tier
    shared_buffers: str
    work_mem: str
    maintenance_work_mem: str
    max_connections: int

    @classmethod
    def resolve(cls, tier: str, overrides: Mapping[str, Any] | None = None) -> ComputeSpec:
        """The tier's values with ``overrides`` applied; every value checked."""
        base = _TIERS[parse_tier(tier)]
        changes: dict[str, Any] = {}
        for name, value in (overrides or {}).items():
            if value is None:
                continue
            if name in MEMORY_SETTINGS:
                changes[name] = _memory_value(name, value)
            elif name == "max_connections":
                changes[name] = _connections(value)
            else:
                allowed = ", ".join(SIZED_SETTINGS)
                raise InvalidRequest(f"unknown resource setting {name!r}; use {allowed}")
        return replace(base, **changes)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ComputeSpec:
        return cls.resolve(str(data.get("tier", Tier.SMALL)), _settings_of(data))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tier"] = self.tier.value
        return data

    def server_settings(self) -> dict[str, str]:
        """As Postgres configuration: name -> value."""
        return {name: str(value) for name, value in _settings_of(self.to_json()).items()}

    @property
    def memory_bytes(self) -> int:
        """What the server may use for its buffers at most (shared_buffers)."""
        return parse_memory(self.shared_buffers)


def parse_tier(tier: str) -> Tier:
    try:
        return Tier(tier)
    except ValueError:
        known = ", ".join(t.value for t in Tier)
        raise InvalidRequest(f"unknown tier {tier!r}; choose one of {known}") from None


def parse_memory(value: str) -> int:
    match = _MEMORY_RE.fullmatch(value)
    if match is None:
        raise InvalidRequest(
            f"invalid memory size {value!r}: use a number and a unit (kB, MB, GB, TB), e.g. 64MB"
        )
    return int(match.group(1)) * _UNITS[match.group(2).lower()][1]


def _memory_value(name: str, value: Any) -> str:
    text = str(value)
    size = parse_memory(text)
    low, high = MEMORY_SETTINGS[name]
    if not low <= size <= high:
        raise InvalidRequest(
            f"{name} {text!r} is out of range: use {_human(low)} to {_human(high)}"
        )
    match = _MEMORY_RE.fullmatch(text)
    assert match is not None
    # Postgres's units are case-sensitive: normalise 64mb to 64MB.
    return f"{int(match.group(1))}{_UNITS[match.group(2).lower()][0]}"


def _connections(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"max_connections must be a whole number, not {value!r}") from None
    low, high = _CONNECTIONS
    if not low <= number <= high:
        raise InvalidRequest(f"max_connections {number} is out of range: use {low} to {high}")
    return number


def _settings_of(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in SIZED_SETTINGS if k in data}


def _human(size: int) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("kB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


# Sized for idle cost first: a small tenant's server costs a few tens of MB at rest.
_TIERS = {
    Tier.SMALL: ComputeSpec(Tier.SMALL, "16MB", "4MB", "32MB", 25),
    Tier.MEDIUM: ComputeSpec(Tier.MEDIUM, "128MB", "16MB", "128MB", 50),
    Tier.LARGE: ComputeSpec(Tier.LARGE, "512MB", "64MB", "512MB", 100),
}
