"""Why a tenant cannot be served: its state, a connection error, an incarnation gone."""

from __future__ import annotations

import psycopg

from controlplane.errors import TenantNotFound
from controlplane.model.records import TenantState
from controlplane.routing._routes import Route

__all__ = ["is_unavailable", "same_incarnation", "state_reason"]

# SQLSTATE classes meaning "this connection or database cannot serve now", as opposed
# to an error in the statement.
_UNAVAILABLE_CLASSES = ("08", "53", "57", "3D", "28")


def same_incarnation(route: Route, incarnation: str | None) -> Route:
    if incarnation is not None and route.uid != incarnation:
        # The incarnation the caller holds (through its key, or an earlier route) was
        # deleted; the tenant now under that id is another one.
        raise TenantNotFound(route.tenant_id)
    return route


def state_reason(route: Route) -> str:
    if route.state is TenantState.PROVISIONING:
        return "it is still being provisioned"
    if route.state is TenantState.RESTORING:
        return "it is still being restored from a backup"
    if route.state is TenantState.SUSPENDED:
        return "it is suspended"
    if route.state is TenantState.FAILED:
        return f"its last operation failed ({route.error or 'no detail'})"
    if route.state is TenantState.DELETING:
        return "it is being deleted"
    raise TenantNotFound(route.tenant_id)


def is_unavailable(exc: psycopg.Error) -> bool:
    if isinstance(exc, psycopg.OperationalError) and not exc.sqlstate:
        return True
    return (exc.sqlstate or "")[:2] in _UNAVAILABLE_CLASSES
