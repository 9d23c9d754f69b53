"""Admin endpoint: move a tenant to another placement while it serves (lifecycle/move.py)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, post
from litestar.params import Body, PathParameter
from msgspec import Meta, Struct

from controlplane.api import _examples as ex
from controlplane.api._auth import admin_only
from controlplane.api._body import StrictBody
from controlplane.api._caller import CallerDep
from controlplane.api._state import ApiDep
from controlplane.lifecycle.move import move_tenant
from controlplane.model.records import validate_server_name
from controlplane.model.views import MoveView

__all__ = ["MoveRequest", "MovesController"]


class MoveRequest(Struct, forbid_unknown_fields=True):
    """Where to move a tenant: a backend, and for the postgres backend the server (none:
    the active server with the most room, never the one it is on)."""

    backend: Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[a-z]+\Z")]
    server: Annotated[str, Meta(min_length=1, max_length=63)] | None = None


class MovesController(Controller):
    path = "/v1"
    tags = ["admin"]
    guards = [admin_only]

    @post(
        "/tenants/{tenant_id:str}/move",
        operation_id="moveTenant",
        dto=StrictBody[MoveRequest],
        return_dto=None,
        summary="Move a tenant to another placement",
        description="Copies the tenant to the new placement (another server, a server of "
        "its own, Neon), verifies every row against the source, switches the catalog and "
        "the routers over and drops the old copy; answers once it is done. Reads are "
        "served throughout; the copy runs while writes go on, and writes get 503 with "
        "`Retry-After` only while the last of them are caught up, until the switch. Keys, "
        "labels, embedder and index settings stay the tenant's. "
        "Moving to where it is already is a 400; a tenant that is not ready a 409.",
        status_code=200,
        responses=ex.ok_admin(
            MoveView,
            {
                "tenant": ex.TENANT,
                "moved_from": {"backend": "postgres", "server": "local"},
                "documents": 1200,
                "chunks": 5400,
                "caught_up": 12,
                "verified": True,
                "seconds": 4.2,
                "writes_paused_seconds": 3.1,
            },
            "The tenant in its new placement, verified.",
            body=True,
        ),
    )
    async def move(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: Annotated[str, PathParameter(description="Tenant id.")],
        data: Annotated[
            MoveRequest, Body(examples=ex.example({"backend": "postgres", "server": "db2"}))
        ],
    ) -> MoveView:
        if data.server is not None:
            validate_server_name(data.server)
        report = await move_tenant(
            api.plane, tenant_id, backend=data.backend, server=data.server, actor=caller.actor
        )
        return report.view()
