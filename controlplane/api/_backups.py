"""Admin endpoints: back a tenant up to a file, and restore a tenant from one.

The file is what ``tenantctl tenants backup`` writes (lifecycle/backup.py): the backup
is the response body of ``POST /v1/tenants/{id}/backup``, and the request body of
``POST /v1/restores``, streamed to disk as it arrives (never held in memory), up to
``TENANTVEC_MAX_RESTORE_BYTES``. Both live in scratch directories
(controlplane/scratch.py): what a killed API process leaves is swept, and file work
runs off the event loop, which keeps serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import IO, Annotated, Any

from litestar import Controller, Request, post
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter
from litestar.response import Stream

from controlplane.api import _examples as ex
from controlplane.api._auth import admin_only
from controlplane.api._caller import CallerDep
from controlplane.api._state import ApiDep
from controlplane.lifecycle.backup import backup_tenant
from controlplane.lifecycle.restore import restore_tenant
from controlplane.model.records import validate_tenant_id
from controlplane.model.views import RestoreView
from controlplane.scratch import scratch_dir

__all__ = ["BACKUP_MEDIA_TYPE", "BackupsController"]

BACKUP_MEDIA_TYPE = "application/x-tar"
_CHUNK = 1 << 20


class BackupsController(Controller):
    path = "/v1"
    tags = ["admin"]
    guards = [admin_only]

    @post(
        "/tenants/{tenant_id:str}/backup",
        operation_id="backupTenant",
        summary="Back a tenant up",
        description="A consistent snapshot of the tenant's documents and chunks with its "
        "settings and schema version, as one file (a tar of `manifest.json` and "
        "`tenant.dump`), taken while it keeps serving. It holds data, no passwords and no "
        "keys. Restore it with `POST /v1/restores`.",
        status_code=200,
        media_type=BACKUP_MEDIA_TYPE,
        responses={
            200: ResponseSpec(
                data_container=bytes,
                media_type=BACKUP_MEDIA_TYPE,
                description="The backup file.",
                examples=ex.example("<a tar archive: manifest.json, tenant.dump>"),
                generate_examples=False,
            ),
            **ex.problems(ex.ADMIN),
        },
    )
    async def backup(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: Annotated[str, PathParameter(description="Tenant id.")],
    ) -> Stream:
        async with scratch_dir(api.plane.settings.scratch_root, "api-backup") as scratch:
            report = await backup_tenant(api.plane, tenant_id, scratch, actor=caller.actor)
            handle = await asyncio.to_thread(report.path.open, "rb")
        # The directory is gone already; the open file still reads, and its space is
        # freed once the response closes it -- however the response ends.
        return Stream(
            _read_chunks(handle),
            media_type=BACKUP_MEDIA_TYPE,
            headers={
                "Content-Length": str(report.bytes),
                "Content-Disposition": f'attachment; filename="{report.path.name}"',
            },
        )

    @post(
        "/restores",
        operation_id="restoreTenant",
        summary="Restore a tenant from a backup",
        description="The request body is a backup file (`application/x-tar`, as `POST "
        "/v1/tenants/{tenant_id}/backup` or `tenantctl tenants backup` made it). Creates "
        "the tenant (`as`, default the backup's own id) with the backup's settings, loads "
        "its rows, migrates an older schema version, verifies every row against the "
        "backup's digest, builds its vector index; answers once it is ready. It has no "
        "keys yet. A file that is not a whole backup is a 400; a live tenant with that id "
        "a 409.",
        status_code=201,
        # The body is streamed to disk and bounded by TENANTVEC_MAX_RESTORE_BYTES here.
        request_max_body_size=2**62,
        responses={
            **ex.ok_admin(
                RestoreView,
                {
                    "tenant": ex.TENANT,
                    "restored_from": "acme",
                    "backup_schema_version": 4,
                    "documents": 1200,
                    "chunks": 5400,
                    "verified": True,
                    "seconds": 3.2,
                },
                "The restored tenant, ready and verified.",
                status=201,
                body=True,
            )
        },
    )
    async def restore(
        self,
        api: ApiDep,
        caller: CallerDep,
        request: Request[Any, Any, Any],
        as_: Annotated[
            str | None,
            QueryParameter(name="as", description="Tenant id to restore as.", max_length=63),
        ] = None,
        backend: Annotated[
            str | None,
            QueryParameter(
                description="postgres, instance, neon (default: as backed up).", max_length=32
            ),
        ] = None,
        server: Annotated[
            str | None,
            QueryParameter(
                description="postgres backend: the server to place it on.", max_length=63
            ),
        ] = None,
    ) -> RestoreView:
        if as_ is not None:
            validate_tenant_id(as_)  # before the body is read
        limit = api.plane.settings.api.max_restore_bytes
        async with scratch_dir(api.plane.settings.scratch_root, "api-restore") as scratch:
            upload = scratch / "upload.tvbackup"
            size = 0
            with await asyncio.to_thread(upload.open, "wb") as out:
                pending: list[bytes] = []
                buffered = 0
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise HTTPException(
                            status_code=413,
                            detail=f"the backup is larger than TENANTVEC_MAX_RESTORE_BYTES "
                            f"({limit} bytes) allows; restore it with 'tenantctl tenants "
                            "restore FILE'",
                        )
                    pending.append(chunk)
                    buffered += len(chunk)
                    if buffered >= _CHUNK:  # to disk a megabyte at a time, off the loop
                        await asyncio.to_thread(out.writelines, pending)
                        pending, buffered = [], 0
                await asyncio.to_thread(out.writelines, pending)
            report = await restore_tenant(
                api.plane, upload, as_id=as_, backend=backend, server=server, actor=caller.actor
            )
        return report.view()


async def _read_chunks(handle: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(handle.read, _CHUNK):
            yield chunk
    finally:
        handle.close()
