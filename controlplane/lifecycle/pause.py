"""Pausing a tenant's writes in Postgres itself -- the window in which a move catches up.

``ALTER DATABASE ... SET default_transaction_read_only = on`` and the tenant's open
sessions ended: every API process, ingestion job and pool then gets read-only sessions,
whether or not it has read the catalog, and a write fails with SQLSTATE 25006 (which the
router answers with 503 + Retry-After). Reads go on.
"""

from __future__ import annotations

from psycopg import sql

from controlplane.context import PlaneContext
from controlplane.model.records import Tenant
from controlplane.pgconnect import connect

__all__ = ["pause_writes"]


async def pause_writes(plane: PlaneContext, tenant: Tenant, *, paused: bool) -> None:
    """Make the tenant's database read-only for every new session (``paused``) and end
    the open ones, or writable again. As the service role, acting as the database's
    owner: it may alter the database and end the sessions of the tenant's roles."""
    where = f"tenant {tenant.id!r}"
    conninfo = plane.service_conninfo(tenant)
    async with connect(
        conninfo, where=where, timeout=plane.settings.connect_timeout, autocommit=True
    ) as conn:
        # This session opened after a pause would be read-only itself.
        await conn.execute("SET default_transaction_read_only = off")
        row = await (await conn.execute("SELECT current_database()")).fetchone()
        assert row is not None
        database = sql.Identifier(str(row[0]))
        if not paused:
            await conn.execute(
                sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(database)
            )
            return
        await conn.execute(
            sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(database)
        )
        # Sessions opened before keep their writable default: end them (a pooled idle
        # one is replaced at its next checkout, a read in flight is retried). A role may
        # end its own sessions: first the owner's (this session acts as the owner), then
        # the service role's (as itself; the same role again where there is none).
        for _ in ("owner", "service"):
            await conn.execute(_END_OWN_SESSIONS)
            await conn.execute("SET ROLE NONE")


_END_OWN_SESSIONS = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND usename = current_user
"""
