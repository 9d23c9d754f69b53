"""The catalog's schema: versioned migrations through the tenant databases' runner, a
catalog made by an older tenantvec upgraded in place, the ORM held to the DDL."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from sqlmodel import SQLModel

from controlplane.catalog.store import CATALOG_MIGRATIONS, Catalog
from controlplane.dsn import ConnInfo
from controlplane.errors import MigrationChecksumMismatch
from controlplane.model.placement import TenantCopy

# The catalog as tenantvec before its schema was versioned first made it (create_all),
# before four of today's columns existed.
_OLD_CATALOG = """
CREATE TABLE catalog_meta (key varchar(63) PRIMARY KEY, value text NOT NULL);
CREATE TABLE servers (name varchar(63) PRIMARY KEY, kind varchar(16) NOT NULL,
    state varchar(16) NOT NULL, address varchar(255) NOT NULL,
    admin_dsn_encrypted text NOT NULL, capacity integer,
    server_version varchar(32) NOT NULL, pgvector_version varchar(32) NOT NULL,
    created_at timestamptz NOT NULL);
CREATE TABLE tenants (uid uuid PRIMARY KEY, id varchar(63) NOT NULL,
    state varchar(16) NOT NULL, backend varchar(32) NOT NULL, server varchar(63),
    placement jsonb NOT NULL DEFAULT '{}'::jsonb, dsn_encrypted text,
    dims integer NOT NULL, metric varchar(16) NOT NULL, index_kind varchar(16) NOT NULL,
    index_params jsonb NOT NULL DEFAULT '{}'::jsonb, text_config varchar(63) NOT NULL,
    schema_version integer NOT NULL, labels jsonb NOT NULL DEFAULT '{}'::jsonb,
    error text, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
    expires_at timestamptz, deleted_at timestamptz);
CREATE UNIQUE INDEX tenants_live_id ON tenants (id) WHERE state <> 'deleted';
INSERT INTO catalog_meta VALUES ('catalog_id', 'c0ffee00c0ffee00');
INSERT INTO tenants (uid, id, state, backend, dims, metric, index_kind, text_config,
    schema_version, created_at, updated_at)
VALUES ('00000000-0000-0000-0000-000000000001', 'old-tenant', 'ready', 'postgres', 3,
    'cosine', 'hnsw', 'english', 2, now(), now());
"""


async def _columns(conninfo: ConnInfo) -> dict[str, dict[str, bool]]:
    async with await psycopg.AsyncConnection.connect(conninfo.dsn) as conn:
        rows = await (
            await conn.execute(
                "SELECT table_name, column_name, is_nullable = 'YES' "
                "FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name <> 'schema_migrations'"
            )
        ).fetchall()
    found: dict[str, dict[str, bool]] = {}
    for table, column, nullable in rows:
        found.setdefault(table, {})[column] = nullable
    return found


async def test_a_fresh_catalog_is_migrated_and_matches_the_orm(empty_catalog: ConnInfo) -> None:
    catalog = await Catalog.connect(empty_catalog)
    await catalog.close()
    expected = {
        table.name: {c.name: bool(c.nullable) for c in table.columns}
        for table in SQLModel.metadata.sorted_tables
    }
    assert await _columns(empty_catalog) == expected
    async with await psycopg.AsyncConnection.connect(empty_catalog.dsn) as conn:
        ledger = await (
            await conn.execute("SELECT version, checksum FROM schema_migrations")
        ).fetchall()
    assert ledger == [(m.version, m.checksum) for m in CATALOG_MIGRATIONS.migrations]


async def test_a_catalog_from_before_versioning_upgrades_in_place(
    empty_catalog: ConnInfo,
) -> None:
    async with await psycopg.AsyncConnection.connect(empty_catalog.dsn, autocommit=True) as conn:
        await conn.execute(_OLD_CATALOG)  # type: ignore[arg-type]
    catalog = await Catalog.connect(empty_catalog)
    try:
        assert catalog.catalog_id == "c0ffee00c0ffee00"  # its id survives
        tenant = await catalog.find_tenant("old-tenant")
        assert tenant is not None and tenant.last_active_at is None
        assert tenant.service_dsn_encrypted is None
    finally:
        await catalog.close()
    columns = await _columns(empty_catalog)
    assert {"embedder", "chunking", "last_active_at", "service_dsn_encrypted"} <= set(
        columns["tenants"]
    )
    assert {"operations", "api_keys", "job_queue"} <= set(columns)


# Rows an older tenantvec left mid-move and mid-restore: the marks it kept in the
# placement (before moves and restores were states of the tenant).
_OLD_MARKS = """
INSERT INTO tenants (uid, id, state, backend, server, placement, dims, metric, index_kind,
    text_config, schema_version, created_at, updated_at)
VALUES
 ('00000000-0000-0000-0000-000000000002', 'copying', 'ready', 'postgres', 'local',
  '{"database": "a", "move": {"phase": "copying", "other": {"backend": "postgres",
    "server": "second", "placement": {"database": "b"}}}}', 3, 'cosine', 'hnsw',
  'english', 2, now(), now()),
 ('00000000-0000-0000-0000-000000000003', 'switched', 'ready', 'postgres', 'second',
  '{"database": "c", "move": {"phase": "switched", "other": {"backend": "postgres",
    "server": "local", "placement": {"database": "d"}}}}', 3, 'cosine', 'hnsw',
  'english', 2, now(), now()),
 ('00000000-0000-0000-0000-000000000004', 'restoring', 'provisioning', 'postgres',
  'local', '{"database": "e", "restore": {"from": "x", "digest": "f"}}', 3, 'cosine',
  'hnsw', 'english', 2, now(), now()),
 ('00000000-0000-0000-0000-000000000005', 'refused', 'failed', 'postgres', 'local',
  '{"database": "g", "restore": {"from": "x", "digest": "f"}}', 3, 'cosine', 'hnsw',
  'english', 2, now(), now());
"""


async def test_marks_an_older_catalog_kept_in_placements_become_states(
    empty_catalog: ConnInfo,
) -> None:
    async with await psycopg.AsyncConnection.connect(empty_catalog.dsn, autocommit=True) as conn:
        await conn.execute(_OLD_CATALOG + _OLD_MARKS)  # type: ignore[arg-type]
    catalog = await Catalog.connect(empty_catalog)
    try:
        found = {t.id: t for t in await catalog.list_tenants()}
    finally:
        await catalog.close()
    assert {i: t.state.value for i, t in found.items()} == {
        "old-tenant": "ready",
        "copying": "moving",
        "switched": "switched",
        "restoring": "restoring",
        "refused": "failed",
    }
    assert found["copying"].other_copy == TenantCopy("postgres", "second", {"database": "b"})
    assert found["switched"].other_copy == TenantCopy("postgres", "local", {"database": "d"})
    assert found["old-tenant"].other_copy is None
    # Nothing of the marks stays in a placement: each is its backend's record alone.
    assert {i: t.placement for i, t in found.items() if i != "old-tenant"} == {
        "copying": {"database": "a"},
        "switched": {"database": "c"},
        "restoring": {"database": "e"},
        "refused": {"database": "g"},
    }


async def test_processes_starting_together_on_a_fresh_catalog_all_get_it(
    empty_catalog: ConnInfo,
) -> None:
    catalogs = await asyncio.gather(*(Catalog.connect(empty_catalog) for _ in range(6)))
    try:
        assert len({c.catalog_id for c in catalogs}) == 1  # one id, chosen once
    finally:
        for catalog in catalogs:
            await catalog.close()


async def test_a_changed_migration_file_is_refused(empty_catalog: ConnInfo) -> None:
    await (await Catalog.connect(empty_catalog)).close()
    async with await psycopg.AsyncConnection.connect(empty_catalog.dsn, autocommit=True) as conn:
        await conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    with pytest.raises(MigrationChecksumMismatch, match="was changed after it was applied"):
        await Catalog.connect(empty_catalog)
