"""What one tenant may take from the Postgres it shares: connections and statement time.

Every tenant's owner role -- the role of the DSN its own clients use -- gets a
:class:`RoleLimits`: a connection limit (``ALTER ROLE ... CONNECTION LIMIT``) and
default ``statement_timeout`` and ``idle_in_transaction_session_timeout``. They come
from the tenant's tier (the same tiers that size a server of its own) with explicit
values overriding single ones, and can be changed later (``tenants set-limits``).

The router's own connections (the tenant's service role) do not count against the
connection limit, and its pools pass the same timeouts as connection options: a
tenant's clients cannot squeeze out its API requests, and neither can run unbounded
statements by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from typing import Any

from controlplane.durations import parse_duration
from controlplane.errors import InvalidRequest
from controlplane.model.compute import parse_tier
from controlplane.tiers import Tier

__all__ = ["LIMIT_SETTINGS", "RoleLimits"]

# How many connections a tenant's own clients may hold, and the longest timeouts.
_CONNECTIONS = (1, 1000)
_MAX_TIMEOUT_MS = 24 * 3600 * 1000
LIMIT_SETTINGS = ("connection_limit", "statement_timeout", "idle_in_transaction_timeout")


@dataclass(frozen=True)
class RoleLimits:
    tier: Tier
    connection_limit: int
    statement_timeout_ms: int
    idle_in_transaction_timeout_ms: int

    @classmethod
    def resolve(cls, tier: str, overrides: Mapping[str, Any] | None = None) -> RoleLimits:
        """The tier's limits with ``overrides`` (``LIMIT_SETTINGS``) applied, checked."""
        base = _TIERS[parse_tier(tier)]
        changes: dict[str, Any] = {}
        for name, value in (overrides or {}).items():
            if value is None:
                continue
            if name == "connection_limit":
                changes[name] = _connections(value)
            elif name in ("statement_timeout", "idle_in_transaction_timeout"):
                changes[f"{name}_ms"] = _milliseconds(name, value)
            else:
                raise InvalidRequest(f"unknown limit {name!r}; use {', '.join(LIMIT_SETTINGS)}")
        return replace(base, **changes)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RoleLimits:
        """The limits a catalog placement records (a tenant made before limits: small)."""
        if not data:
            return _TIERS[Tier.SMALL]
        return cls(
            tier=Tier(str(data.get("tier", Tier.SMALL))),
            connection_limit=int(data["connection_limit"]),
            statement_timeout_ms=int(data["statement_timeout_ms"]),
            idle_in_transaction_timeout_ms=int(data["idle_in_transaction_timeout_ms"]),
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tier"] = self.tier.value
        return data

    def role_settings(self) -> dict[str, str]:
        """The defaults the owner role's sessions start with (``ALTER ROLE ... SET``)."""
        return {
            "statement_timeout": f"{self.statement_timeout_ms}ms",
            "idle_in_transaction_session_timeout": f"{self.idle_in_transaction_timeout_ms}ms",
        }

    def connection_options(self) -> str:
        """The same timeouts as libpq ``options``, for the router's own connections."""
        return " ".join(f"-c {name}={value}" for name, value in self.role_settings().items())


def _connections(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidRequest(f"connection_limit must be a whole number, not {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise InvalidRequest(f"connection_limit must be a whole number, not {value!r}") from None
    low, high = _CONNECTIONS
    if not low <= number <= high:
        raise InvalidRequest(f"connection_limit {number} is out of range: use {low} to {high}")
    return number


def _milliseconds(name: str, value: Any) -> int:
    """A timeout given as a duration ("30s", "2m") or a whole number of milliseconds."""
    if isinstance(value, bool):
        raise InvalidRequest(f"{name} must be a duration such as 30s, not {value!r}")
    if isinstance(value, int):
        ms = value
    elif isinstance(value, str):
        ms = int(parse_duration(value) / timedelta(milliseconds=1))
    else:
        raise InvalidRequest(f"{name} must be a duration such as 30s, not {value!r}")
    if not 1000 <= ms <= _MAX_TIMEOUT_MS:
        raise InvalidRequest(f"{name} must be between 1s and 24h")
    return ms


# A small tenant's clients get a handful of connections; statements that run longer
# than a web request would are cut off by default.
_TIERS = {
    Tier.SMALL: RoleLimits(Tier.SMALL, 10, 30_000, 60_000),
    Tier.MEDIUM: RoleLimits(Tier.MEDIUM, 25, 60_000, 60_000),
    Tier.LARGE: RoleLimits(Tier.LARGE, 50, 300_000, 120_000),
}
