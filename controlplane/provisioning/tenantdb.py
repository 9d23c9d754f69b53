"""A tenant's database and login role on a Postgres server: made, checked and dropped.

Shared by every backend that reaches a server as its superuser (``postgres``,
``instance``, ``docker``). Both are named after the tenant id (ids are valid Postgres
identifiers and reserved names are refused), and both carry a marker comment
``tenantvec tenant=<id>`` so that reconcile can find what tenantvec made on a server --
and never touches what it did not make.

The database is copied from ``tenantvec_template`` (which already holds the vector
extension, so the tenant role need not be a superuser), owned by the tenant role, and
closed to PUBLIC.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

from controlplane.dsn import ConnInfo
from controlplane.errors import ProvisioningError
from controlplane.pgconnect import CONTROLPLANE_APPLICATION, ROUTER_APPLICATION, connect
from controlplane.provisioning.backend import Checkpoint
from controlplane.provisioning.servers import TEMPLATE_DB, ensure_template
from controlplane.secretbox import new_password

__all__ = [
    "MARKER_RE",
    "provision_own_server",
    "session_counts",
    "drop_tenant_database",
    "ensure_tenant_database",
    "ensure_tenant_role",
    "marker",
]

Conn = psycopg.AsyncConnection[Any]

MARKER_RE = re.compile(r"^tenantvec tenant=([a-z][a-z0-9-]{1,61}[a-z0-9])$")
_MARKER_PREFIX = "tenantvec tenant="


def marker(tenant_id: str) -> str:
    return _MARKER_PREFIX + tenant_id


async def ensure_tenant_role(
    conn: Conn, tenant_id: str, role: str, password: str, *, where: str
) -> None:
    """Create the tenant's login role, or give an existing one of ours ``password``."""
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
                sql.SQL("COMMENT ON ROLE {} IS {}").format(ident, sql.Literal(marker(tenant_id)))
            )
        return
    if existing != marker(tenant_id):
        raise ProvisioningError(
            f"role {role!r} already exists on {where} and does not belong to tenant "
            f"{tenant_id!r}; pick another tenant id or remove the role"
        )
    # Resuming a create: make sure the role has the password the catalog holds.
    await conn.execute(
        sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(verifier))
    )


async def ensure_tenant_database(
    conn: Conn, tenant_id: str, database: str, role: str, *, where: str
) -> None:
    """Create the tenant's database from the template, owned by its role, closed to PUBLIC."""
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
            f"database {database!r} already exists on {where} and does not belong to "
            f"tenant {tenant_id!r}; pick another tenant id or remove it"
        )
    await conn.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(marker(tenant_id)))
    )
    await conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident))


async def drop_tenant_database(
    conn: Conn, tenant_id: str, database: str, role: str, *, where: str
) -> None:
    """Drop the tenant's database and role -- only if they carry its marker."""
    facts = await _database_facts(conn, database)
    if facts is not None:
        if not _belongs_to(facts, tenant_id, role):
            raise ProvisioningError(
                f"database {database!r} on {where} does not carry tenant {tenant_id!r}'s "
                "marker; refusing to drop it"
            )
        # WITH (FORCE) terminates the tenant's sessions first (Postgres 13+).
        await conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
    role_marker = await _role_marker(conn, role)
    if role_marker is not None:
        if role_marker != marker(tenant_id):
            raise ProvisioningError(
                f"role {role!r} on {where} does not carry tenant {tenant_id!r}'s marker; "
                "refusing to drop it"
            )
        await conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


async def provision_own_server(
    admin: ConnInfo, tenant_id: str, checkpoint: Checkpoint, *, where: str, timeout: int
) -> None:
    """On a server of the tenant's own (instance, container) reached as ``admin``: the
    template, the tenant's role and its database.

    The role's DSN is recorded (with a new password) before the role is made, so a
    create that dies in between is resumed with the password the catalog holds.
    """
    conninfo = checkpoint.conninfo
    if conninfo is None:
        conninfo = admin.with_(user=tenant_id, dbname=tenant_id, password=new_password())
        await checkpoint.record(conninfo=conninfo)
    assert conninfo.password is not None
    async with connect(admin, where=where, timeout=timeout) as conn:
        await ensure_template(conn, admin, where=where, timeout=timeout)
        await ensure_tenant_role(conn, tenant_id, tenant_id, conninfo.password, where=where)
        await ensure_tenant_database(conn, tenant_id, tenant_id, tenant_id, where=where)


async def session_counts(conn: Conn, database: str) -> tuple[int, int]:
    """Sessions in ``database``: all of them, and those of clients other than tenantvec.

    The second is what scale to zero must respect: a client connected with the tenant's
    DSN directly (a CI job, psql) is in use even though no request reached the router.
    """
    cur = await conn.execute(
        """
        SELECT count(*), count(*) FILTER (WHERE application_name <> ALL(%s))
        FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'
        """,
        ([ROUTER_APPLICATION, CONTROLPLANE_APPLICATION], database),
    )
    row = await cur.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def _database_facts(conn: Conn, database: str) -> tuple[str, str | None] | None:
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


async def _role_marker(conn: Conn, role: str) -> str | None:
    cur = await conn.execute(
        "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s", (role,)
    )
    row = await cur.fetchone()
    return row[0] if row else None


async def _role_exists(conn: Conn, role: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    return await cur.fetchone() is not None
