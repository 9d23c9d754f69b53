"""Applying migrations to one database: a tenant's, or the catalog's own.

Each migration runs in its own transaction together with its ``schema_migrations`` row,
under a transaction-scoped advisory lock, so concurrent runners on one database apply
each version once and a crash leaves the database at a clean version. Before anything
is applied, the checksums of applied migrations are compared with the files: a changed
file is refused, never silently re-applied or ignored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from controlplane.errors import MigrationChecksumMismatch, MigrationError
from tenantvec_schema.migrations import Migration, MigrationSet, render_migration
from tenantvec_schema.spec import SchemaSpec

__all__ = ["MigrationReport", "applied_version", "migrate"]

logger = logging.getLogger("tenantvec.schema")

# Any constant works: it only has to be the same for every runner of this database.
LOCK_KEY = 0x74656E76  # "tenv"

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class MigrationReport:
    from_version: int
    to_version: int
    applied: tuple[int, ...] = field(default=())


async def applied_version(conn: psycopg.AsyncConnection[Any]) -> int:
    """The highest applied version, 0 for a database with no ledger yet."""
    row = await (
        await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    ).fetchone()
    if not row or not row[0]:
        return 0
    cur = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
    result = await cur.fetchone()
    return int(result[0]) if result else 0


async def migrate(
    conn: psycopg.AsyncConnection[Any],
    spec: SchemaSpec | None,
    migrations: MigrationSet | None = None,
    *,
    target: int | None = None,
) -> MigrationReport:
    """Bring the database behind ``conn`` (autocommit off) up to ``target`` (latest).

    ``spec`` renders a tenant's migrations; None applies files as written (the
    catalog's).
    """
    migrations = migrations or MigrationSet.bundled()
    target = migrations.latest if target is None else target
    known = migrations.by_version()
    async with conn.transaction():
        # Under the lock: runners starting together on a fresh database (API workers on
        # a new catalog) would otherwise race to create the ledger.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        await conn.execute(_CREATE_LEDGER)
    applied = await _ledger(conn)
    _verify(applied, known)
    start = max(applied, default=0)
    if start > migrations.latest:
        raise MigrationError(
            f"database is at schema version {start}, newer than this tenantvec knows "
            f"({migrations.latest}); upgrade tenantvec"
        )
    done: list[int] = []
    for version in range(start + 1, target + 1):
        migration = known[version]
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            cur = await conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = %s", (version,)
            )
            if await cur.fetchone():
                continue  # another runner applied it while we waited for the lock
            try:
                await conn.execute(render_migration(migration, spec))
            except psycopg.Error as exc:
                raise MigrationError(
                    f"migration {version} ({migration.name}) failed: "
                    f"{exc.diag.message_primary or exc}"
                ) from exc
            await conn.execute(
                sql.SQL(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ({}, {}, {})"
                ).format(
                    sql.Literal(version),
                    sql.Literal(migration.name),
                    sql.Literal(migration.checksum),
                )
            )
        done.append(version)
        logger.debug("applied tenant migration %d (%s)", version, migration.name)
    return MigrationReport(from_version=start, to_version=max(start, target), applied=tuple(done))


async def _ledger(conn: psycopg.AsyncConnection[Any]) -> dict[int, str]:
    cur = await conn.execute("SELECT version, checksum FROM schema_migrations ORDER BY version")
    return {int(v): str(c) for v, c in await cur.fetchall()}


def _verify(applied: dict[int, str], known: dict[int, Migration]) -> None:
    for version, checksum in applied.items():
        migration = known.get(version)
        if migration is not None and migration.checksum != checksum:
            raise MigrationChecksumMismatch(
                f"migration {version} ({migration.name}) was changed after it was applied "
                "to this database; restore the original file and add a new migration instead"
            )
