"""The ``instance`` backend: a Postgres server of its own for every tenant, on this machine.

Each tenant gets a cluster under ``TENANTVEC_HOME/instances/<tenant id>-<suffix>/`` (the layout
of ``localpg.cluster``), run by the same binaries and service user as the embedded
server, listening on its own port on 127.0.0.1, with its own superuser and the
tenant's login role. Its size (``shared_buffers``, ``work_mem``,
``maintenance_work_mem``, ``max_connections``) is the tenant's :class:`ComputeSpec`.

Ports come from ``TENANTVEC_INSTANCE_PORTS`` through ``lifecycle.ports`` (the
instance's ``instance.json`` is its reservation); the catalog gets a copy through the
create's checkpoint.

Suspending stops the server cleanly; resuming starts it (a fraction of a second).
The control plane restarts a server that died (``lifecycle.supervise``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controlplane.backends._tenantdb import apply_limits, provision_own_server, session_counts
from controlplane.backends.base import Checkpoint, OwnedResource, ProvisionPlan
from controlplane.backends.markers import LAYOUT, owner_role
from controlplane.backends.ports import PortRegistry, own_server_name, read_manifest
from controlplane.errors import ProvisioningError
from controlplane.localpg.cluster import LocalCluster, process_tree_memory
from controlplane.model.backends import BackendKind
from controlplane.model.compute import SIZED_SETTINGS, ComputeSpec
from controlplane.model.erasure import Erasure
from controlplane.model.limits import RoleLimits
from controlplane.model.placement import InstancePlacement
from controlplane.model.records import Server, Tenant
from controlplane.model.request import TenantRequest
from controlplane.pgconnect import connect
from controlplane.settings import Settings

__all__ = ["InstanceBackend"]

logger = logging.getLogger(__name__)

_MANIFEST = "instance.json"
# Settings every instance shares, whatever its tier. One I/O worker instead of three:
# an idle tenant should cost little (see docs/benchmarks.md, instance memory).
_INSTANCE_CONF = {"io_workers": "1"}


class InstanceBackend:
    kind = BackendKind.INSTANCE
    uses_servers = False
    regional = False
    sized = True
    supervises = True
    session_options = True

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.retry_seconds = settings.retry_seconds
        self._ports = PortRegistry(settings)
        self._dir = self._ports.directory("instances")

    async def plan(self, request: TenantRequest, server: Server | None) -> ProvisionPlan:
        compute = request.compute(self._settings.default_tier)
        # Port and DSN are chosen during create, under the port lock.
        return ProvisionPlan(
            server=None,
            placement=InstancePlacement(
                instance=own_server_name(request.id), compute=compute.to_json()
            ),
            conninfo=None,
        )

    async def create(self, tenant: Tenant, checkpoint: Checkpoint) -> None:
        placement = InstancePlacement.of(checkpoint.placement)
        port = placement.port
        if port is None:
            root = self._root(tenant)
            port = await asyncio.to_thread(self._ports.reserve, root, tenant)
            data_dir = str(root / "pg" / "data")
            await checkpoint.record(placement.replace(port=port, data_dir=data_dir))
        # Still being created: a data dir a killed create left incomplete holds nothing.
        await self._provision(checkpoint, discard_incomplete=True)
        logger.info("tenant %s: instance ready on port %d", tenant.id, port)

    async def delete(self, tenant: Tenant) -> Erasure:
        root = self._root(tenant)
        erased = Erasure(
            immediate=True,
            detail="the tenant's own Postgres instance was stopped and its data directory removed",
        )
        manifest = read_manifest(root)
        if manifest is None:
            return erased  # nothing was reserved (or it is gone already)
        if manifest.get("uid") != tenant.uid:
            raise ProvisioningError(
                f"{root} holds another tenant's instance (uid {manifest.get('uid')}); "
                "refusing to remove it"
            )
        await asyncio.to_thread(self._at(root, manifest, f"instance {tenant.id!r}").remove)
        return erased

    async def conform(self, tenant: Tenant, checkpoint: Checkpoint) -> None:
        if tenant.where.layout >= LAYOUT:
            return
        await self._provision(checkpoint)  # starting it also rewrites its access rules

    async def set_limits(self, tenant: Tenant, limits: RoleLimits) -> None:
        cluster = self._cluster(tenant)
        async with connect(
            cluster.superuser_conninfo(), where=cluster.name, timeout=self._settings.connect_timeout
        ) as conn:
            await apply_limits(conn, owner_role(tenant), limits)

    async def suspend(self, tenant: Tenant) -> None:
        await asyncio.to_thread(self._cluster(tenant).stop)

    async def resume(self, tenant: Tenant) -> None:
        await asyncio.to_thread(self._cluster(tenant).ensure_running)

    async def running(self, tenant: Tenant) -> bool:
        return (await asyncio.to_thread(self._cluster(tenant).status)).running

    async def describe(self, tenant: Tenant) -> dict[str, Any]:
        cluster = self._cluster(tenant)
        status = await asyncio.to_thread(cluster.status)
        facts: dict[str, Any] = {
            "exists": status.initialized,
            "running": status.running,
            "port": cluster.port,
            "data_dir": str(cluster.data_dir),
            "compute": ComputeSpec.from_json(
                InstancePlacement.of(tenant.placement).compute
            ).to_json(),
        }
        if not status.running or status.pid is None:
            return facts
        facts["pid"] = status.pid
        if status.started_at is not None:
            facts["started_at"] = status.started_at.isoformat()
            facts["uptime_seconds"] = round((datetime.now(UTC) - status.started_at).total_seconds())
        facts["memory_bytes"] = await asyncio.to_thread(process_tree_memory, status.pid)
        admin = cluster.superuser_conninfo()
        timeout = self._settings.connect_timeout
        async with connect(admin, where=cluster.name, timeout=timeout) as conn:
            # current_setting() renders sizes as SHOW does (16MB), as an operator writes them.
            cur = await conn.execute(
                "SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name",
                (list(SIZED_SETTINGS),),
            )
            facts["settings"] = dict(await cur.fetchall())
            database = tenant.where.database or tenant.id
            cur = await conn.execute(
                "SELECT pg_database_size(oid) FROM pg_database WHERE datname = %s", (database,)
            )
            row = await cur.fetchone()
            facts["size_bytes"] = int(row[0]) if row else None
            facts["connections"], facts["direct_connections"] = await session_counts(conn, database)
        return facts

    async def list_resources(self) -> list[OwnedResource]:
        return [
            OwnedResource(
                backend=self.kind,
                kind="instance",
                name=root.name,
                location=str(self._dir),
                tenant_id=str(manifest["tenant"]),
                tenant_uid=str(manifest["uid"]) if manifest.get("uid") else None,
            )
            for root, manifest in await asyncio.to_thread(self._ports.manifests, "instances")
        ]

    async def remove_resource(self, resource: OwnedResource) -> None:
        root = self._dir / resource.name
        manifest = read_manifest(root)
        if manifest is None:
            raise ProvisioningError(f"{root} is not an instance tenantvec made; not removing it")
        name = f"orphaned instance {resource.name!r}"
        await asyncio.to_thread(self._at(root, manifest, name).remove)

    async def aclose(self) -> None:
        pass  # servers keep running: they belong to their tenants, not to this process

    # -- the machine's instances -------------------------------------------------------

    def stop_all(self) -> int:
        """Stop every instance server on this machine (``tenantctl down``); how many ran."""
        return sum(
            self._at(root, manifest, f"instance {root.name!r}").stop()
            for root, manifest in self._ports.manifests("instances")
        )

    # -- internals ---------------------------------------------------------------------

    async def _provision(self, checkpoint: Checkpoint, *, discard_incomplete: bool = False) -> None:
        """Start the tenant's server, then make its roles and database there."""
        cluster = self._cluster(checkpoint.tenant)
        await asyncio.to_thread(cluster.ensure_running, discard_incomplete=discard_incomplete)
        await provision_own_server(
            cluster.superuser_conninfo(),
            checkpoint,
            where=cluster.name,
            timeout=self._settings.connect_timeout,
        )

    def _root(self, tenant: Tenant) -> Path:
        return self._dir / (InstancePlacement.of(tenant.placement).instance or tenant.id)

    def _cluster(self, tenant: Tenant) -> LocalCluster:
        """The tenant's cluster, configured as the catalog records it."""
        placement = InstancePlacement.of(tenant.placement)
        if placement.port is None:
            raise ProvisioningError(f"tenant {tenant.id!r} has no instance port in the catalog")
        compute = ComputeSpec.from_json(placement.compute)
        return LocalCluster(
            self._settings,
            root=self._root(tenant),
            port=placement.port,
            name=f"instance {tenant.id!r}",
            conf={**_INSTANCE_CONF, **compute.server_settings()},
        )

    def _at(self, root: Path, manifest: dict[str, Any], name: str) -> LocalCluster:
        """A cluster as its manifest knows it: enough to stop and remove it."""
        return LocalCluster(self._settings, root=root, port=int(manifest["port"]), name=name)
