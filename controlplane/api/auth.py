"""Who is calling: the admin (admin token) or one tenant (a tenant key).

Admin endpoints take only the admin token. Data-plane endpoints take the admin token
or a key of the tenant named in the path; a key presented for any other tenant gets
the same 404 as a tenant that does not exist, so keys cannot probe for tenant ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request

from controlplane.api.state import ApiState
from controlplane.errors import AuthenticationFailed, PermissionDenied, TenantNotFound

__all__ = ["Caller", "provide_caller"]


@dataclass(frozen=True)
class Caller:
    tenant_id: str | None  # None: the admin

    @property
    def is_admin(self) -> bool:
        return self.tenant_id is None

    @property
    def actor(self) -> str:
        return "api:admin" if self.is_admin else f"api:tenant:{self.tenant_id}"

    def require_admin(self) -> None:
        if not self.is_admin:
            raise PermissionDenied("this endpoint needs the admin token, not a tenant key")

    def require_tenant(self, tenant_id: str) -> None:
        if not self.is_admin and self.tenant_id != tenant_id:
            raise TenantNotFound(tenant_id)


async def provide_caller(request: Request[Any, Any, Any]) -> Caller:
    state: ApiState = request.app.state.api
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationFailed("missing 'Authorization: Bearer <key>' header")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed("the Authorization header must be 'Bearer <key>'")
    if state.verifier.is_admin(token, state.admin_token):
        return Caller(tenant_id=None)
    return Caller(tenant_id=await state.verifier.tenant_for(token))
