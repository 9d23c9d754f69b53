"""Postgres servers as placement targets: checking, preparing and registering them."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from controlplane.catalog.models import utcnow
from controlplane.catalog.store import Catalog
from controlplane.dsn import ConnInfo
from controlplane.errors import (
    BackendUnavailable,
    Conflict,
    InvalidRequest,
    ProvisioningError,
    ServerExists,
)
from controlplane.model.records import Server, ServerState, validate_server_name
from controlplane.pgconnect import connect
from controlplane.secretbox import SecretBox

__all__ = [
    "TEMPLATE_DB",
    "ServerDirectory",
    "ServerFacts",
    "ensure_template",
    "inspect_server",
    "register_server",
    "unregister_server",
]

logger = logging.getLogger(__name__)

# Every tenant database is a copy of this one, which holds the vector extension.
TEMPLATE_DB = "tenantvec_template"


# How long a server's used bytes, as placement read them, are taken as current.
USED_BYTES_SECONDS = 30.0


@dataclass(frozen=True)
class ServerFacts:
    server_version: str
    pgvector_version: str


class ServerDirectory:
    """Registered servers with their admin credentials decrypted on demand."""

    def __init__(self, catalog: Catalog, box: SecretBox) -> None:
        self._catalog = catalog
        self._box = box
        self._bytes: dict[str, tuple[float, int]] = {}  # name -> (read at, bytes)
        self._measuring: dict[str, asyncio.Lock] = {}

    async def get(self, name: str) -> Server:
        return await self._catalog.get_server(name)

    async def list(self) -> list[Server]:
        return await self._catalog.list_servers()

    def admin_conninfo(self, server: Server) -> ConnInfo:
        return ConnInfo.parse(self._box.decrypt(server.admin_dsn_encrypted))

    async def used_bytes(self, server: Server, *, timeout: int) -> int:
        """What the server's databases hold on disk, read at most every
        ``USED_BYTES_SECONDS`` (placement asks on every create)."""
        # One measurement per server at a time: concurrent creates share it.
        async with self._measuring.setdefault(server.name, asyncio.Lock()):
            cached = self._bytes.get(server.name)
            if cached is not None and time.monotonic() - cached[0] < USED_BYTES_SECONDS:
                return cached[1]
            where = f"server {server.name!r}"
            admin = self.admin_conninfo(server)
            async with connect(admin, where=where, timeout=timeout) as conn:
                row = await (
                    await conn.execute(
                        "SELECT coalesce(sum(pg_database_size(oid)), 0) FROM pg_database"
                    )
                ).fetchone()
            used = int(row[0]) if row else 0
            self._bytes[server.name] = (time.monotonic(), used)
            return used


async def inspect_server(admin: ConnInfo, *, where: str, timeout: int) -> ServerFacts:
    """Check that ``admin`` reaches a Postgres fit to host tenants; say what is missing."""
    async with connect(admin, where=where, timeout=timeout) as conn:
        cur = await conn.execute(
            """
            SELECT current_setting('server_version'),
                   current_setting('server_version_num')::int,
                   (SELECT default_version FROM pg_available_extensions WHERE name = 'vector'),
                   r.rolsuper, r.rolcreatedb, r.rolcreaterole
            FROM pg_roles r WHERE r.rolname = current_user
            """
        )
        row = await cur.fetchone()
    assert row is not None
    version, version_num, pgvector, is_super, can_createdb, can_createrole = row
    if version_num < 150000:
        raise ProvisioningError(f"{where} runs Postgres {version}; tenantvec needs 15 or newer")
    if pgvector is None:
        raise ProvisioningError(
            f"{where} has no pgvector extension available; install pgvector on that server "
            "(e.g. the postgresql-18-pgvector package or the pgvector/pgvector image)"
        )
    if not (is_super or (can_createdb and can_createrole)):
        raise ProvisioningError(
            f"{where}: role {admin.user!r} needs CREATEDB and CREATEROLE (or superuser) to "
            "create tenant databases and roles"
        )
    return ServerFacts(server_version=str(version).split()[0], pgvector_version=str(pgvector))


async def ensure_template(
    conn: psycopg.AsyncConnection[Any], admin: ConnInfo, *, where: str, timeout: int
) -> None:
    """Create ``tenantvec_template`` (with the vector extension) on the server if missing.

    The template refuses connections once built: CREATE DATABASE cannot copy a
    template that anyone is connected to, and concurrent creates must never collide.
    """
    cur = await conn.execute(
        "SELECT datallowconn FROM pg_database WHERE datname = %s", (TEMPLATE_DB,)
    )
    row = await cur.fetchone()
    if row is not None and not row[0]:
        return
    ident = sql.Identifier(TEMPLATE_DB)
    if row is None:
        # Another process may be building it at the same moment; finishing is idempotent.
        try:
            await conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
        except psycopg.errors.DuplicateDatabase:
            pass
        except psycopg.errors.UniqueViolation:
            # ...or a killed command's CREATE DATABASE still runs on the server: wait.
            raise BackendUnavailable(
                f"{where}: {TEMPLATE_DB} is being created by another session"
            ) from None
    async with connect(admin.with_(dbname=TEMPLATE_DB), where=where, timeout=timeout) as template:
        try:
            await template.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.errors.InsufficientPrivilege:
            raise ProvisioningError(
                f"{where}: creating the vector extension needs a superuser; create it once "
                f"in database {TEMPLATE_DB!r} yourself or register the server as a superuser"
            ) from None
    await conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident))
    await conn.execute(
        sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(ident)
    )
    logger.info("prepared template database on %s", where)


async def register_server(
    catalog: Catalog,
    box: SecretBox,
    name: str,
    admin: ConnInfo,
    *,
    kind: str = "external",
    capacity: int | None = None,
    capacity_bytes: int | None = None,
    timeout: int = 5,
    replace: bool = False,
) -> Server:
    """Check a server, prepare its template database and record it in the catalog."""
    validate_server_name(name)
    if capacity is not None and capacity < 0:
        raise InvalidRequest("capacity must be zero or more tenants")
    if capacity_bytes is not None and capacity_bytes < 0:
        raise InvalidRequest("the byte capacity must be zero or more")
    if admin.password is None and not admin.host.startswith("/"):
        raise InvalidRequest("the server's DSN needs a password (scram-sha-256 login)")
    where = f"server {name!r}"
    if not replace and await catalog.find_server(name) is not None:
        raise ServerExists(name)
    facts = await inspect_server(admin, where=where, timeout=timeout)
    async with connect(admin, where=where, timeout=timeout) as conn:
        await ensure_template(conn, admin, where=where, timeout=timeout)
    encrypted = box.encrypt(admin.dsn)
    server = Server(
        name=name,
        kind=kind,
        state=ServerState.ACTIVE,
        address=f"{admin.host}:{admin.port}",
        capacity=capacity,
        capacity_bytes=capacity_bytes,
        server_version=facts.server_version,
        pgvector_version=facts.pgvector_version,
        created_at=utcnow(),
        admin_dsn_encrypted=encrypted,
    )
    return await catalog.add_server(server, replace=replace)


async def unregister_server(catalog: Catalog, name: str) -> None:
    """Forget a server that hosts no live tenant; its databases are not touched."""
    await catalog.get_server(name)
    hosted = (await catalog.count_live_tenants_by_server()).get(name, 0)
    if hosted:
        raise Conflict(f"server {name!r} still hosts {hosted} tenant(s); delete them first")
    await catalog.remove_server(name)
