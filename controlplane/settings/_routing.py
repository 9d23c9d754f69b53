"""Settings of the router: tenant pools, each server's connection budget, route caching."""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.envparse import (
    parse_positive_float,
    parse_positive_int,
)
from controlplane.errors import ConfigurationError
from controlplane.settings._fields import SettingsGroup, setting

__all__ = ["RoutingSettings"]


@dataclass(frozen=True, kw_only=True)
class RoutingSettings(SettingsGroup):
    concern = "routing requests to tenants' databases: pools, budgets, routes"

    max_pools: int = setting(
        "TENANTVEC_MAX_POOLS",
        "Most tenant connection pools one API process keeps open; idle ones are closed "
        "least-recently-used first to make room.",
        default=500,
        parse=parse_positive_int,
        positive=True,
    )
    max_connections_per_server: int = setting(
        "TENANTVEC_MAX_CONNECTIONS_PER_SERVER",
        "Budget of tenant connections to each Postgres server, shared by all API processes "
        "of one 'tenantctl serve' (each of N workers gets 1/N). Never exceeded: requests "
        "over it wait, then get 503.",
        default=100,
        parse=parse_positive_int,
        positive=True,
    )
    pool_max_size: int = setting(
        "TENANTVEC_POOL_MAX_SIZE",
        "Most connections one tenant's pool may hold (its share of the server budget).",
        default=4,
        parse=parse_positive_int,
        positive=True,
    )
    pool_idle_seconds: float = setting(
        "TENANTVEC_POOL_IDLE_SECONDS",
        "A tenant pool unused this long is closed and its connections returned to the budget.",
        default=300.0,
        parse=parse_positive_float,
        positive=True,
    )
    pool_wait_seconds: float = setting(
        "TENANTVEC_POOL_WAIT_SECONDS",
        "How long a request waits for a connection when the budget is in use before it "
        "gets 503 with Retry-After.",
        default=5.0,
        parse=parse_positive_float,
        positive=True,
    )
    route_ttl_seconds: float = setting(
        "TENANTVEC_ROUTE_TTL_SECONDS",
        "How long an API process trusts its cached catalog entry for a tenant (and a "
        "verified API key). A change made by another process (delete, suspend, move, key "
        "revocation) reaches this one within this delay plus one second.",
        default=2.0,
        parse=parse_positive_float,
        positive=True,
    )
    api_workers: int = setting(
        "TENANTVEC_API_WORKERS",
        "Number of API processes sharing the connection budget; set by 'tenantctl serve "
        "--workers'.",
        default=1,
        parse=parse_positive_int,
        positive=True,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.api_workers > self.max_connections_per_server:
            raise ConfigurationError(
                "TENANTVEC_MAX_CONNECTIONS_PER_SERVER must be at least the number of API "
                "workers (each needs one connection)"
            )

    @property
    def worker_connection_budget(self) -> int:
        """This process's share of each server's connection budget."""
        return self.max_connections_per_server // self.api_workers
