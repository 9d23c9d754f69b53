"""``GET /v1/whoami``: what the credential presented opens.

A tenant key names its tenant only inside the catalog; an application (or a LangChain
or LlamaIndex store given just a URL and a key) asks here which tenant that is.
"""

from __future__ import annotations

from litestar import get

from controlplane.api import _examples as ex
from controlplane.api._auth import authenticated
from controlplane.api._caller import CallerDep
from controlplane.model.views import Identity

__all__ = ["whoami"]


@get(
    "/v1/whoami",
    operation_id="whoami",
    summary="The tenant a key opens (or that the caller is the admin)",
    tags=["data"],
    guards=[authenticated],
    responses=ex.ok(
        Identity, {"admin": False, "tenant": "acme"}, "Who the caller is.", errors=(401,)
    ),
)
async def whoami(caller: CallerDep) -> Identity:
    return Identity(admin=caller.is_admin, tenant=caller.tenant_id)
