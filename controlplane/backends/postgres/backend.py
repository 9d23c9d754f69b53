"""The ``postgres`` backend: a database and two login roles per tenant on a shared server.

The servers are registered in the catalog (``tenantctl servers add``; the embedded
server is ``local``); how the database and roles are made is ``lifecycle.tenantdb``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import sql

from controlplane.backends._tenantdb import (
    apply_limits,
    drop_tenant_database,
    ensure_tenant_database,
    rename_legacy_database,
    rename_legacy_role,
    session_counts,
)
from controlplane.backends.base import Checkpoint, OwnedResource, ProvisionPlan
from controlplane.backends.markers import (
    LAYOUT,
    MARKER_PREFIX,
    TenantDatabase,
    new_names,
    owner_role,
    parse_marker,
)
from controlplane.backends.servers import ServerDirectory, ensure_template
from controlplane.errors import InvalidRequest, ProvisioningError
from controlplane.failpoints import failpoint
from controlplane.model.backends import BackendKind
from controlplane.model.erasure import Erasure
from controlplane.model.limits import RoleLimits
from controlplane.model.placement import PostgresPlacement
from controlplane.model.records import Server, Tenant
from controlplane.model.request import TenantRequest
from controlplane.pgconnect import connect
from controlplane.secretbox import new_password
from controlplane.settings import Settings

__all__ = ["PostgresBackend"]

logger = logging.getLogger(__name__)


class PostgresBackend:
    kind = BackendKind.POSTGRES
    uses_servers = True
    regional = False
    sized = False
    supervises = False
    session_options = True

    def __init__(self, servers: ServerDirectory, settings: Settings, *, catalog_id: str) -> None:
        self._servers = servers
        self._settings = settings
        self.retry_seconds = settings.retry_seconds
        self._timeout = settings.connect_timeout
        self._catalog_id = catalog_id

    async def plan(self, request: TenantRequest, server: Server | None) -> ProvisionPlan:
        if server is None:
            raise InvalidRequest("the postgres backend needs a server to place the tenant on")
        admin = self._servers.admin_conninfo(server)
        database, service = new_names()
        return ProvisionPlan(
            server=server.name,
            placement=PostgresPlacement(
                database=database,
                role=database,
                service_role=service,
                address=server.address,
                layout=LAYOUT,
            ),
            conninfo=admin.with_(user=database, dbname=database, password=new_password()),
            service_conninfo=admin.with_(user=service, dbname=database, password=new_password()),
        )

    async def create(self, tenant: Tenant, checkpoint: Checkpoint) -> None:
        server = await self._server_of(tenant)
        conninfo, service = checkpoint.conninfo, checkpoint.service_conninfo
        assert conninfo is not None and conninfo.password is not None
        async with self._admin(server) as conn:
            admin = self._servers.admin_conninfo(server)
            await ensure_template(conn, admin, where=server.name, timeout=self._timeout)
            reserved = await ensure_tenant_database(
                conn,
                self._database(tenant),
                admin=admin,
                timeout=self._timeout,
                owner_password=conninfo.password,
                service_password=service.password if service else None,
                limits=tenant.where.limits,
                reserved_slots=True,
                where=f"server {server.name!r}",
            )
        recorded = PostgresPlacement.of(checkpoint.placement)
        if not reserved and recorded.reserved_slots is not False:
            # Recorded only when refused (the rare case), so that a create costs no
            # extra catalog write; doctor reports such tenants.
            await checkpoint.record(recorded.replace(reserved_slots=False))

    async def delete(self, tenant: Tenant) -> Erasure:
        server = await self._server_of(tenant)
        async with self._admin(server) as conn:
            await drop_tenant_database(
                conn, self._database(tenant), where=f"server {server.name!r}"
            )
        logger.info("dropped database and roles of tenant %s on %s", tenant.id, server.name)
        return Erasure(
            immediate=True,
            detail=f"DROP DATABASE on server {server.name!r}: the database's files are "
            "removed now (backups of the server keep it for their own retention)",
        )

    async def conform(self, tenant: Tenant, checkpoint: Checkpoint) -> None:
        """Bring a tenant made by an older tenantvec to this layout.

        Layout 1 (database and role named after its id): renamed to opaque names and
        given a service role. Layout 2: its service role takes the database and
        tenantvec's tables over, the tenant's own objects move out of ``public``
        (``tenantdb.ensure_tenant_database``). The new names and the service role's DSN
        are recorded first; the database is closed to connections while it is renamed.
        Each step looks before it acts, so an interrupted run is finished by the next.
        """
        recorded = PostgresPlacement.of(tenant.placement)
        layout = recorded.layout
        if layout >= LAYOUT:
            return
        server = await self._server_of(tenant)
        owner_dsn = checkpoint.conninfo
        assert owner_dsn is not None and owner_dsn.password is not None
        where = f"server {server.name!r}"
        admin = self._servers.admin_conninfo(server)
        if layout >= 2:
            new = self._database(tenant)
            service_dsn = checkpoint.service_conninfo
        else:
            old = self._database(tenant)
            target = recorded.rename_to
            if target is None:
                target, service = new_names()
                await checkpoint.record(
                    PostgresPlacement.of(checkpoint.placement).replace(rename_to=target),
                    service_conninfo=owner_dsn.with_(
                        user=service, dbname=target, password=new_password()
                    ),
                )
            service_dsn = checkpoint.service_conninfo
            assert service_dsn is not None
            async with self._admin(server) as conn:
                await rename_legacy_database(conn, old, str(target), where=where)
                failpoint(self._settings, "conform.after_database")
                await rename_legacy_role(conn, old, str(target), where=where)
            new = TenantDatabase(
                tenant_id=tenant.id,
                database=str(target),
                owner=str(target),
                service=service_dsn.user,
                marker=old.marker,
            )
        assert service_dsn is not None and service_dsn.password is not None
        async with self._admin(server) as conn:
            reserved = await ensure_tenant_database(
                conn,
                new,
                admin=admin,
                timeout=self._timeout,
                owner_password=owner_dsn.password,
                service_password=service_dsn.password,
                limits=tenant.where.limits,
                reserved_slots=True,
                where=where,
            )
        await checkpoint.record(
            PostgresPlacement.of(checkpoint.placement).replace(
                database=new.database,
                role=new.owner,
                service_role=new.service,
                layout=LAYOUT,
                reserved_slots=None if reserved else False,
                rename_to=None,
            ),
            conninfo=owner_dsn.with_(user=new.owner, dbname=new.database),
        )
        logger.info("tenant %s: brought to layout %d on %s", tenant.id, LAYOUT, server.name)

    async def set_limits(self, tenant: Tenant, limits: RoleLimits) -> None:
        async with self._admin(await self._server_of(tenant)) as conn:
            await apply_limits(conn, owner_role(tenant), limits)

    async def suspend(self, tenant: Tenant) -> None:
        await self._allow_connections(tenant, allow=False)

    async def resume(self, tenant: Tenant) -> None:
        await self._allow_connections(tenant, allow=True)

    async def running(self, tenant: Tenant) -> bool:
        return True  # the server is the operator's; doctor checks it

    async def describe(self, tenant: Tenant) -> dict[str, Any]:
        database = self._database(tenant).database
        async with self._admin(await self._server_of(tenant)) as conn:
            cur = await conn.execute(
                "SELECT pg_database_size(oid), datallowconn FROM pg_database WHERE datname = %s",
                (database,),
            )
            row = await cur.fetchone()
            if row is None:
                return {"exists": False}
            connections, direct = await session_counts(conn, database)
        return {
            "exists": True,
            "database": database,
            "size_bytes": int(row[0]),
            "allow_connections": bool(row[1]),
            "connections": connections,
            "direct_connections": direct,
        }

    async def list_resources(self) -> list[OwnedResource]:
        found: list[OwnedResource] = []
        for server in await self._servers.list():
            async with self._admin(server) as conn:
                cur = await conn.execute(
                    """
                    SELECT 'database', datname, shobj_description(oid, 'pg_database')
                    FROM pg_database
                    WHERE shobj_description(oid, 'pg_database') LIKE %(prefix)s
                    UNION ALL
                    SELECT 'role', rolname, shobj_description(oid, 'pg_authid')
                    FROM pg_roles
                    WHERE shobj_description(oid, 'pg_authid') LIKE %(prefix)s
                    ORDER BY 1, 2
                    """,
                    {"prefix": MARKER_PREFIX + "%"},
                )
                for kind, name, comment in await cur.fetchall():
                    marker = parse_marker(comment)
                    found.append(
                        OwnedResource(
                            backend=self.kind,
                            kind=kind,
                            name=name,
                            location=server.name,
                            tenant_uid=marker.uid if marker else None,
                            tenant_id=marker.tenant_id if marker else None,
                            catalog_id=marker.catalog_id if marker else None,
                            marker=comment,
                        )
                    )
        return found

    async def remove_resource(self, resource: OwnedResource) -> None:
        async with self._admin(await self._servers.get(resource.location)) as conn:
            # Only what still carries the very marker it was judged by.
            if resource.kind == "database":
                cur = await conn.execute(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                    "WHERE datname = %s",
                    (resource.name,),
                )
                statement = "DROP DATABASE IF EXISTS {} WITH (FORCE)"
            elif resource.kind == "role":
                cur = await conn.execute(
                    "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s",
                    (resource.name,),
                )
                statement = "DROP ROLE IF EXISTS {}"
            else:
                raise ProvisioningError(f"unknown resource kind {resource.kind!r}")
            row = await cur.fetchone()
            if row is None:
                return  # gone already
            if row[0] != resource.marker:
                raise ProvisioningError(
                    f"{resource.kind} {resource.name!r} changed its marker since it was listed; "
                    "not removing it"
                )
            await conn.execute(sql.SQL(statement).format(sql.Identifier(resource.name)))

    async def aclose(self) -> None:
        pass  # connections are opened per call

    async def _allow_connections(self, tenant: Tenant, *, allow: bool) -> None:
        database = self._database(tenant).database
        async with self._admin(await self._server_of(tenant)) as conn:
            await conn.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                    sql.Identifier(database), sql.SQL("true" if allow else "false")
                )
            )
            if not allow:
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (database,),
                )

    @asynccontextmanager
    async def _admin(self, server: Server) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """An autocommit admin connection to ``server``; errors name the server."""
        admin = self._servers.admin_conninfo(server)
        async with connect(admin, where=f"server {server.name!r}", timeout=self._timeout) as conn:
            yield conn

    async def _server_of(self, tenant: Tenant) -> Server:
        if tenant.server is None:
            raise ProvisioningError(f"tenant {tenant.id!r} has no server in the catalog")
        return await self._servers.get(tenant.server)

    def _database(self, tenant: Tenant) -> TenantDatabase:
        return TenantDatabase.of(tenant, self._catalog_id)
