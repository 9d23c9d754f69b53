"""The ``postgres`` backend: a database and a login role per tenant on a shared server.

The servers are registered in the catalog (``tenantctl servers add``; the embedded
server is ``local``); how the database and role are made is ``provisioning.tenantdb``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import sql

from controlplane.catalog.records import Server, Tenant
from controlplane.errors import InvalidRequest, ProvisioningError
from controlplane.pgconnect import connect
from controlplane.provisioning.backend import Checkpoint, OwnedResource, ProvisionPlan
from controlplane.provisioning.compute import ComputeSpec
from controlplane.provisioning.servers import ServerDirectory, ensure_template
from controlplane.provisioning.tenantdb import (
    MARKER_RE,
    drop_tenant_database,
    ensure_tenant_database,
    ensure_tenant_role,
    session_counts,
)
from controlplane.secretbox import new_password

__all__ = ["PostgresBackend"]

logger = logging.getLogger("tenantvec.provisioning.postgres")


class PostgresBackend:
    kind = "postgres"
    uses_servers = True
    regional = False
    sized = False
    supervises = False

    def __init__(self, servers: ServerDirectory, *, connect_timeout: int) -> None:
        self._servers = servers
        self._timeout = connect_timeout

    async def plan(
        self,
        tenant_id: str,
        server: Server | None,
        *,
        region: str | None,
        compute: ComputeSpec | None = None,
    ) -> ProvisionPlan:
        if server is None:
            raise InvalidRequest("the postgres backend needs a server to place the tenant on")
        admin = self._servers.admin_conninfo(server)
        conninfo = admin.with_(user=tenant_id, dbname=tenant_id, password=new_password())
        return ProvisionPlan(
            server=server.name,
            placement={"database": tenant_id, "role": tenant_id, "address": server.address},
            conninfo=conninfo,
        )

    async def create(self, tenant: Tenant, checkpoint: Checkpoint) -> None:
        server = await self._server_of(tenant)
        database, role = _names(tenant)
        conninfo = checkpoint.conninfo
        assert conninfo is not None and conninfo.password is not None
        async with self._admin(server) as conn:
            admin = self._servers.admin_conninfo(server)
            await ensure_template(conn, admin, where=server.name, timeout=self._timeout)
            where = f"server {server.name!r}"
            await ensure_tenant_role(conn, tenant.id, role, conninfo.password, where=where)
            await ensure_tenant_database(conn, tenant.id, database, role, where=where)

    async def delete(self, tenant: Tenant) -> None:
        server = await self._server_of(tenant)
        database, role = _names(tenant)
        async with self._admin(server) as conn:
            where = f"server {server.name!r}"
            await drop_tenant_database(conn, tenant.id, database, role, where=where)
        logger.info("dropped database and role of tenant %s on %s", tenant.id, server.name)

    async def suspend(self, tenant: Tenant) -> None:
        await self._allow_connections(tenant, allow=False)

    async def resume(self, tenant: Tenant) -> None:
        await self._allow_connections(tenant, allow=True)

    async def running(self, tenant: Tenant) -> bool:
        return True  # the server is the operator's; doctor checks it

    async def describe(self, tenant: Tenant) -> dict[str, Any]:
        database, _ = _names(tenant)
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
                    WHERE shobj_description(oid, 'pg_database') LIKE 'tenantvec tenant=%%'
                    UNION ALL
                    SELECT 'role', rolname, shobj_description(oid, 'pg_authid')
                    FROM pg_roles
                    WHERE shobj_description(oid, 'pg_authid') LIKE 'tenantvec tenant=%%'
                    ORDER BY 1, 2
                    """
                )
                for kind, name, comment in await cur.fetchall():
                    match = MARKER_RE.match(comment or "")
                    found.append(
                        OwnedResource(
                            backend=self.kind,
                            kind=kind,
                            name=name,
                            location=server.name,
                            tenant_id=match.group(1) if match else None,
                        )
                    )
        return found

    async def remove_resource(self, resource: OwnedResource) -> None:
        async with self._admin(await self._servers.get(resource.location)) as conn:
            if resource.kind == "database":
                await conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(resource.name)
                    )
                )
            elif resource.kind == "role":
                await conn.execute(
                    sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(resource.name))
                )
            else:
                raise ProvisioningError(f"unknown resource kind {resource.kind!r}")

    async def aclose(self) -> None:
        pass  # connections are opened per call

    async def _allow_connections(self, tenant: Tenant, *, allow: bool) -> None:
        database, _ = _names(tenant)
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


def _names(tenant: Tenant) -> tuple[str, str]:
    return str(tenant.placement.get("database", tenant.id)), str(
        tenant.placement.get("role", tenant.id)
    )
