"""Who is calling: the admin (admin token) or one tenant incarnation (a tenant key).

Authentication is a route guard, so it runs before the request body is read: an
anonymous or badly authenticated request is answered 401 without its body ever being
parsed. Admin endpoints take only the admin token (:func:`admin_only`). Data-plane
endpoints take the admin token or a key of the tenant named in the path
(:func:`tenant_access`); a key presented for any other tenant gets the same 404 as a
tenant that does not exist, so keys cannot probe for tenant ids.

A key opens one incarnation of its tenant: handlers pass :attr:`Caller.incarnation` to
the library, which refuses to serve any other incarnation under the same id.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from controlplane.api._caller import CALLER, Caller
from controlplane.api._state import ApiDep, ApiState
from controlplane.errors import AuthenticationFailed, PermissionDenied, TenantNotFound
from controlplane.model.records import validate_tenant_id

__all__ = [
    "CALLER",
    "Caller",
    "admin_only",
    "authenticate",
    "authenticated",
    "check_tenant_access",
    "provide_caller",
    "tenant_access",
]


async def authenticated(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: any valid credential, the admin token or a tenant key."""
    await _authenticate(connection)


async def admin_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the admin token, nothing else."""
    caller = await _authenticate(connection)
    if not caller.is_admin:
        raise PermissionDenied("this endpoint needs the admin token, not a tenant key")


async def tenant_access(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: the admin token, or a key of the tenant in the path."""
    caller = await _authenticate(connection)
    check_tenant_access(caller, connection.path_params.get("tenant_id"))


def check_tenant_access(caller: Caller, tenant_id: object) -> None:
    """Refuse ``caller`` the tenant ``tenant_id`` (from a path) unless it is the admin or
    holds a key of that very tenant: a stranger's key learns no more than a wrong id."""
    if not isinstance(tenant_id, str):
        raise TenantNotFound("?")
    validate_tenant_id(tenant_id)
    if not caller.is_admin and caller.tenant_id != tenant_id:
        raise TenantNotFound(tenant_id)


def provide_caller(request: Request[Any, Any, Any], api: ApiDep) -> Caller:
    """The caller a guard authenticated (every route taking ``caller`` has one).

    ``api`` is asked for only so that Litestar resolves the two dependencies one after
    the other: independent ones it resolves in an anyio task group, two tasks per
    request (~5 % of the API's CPU per search).
    """
    del api
    caller = request.scope.get(CALLER)
    assert isinstance(caller, Caller), "route without an authentication guard"
    return caller


async def _authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Caller:
    state: ApiState = connection.app.state.api
    caller = await authenticate(state, connection.headers.get("authorization"))
    connection.scope[CALLER] = caller  # type: ignore[literal-required]
    return caller


async def authenticate(state: ApiState, header: str | None) -> Caller:
    """The caller an ``Authorization`` header's value proves (the admin token or a live
    tenant key), or :class:`AuthenticationFailed`."""
    if not header:
        raise AuthenticationFailed("missing 'Authorization: Bearer <key>' header")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed("the Authorization header must be 'Bearer <key>'")
    if state.verifier.is_admin(token, state.admin_token):
        return Caller(tenant_id=None)
    key = await state.verifier.verify(token)
    return Caller(tenant_id=key.tenant_id, incarnation=key.tenant_uid)
