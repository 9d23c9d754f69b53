"""Routing: one bounded, warm connection pool per tenant (see ``router``)."""

from controlplane.routing._budget import ServerBudget
from controlplane.routing._pools import use_vector_types
from controlplane.routing._routes import Route, RouteTable
from controlplane.routing.router import RouterStats, TenantConnection, TenantRouter

__all__ = [
    "Route",
    "RouteTable",
    "RouterStats",
    "ServerBudget",
    "TenantConnection",
    "TenantRouter",
    "use_vector_types",
]
