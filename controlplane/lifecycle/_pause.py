"""Pausing a tenant's writes in Postgres itself -- the window in which a move catches up.

``ALTER DATABASE ... SET default_transaction_read_only = on`` and the tenant's open
sessions ended: every API process, ingestion job and pool then gets read-only sessions,
whether or not it has read the catalog, and a write fails with SQLSTATE 25006 (which the
router answers with 503 + Retry-After). Reads through the API go on.

Any session may turn its own read-only default off, so the tenant's own DSN is shut out
instead while the pause lasts: its role loses CONNECT on the database (which the service
role owns, layout 3; the tenant cannot give it back) and its sessions are ended. A
client of the tenant's own reconnects once the move is over.
"""

from __future__ import annotations

from psycopg import sql

from controlplane.backends.markers import owner_role
from controlplane.context import PlaneContext
from controlplane.model.records import Tenant
from controlplane.pgconnect import connect

__all__ = ["pause_writes"]


async def pause_writes(plane: PlaneContext, tenant: Tenant, *, paused: bool) -> None:
    """Make the tenant's database read-only for every new session and shut its own role
    out (``paused``), or writable and open again. As the service role: the database's
    owner, a member of the tenant's role (it may end that role's sessions)."""
    where = f"tenant {tenant.id!r}"
    conninfo = plane.service_conninfo(tenant)
    async with connect(
        conninfo, where=where, timeout=plane.settings.connect_timeout, autocommit=True
    ) as conn:
        # This session opened after a pause would be read-only itself.
        await conn.execute("SET default_transaction_read_only = off")
        row = await (
            await conn.execute(
                "SELECT current_database(), pg_get_userbyid(datdba) = current_user "
                "FROM pg_database WHERE datname = current_database()"
            )
        ).fetchone()
        assert row is not None
        database = sql.Identifier(str(row[0]))
        # Before layout 3 the tenant's role owns the database: nothing to shut it out of
        # (nor on Neon, whose one role is the tenant's and the control plane's).
        separate = tenant.where.service_role and bool(row[1])
        tenant_role = owner_role(tenant) if separate else None
        if not paused:
            await conn.execute(
                sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(database)
            )
            if tenant_role is not None:
                await conn.execute(
                    sql.SQL("GRANT CONNECT, TEMPORARY, CREATE ON DATABASE {} TO {}").format(
                        database, sql.Identifier(tenant_role)
                    )
                )
            return
        await conn.execute(
            sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(database)
        )
        if tenant_role is not None:
            await conn.execute(
                sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}").format(
                    database, sql.Identifier(tenant_role)
                )
            )
        # Sessions opened before keep their writable default: end them (a pooled idle
        # one is replaced at its next checkout, a read in flight is retried) -- the
        # tenant role's and the service role's, this one aside. Before layout 3 this
        # session acts as the owner: first the owner's, then (as itself) the service's.
        if tenant_role is not None:
            await conn.execute(_END_SESSIONS, ([tenant_role, conninfo.user],))
        else:
            for _ in ("owner", "service"):
                await conn.execute(_END_OWN_SESSIONS)
                await conn.execute("SET ROLE NONE")


_END_SESSIONS = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND usename = ANY(%s)
"""
_END_OWN_SESSIONS = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND usename = current_user
"""
