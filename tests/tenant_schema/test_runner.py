"""The migration runner on real tenant databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from controlplane.errors import MigrationChecksumMismatch, MigrationError
from controlplane.plane import ControlPlane
from tenantvec_schema.migrations import MigrationSet, render_migration
from tenantvec_schema.reshape import change_dimensions
from tenantvec_schema.runner import applied_version, migrate
from tenantvec_schema.spec import IndexKind, IndexSpec, Metric, Precision, SchemaSpec


@pytest.fixture
async def scratch_db(plane: ControlPlane, superuser_dsn: str, tenant_id: str) -> AsyncIterator[str]:
    """An empty database with the vector extension, dropped afterwards.

    Depends on ``plane`` because opening the control plane prepares the template.
    """
    name = tenant_id
    async with await psycopg.AsyncConnection.connect(superuser_dsn, autocommit=True) as conn:
        await conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE tenantvec_template").format(sql.Identifier(name))
        )
    dsn = psycopg.conninfo.make_conninfo(superuser_dsn, dbname=name)
    try:
        yield dsn
    finally:
        async with await psycopg.AsyncConnection.connect(superuser_dsn, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name))
            )


LATEST = MigrationSet.bundled().latest
NEXT = LATEST + 1


def _with_extra_migration(tmp_path: Path, body: str) -> MigrationSet:
    for migration in MigrationSet.bundled().migrations:
        (tmp_path / f"{migration.version:04d}_{migration.name}.sql").write_text(migration.template)
    (tmp_path / f"{NEXT:04d}_add_language.sql").write_text(body)
    return MigrationSet.from_directory(tmp_path)


async def test_bundled_migrations_apply_once(scratch_db: str) -> None:
    spec = SchemaSpec(dims=5)
    async with await psycopg.AsyncConnection.connect(scratch_db) as conn:
        first = await migrate(conn, spec)
        again = await migrate(conn, spec)
        assert await applied_version(conn) == LATEST
        cur = await conn.execute(
            "SELECT version, name, length(checksum) FROM schema_migrations ORDER BY version"
        )
        ledger = await cur.fetchall()
    assert first.applied == tuple(range(1, LATEST + 1)) and first.from_version == 0
    assert again.applied == () and again.to_version == LATEST
    assert ledger == [(m.version, m.name, 64) for m in MigrationSet.bundled().migrations]


async def test_upgrade_applies_only_new_versions(scratch_db: str, tmp_path: Path) -> None:
    spec = SchemaSpec(dims=5)
    extended = _with_extra_migration(tmp_path, "ALTER TABLE documents ADD COLUMN language text;")
    async with await psycopg.AsyncConnection.connect(scratch_db) as conn:
        await migrate(conn, spec)
        report = await migrate(conn, spec, extended)
        cur = await conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'documents' "
            "AND column_name = 'language'"
        )
        assert await cur.fetchone() == (1,)
    assert (report.from_version, report.to_version, report.applied) == (LATEST, NEXT, (NEXT,))


async def test_failed_migration_rolls_back_whole(scratch_db: str, tmp_path: Path) -> None:
    spec = SchemaSpec(dims=5)
    broken = _with_extra_migration(
        tmp_path, "ALTER TABLE documents ADD COLUMN language text;\nSELECT no_such_function();"
    )
    async with await psycopg.AsyncConnection.connect(scratch_db) as conn:
        await migrate(conn, spec)
        with pytest.raises(MigrationError, match=f"migration {NEXT} .* failed"):
            await migrate(conn, spec, broken)
        assert await applied_version(conn) == LATEST
        cur = await conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'language'"
        )
        assert await cur.fetchone() == (0,)


async def test_changed_applied_file_is_refused(scratch_db: str, tmp_path: Path) -> None:
    spec = SchemaSpec(dims=5)
    async with await psycopg.AsyncConnection.connect(scratch_db) as conn:
        await migrate(conn, spec)
        for migration in MigrationSet.bundled().migrations:
            (tmp_path / f"{migration.version:04d}_{migration.name}.sql").write_text(
                migration.template + "\n-- edited after release\n"
            )
        with pytest.raises(MigrationChecksumMismatch, match="changed after it was applied"):
            await migrate(conn, spec, MigrationSet.from_directory(tmp_path))


async def test_database_newer_than_code_is_refused(scratch_db: str, tmp_path: Path) -> None:
    spec = SchemaSpec(dims=5)
    async with await psycopg.AsyncConnection.connect(scratch_db) as conn:
        await migrate(conn, spec, _with_extra_migration(tmp_path, "SELECT 1;"))
        with pytest.raises(MigrationError, match="newer than this tenantvec knows"):
            await migrate(conn, spec)


def test_rendering_composes_settings_safely() -> None:
    migration = MigrationSet.bundled().migrations[0]
    spec = SchemaSpec(
        dims=768,
        metric=Metric.IP,
        index=IndexSpec(IndexKind.IVFFLAT, lists=50, precision=Precision.FULL),
        text_config="simple",
    )
    rendered = render_migration(migration, spec).as_string(None)
    assert "vector(768)" in rendered
    assert "to_tsvector('simple'::regconfig, content)" in rendered
    assert 'USING ivfflat ("embedding" "vector_ip_ops") WITH ("lists" = 50)' in rendered
    assert "'{}'" in rendered and "{{" not in rendered
    # 768 dims, precision not chosen: a half-precision index on the vectors' halfvec form.
    half = SchemaSpec(dims=768, index=IndexSpec(IndexKind.HNSW))
    assert (
        'USING hnsw (("embedding"::halfvec(768)) "halfvec_cosine_ops") '
        'WITH ("m" = 16, "ef_construction" = 64)'
    ) in render_migration(migration, half).as_string(None)


def test_migration_files_must_be_contiguous(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="without gaps"):
        MigrationSet.from_directory(tmp_path)


async def _embedding_storage(conn: psycopg.AsyncConnection[object]) -> tuple[str, int]:
    """The column's storage and the pages the table's TOAST relation holds."""
    cur = await conn.execute(
        "SELECT a.attstorage::text, pg_relation_size(c.reltoastrelid) FROM pg_class c "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'embedding' "
        "WHERE c.relname = 'chunks'"
    )
    row = await cur.fetchone()
    assert row is not None
    return row[0], row[1]


async def test_vectors_are_kept_in_the_row(scratch_db: str) -> None:
    # Out-of-line vectors make the planner price a sequential scan by a heap of a few
    # bytes per row and skip the vector index; 0003 keeps them in the row -- also after
    # a dimension change, which recreates the column.
    spec = SchemaSpec(dims=1024)
    # Random vectors: they do not compress, as real embeddings do not.
    vector = "(SELECT array_agg(random()) FROM generate_series(1, {dims}) WHERE n >= 0)::vector"
    async with await psycopg.AsyncConnection.connect(scratch_db, autocommit=True) as conn:
        await migrate(conn, spec)
        await conn.execute("INSERT INTO documents (id) VALUES ('d')")
        await conn.execute(
            "INSERT INTO chunks (document_id, ordinal, content, embedding) "
            f"SELECT 'd', n, 'text', {vector.format(dims=1024)} FROM generate_series(0, 49) n"
        )
        assert await _embedding_storage(conn) == ("m", 0)
        await change_dimensions(conn, SchemaSpec(dims=1536))
        await conn.execute(
            f"UPDATE chunks SET embedding = {vector.format(dims=1536)} FROM (SELECT 0) AS z(n)"
        )
        assert await _embedding_storage(conn) == ("m", 0)
