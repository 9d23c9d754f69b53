"""Routing: one bounded, warm connection pool per tenant (see ``router``)."""

from controlplane.routing.budget import ServerBudget
from controlplane.routing.pools import use_vector_types
from controlplane.routing.router import RouterStats, TenantConnection, TenantRouter
from controlplane.routing.routes import Route, RouteTable

__all__ = [
    "Route",
    "RouteTable",
    "RouterStats",
    "ServerBudget",
    "TenantConnection",
    "TenantRouter",
    "use_vector_types",
]
