"""The ``postgres`` backend: a database and a login role per tenant on a Postgres server.

Both are named after the tenant id (ids are valid Postgres identifiers and reserved
names are refused), and both carry a marker comment ``tenantvec tenant=<id>`` so that
reconcile can find what tenantvec made on a server -- and never touches what it did
not make.

The database is copied from ``tenantvec_template`` (which already holds the vector
extension, so the tenant role need not be a superuser), owned by the tenant role, and
closed to PUBLIC.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import sql

from controlplane.catalog.records import Server, Tenant
from controlplane.errors import InvalidRequest, ProvisioningError
from controlplane.pgconnect import connect
from controlplane.provisioning.backend import Checkpoint, OwnedResource, ProvisionPlan
from controlplane.provisioning.servers import TEMPLATE_DB, ServerDirectory, ensure_template
from controlplane.secretbox import new_password

__all__ = ["PostgresBackend"]

logger = logging.getLogger("tenantvec.provisioning.postgres")

_MARKER_PREFIX = "tenantvec tenant="
_MARKER_RE = re.compile(r"^tenantvec tenant=([a-z][a-z0-9-]{1,61}[a-z0-9])$")


def marker(tenant_id: str) -> str:
    return _MARKER_PREFIX + tenant_id


class PostgresBackend:
    kind = "postgres"
    uses_servers = True

    def __init__(self, servers: ServerDirectory, *, connect_timeout: int) -> None:
        self._servers = servers
        self._timeout = connect_timeout

    async def plan(
        self, tenant_id: str, server: Server | None, *, region: str | None
    ) -> ProvisionPlan:
        if region is not None:
            raise InvalidRequest(
                "the postgres backend places tenants on servers, not regions: use --server "
                "(regions apply to the neon backend)"
            )
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
            await self._ensure_role(conn, tenant.id, role, conninfo.password, server.name)
            await self._ensure_database(conn, tenant.id, database, role, server.name)

    async def delete(self, tenant: Tenant) -> None:
        server = await self._server_of(tenant)
        database, role = _names(tenant)
        async with self._admin(server) as conn:
            facts = await _database_facts(conn, database)
            if facts is not None:
                if not _belongs_to(facts, tenant.id, role):
                    raise ProvisioningError(
                        f"database {database!r} on server {server.name!r} does not carry "
                        f"tenant {tenant.id!r}'s marker; refusing to drop it"
                    )
                # WITH (FORCE) terminates the tenant's sessions first (Postgres 13+).
                await conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(database)
                    )
                )
            role_marker = await _role_marker(conn, role)
            if role_marker is not None:
                if role_marker != marker(tenant.id):
                    raise ProvisioningError(
                        f"role {role!r} on server {server.name!r} does not carry tenant "
                        f"{tenant.id!r}'s marker; refusing to drop it"
                    )
                await conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        logger.info("dropped database and role of tenant %s on %s", tenant.id, server.name)

    async def suspend(self, tenant: Tenant) -> None:
        await self._allow_connections(tenant, allow=False)

    async def resume(self, tenant: Tenant) -> None:
        await self._allow_connections(tenant, allow=True)

    async def describe(self, tenant: Tenant) -> dict[str, Any]:
        database, _ = _names(tenant)
        async with self._admin(await self._server_of(tenant)) as conn:
            cur = await conn.execute(
                """
                SELECT pg_database_size(d.oid), d.datallowconn,
                       (SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.oid)
                FROM pg_database d WHERE d.datname = %s
                """,
                (database,),
            )
            row = await cur.fetchone()
        if row is None:
            return {"exists": False}
        return {
            "exists": True,
            "size_bytes": int(row[0]),
            "allow_connections": bool(row[1]),
            "connections": int(row[2]),
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
                    match = _MARKER_RE.match(comment or "")
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

    # -- steps ------------------------------------------------------------------------

    async def _ensure_role(
        self,
        conn: psycopg.AsyncConnection[Any],
        tenant_id: str,
        role: str,
        password: str,
        server: str,
    ) -> None:
        # Send a SCRAM verifier, not the password: the plaintext never reaches the
        # server, so no statement log can capture it.
        verifier = conn.pgconn.encrypt_password(
            password.encode(), role.encode(), b"scram-sha-256"
        ).decode()
        existing = await _role_marker(conn, role)
        ident = sql.Identifier(role)
        if existing is None and not await _role_exists(conn, role):
            async with conn.transaction():
                await conn.execute(
                    sql.SQL(
                        "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT "
                        "NOREPLICATION NOBYPASSRLS PASSWORD {}"
                    ).format(ident, sql.Literal(verifier))
                )
                await conn.execute(
                    sql.SQL("COMMENT ON ROLE {} IS {}").format(
                        ident, sql.Literal(marker(tenant_id))
                    )
                )
            return
        if existing != marker(tenant_id):
            raise ProvisioningError(
                f"role {role!r} already exists on server {server!r} and does not belong to "
                f"tenant {tenant_id!r}; pick another tenant id or remove the role"
            )
        # Resuming a create: make sure the role has the password the catalog holds.
        await conn.execute(
            sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(verifier))
        )

    async def _ensure_database(
        self,
        conn: psycopg.AsyncConnection[Any],
        tenant_id: str,
        database: str,
        role: str,
        server: str,
    ) -> None:
        ident = sql.Identifier(database)
        facts = await _database_facts(conn, database)
        if facts is None:
            try:
                await conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {} STRATEGY wal_log").format(
                        ident, sql.Identifier(role), sql.Identifier(TEMPLATE_DB)
                    )
                )
            except psycopg.errors.DuplicateDatabase:
                facts = await _database_facts(conn, database)
        if facts is not None and not _belongs_to(facts, tenant_id, role):
            raise ProvisioningError(
                f"database {database!r} already exists on server {server!r} and does not "
                f"belong to tenant {tenant_id!r}; pick another tenant id or remove it"
            )
        await conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(marker(tenant_id)))
        )
        await conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident))

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


async def _database_facts(
    conn: psycopg.AsyncConnection[Any], database: str
) -> tuple[str, str | None] | None:
    """(owner, marker comment) of ``database``, or None if there is none."""
    cur = await conn.execute(
        """
        SELECT pg_get_userbyid(datdba), shobj_description(oid, 'pg_database')
        FROM pg_database WHERE datname = %s
        """,
        (database,),
    )
    row = await cur.fetchone()
    return (str(row[0]), row[1]) if row else None


def _belongs_to(facts: tuple[str, str | None], tenant_id: str, role: str) -> bool:
    owner, comment = facts
    if comment is not None:
        return comment == marker(tenant_id)
    # A crash between CREATE DATABASE and COMMENT leaves no marker yet; the owner
    # (our marked role) still tells us it is ours.
    return owner == role


async def _role_marker(conn: psycopg.AsyncConnection[Any], role: str) -> str | None:
    cur = await conn.execute(
        "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s", (role,)
    )
    row = await cur.fetchone()
    return row[0] if row else None


async def _role_exists(conn: psycopg.AsyncConnection[Any], role: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    return await cur.fetchone() is not None
