"""Backup files made to hurt: each is refused as ``backup_invalid`` -- through the real
API (400 problem+json, no server path in it) and ``tenantctl`` (exit 2, one line) -- and
leaves nothing behind: no tenant, database, role or scratch file.

The files are real backups, rewritten (their manifest's digests kept consistent, so that
only the check under test trips), or real backups of tenants whose own objects were
made to be slow or to expand."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from controlplane.localpg.tools import pg_tool
from controlplane.settings import Settings
from tests.fixtures.api import RunningApi
from tests.fixtures.cli import TenantCtl, kill_group_after, one_line_error, settings_env

Members = dict[str, bytes]


def members_of(backup: bytes) -> Members:
    with tarfile.open(fileobj=io.BytesIO(backup)) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive}  # type: ignore[union-attr]


def archive_of(members: Members, *, fix_digests: bool = True) -> bytes:
    """A tar of ``members``; the manifest's sizes and digests made to match them."""
    if fix_digests:
        manifest = json.loads(members["manifest.json"])
        if isinstance(manifest, dict):
            dump = members["tenant.dump"]
            manifest["dump_sha256"] = hashlib.sha256(dump).hexdigest()
            manifest["dump_bytes"] = len(dump)
            if "own.dump" in members:
                own = members["own.dump"]
                manifest["own"] = {"sha256": hashlib.sha256(own).hexdigest(), "bytes": len(own)}
            members = {**members, "manifest.json": json.dumps(manifest).encode()}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return out.getvalue()


def edit_manifest(members: Members, change: Callable[[dict[str, Any]], Any]) -> Members:
    manifest = json.loads(members["manifest.json"])
    changed = change(manifest)
    body = changed if isinstance(changed, bytes) else json.dumps(manifest).encode()
    return {**members, "manifest.json": body}


def server_names(superuser_dsn: str) -> tuple[set[str], set[str]]:
    with psycopg.connect(superuser_dsn) as conn:
        databases = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
        roles = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles")}
    return databases, roles


def scratch_left(settings: Settings) -> list[str]:
    root = settings.scratch_root
    return sorted(p.name for p in root.iterdir() if "restore" in p.name) if root.exists() else []


@pytest.fixture
def real_backup(api: RunningApi, tenant_id: str) -> bytes:
    """A real backup of a small tenant (3-d vectors, 12 documents)."""
    api.new_tenant(tenant_id, dims=3)
    with api.admin() as admin:
        docs = [
            {"id": f"d{i}", "chunks": [{"content": f"c{i}", "embedding": [1, i, 0]}]}
            for i in range(12)
        ]
        assert admin.put(f"/v1/tenants/{tenant_id}/documents", json={"documents": docs}).is_success
        backup = admin.post(f"/v1/tenants/{tenant_id}/backup")
        assert backup.status_code == 200, backup.text
        return backup.content


def rows_as_sql(pg_settings: Settings, service_dsn: str) -> bytes:
    """The tenant's rows dumped as INSERT statements: SQL text in the data entries, the
    shape of the archive that once ran its own SQL during a restore."""
    return subprocess.run(
        [
            str(pg_tool("pg_dump", pg_settings.embedded.bin)),
            "--format=custom",
            "--data-only",
            "--inserts",
            "--schema=public",
            "--exclude-table-data=public.schema_migrations",
            f"--dbname={service_dsn}",
        ],
        check=True,
        capture_output=True,
    ).stdout


def test_a_crafted_file_is_a_400_and_leaves_nothing(
    api: RunningApi,
    real_backup: bytes,
    tenant_id: str,
    superuser_dsn: str,
    pg_settings: Settings,
    tenantctl: TenantCtl,
) -> None:
    good = members_of(real_backup)
    service = _service_dsn(pg_settings, tenant_id)
    other_id = f"{tenant_id}-other"
    api.new_tenant(other_id, dims=3)
    with api.admin() as admin:
        other = members_of(admin.post(f"/v1/tenants/{other_id}/backup").content)

    def deep(levels: int) -> Callable[[dict[str, Any]], bytes]:
        def nest(m: dict[str, Any]) -> bytes:
            nested = b"[" * levels + b"]" * levels
            return json.dumps({**m, "tenant": "X"}).encode().replace(b'"X"', nested)

        return nest

    crafted: list[tuple[str, bytes, str]] = [
        (
            "schema version 99",
            archive_of(edit_manifest(good, lambda m: m.update(schema_version=99))),
            "newer than this tenantvec knows",
        ),
        (
            "a number out of range",
            archive_of(
                edit_manifest(
                    good,
                    lambda m: (
                        json.dumps(m)
                        .replace('"schema_version": 4', '"schema_version": 1e999')
                        .encode()
                    ),
                )
            ),
            "manifest is not valid",
        ),
        (
            "a manifest nested 100,000 deep",
            archive_of(edit_manifest(good, deep(100_000)), fix_digests=False),
            "manifest is implausibly large",
        ),
        (
            "a manifest nested 20,000 deep",
            archive_of(edit_manifest(good, deep(20_000)), fix_digests=False),
            "manifest is not valid",
        ),
        (
            "a wrong digest",
            archive_of(
                edit_manifest(good, lambda m: m.update(dump_sha256="0" * 64)), fix_digests=False
            ),
            "does not match the manifest's digest",
        ),
        (
            "another tenant's rows",
            archive_of({**good, "tenant.dump": other["tenant.dump"]}),
            "does not match its backup",
        ),
        (
            "vectors of another size",
            archive_of(edit_manifest(good, lambda m: m["tenant"].update(dims=5))),
            "rows do not load",
        ),
        (
            "rows as SQL text",
            archive_of({**good, "tenant.dump": rows_as_sql(pg_settings, service)}),
            "holds something other than rows",
        ),
        (
            "a recall target out of range",
            archive_of(edit_manifest(good, lambda m: m["tenant"].update(recall_target=7))),
            "recall target must be between",
        ),
        ("a member too many", archive_of({**good, "extra": b"x"}), "not a tenantvec backup"),
    ]
    before = server_names(superuser_dsn)
    with api.admin() as admin:
        for what, body, says in crafted:
            target = f"{tenant_id}-c"
            answer = admin.post("/v1/restores", params={"as": target}, content=body)
            assert answer.status_code == 400, (what, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
            problem = answer.json()
            assert problem["code"] == "backup_invalid", (what, problem)
            assert says in problem["detail"], (what, problem["detail"])
            assert (
                str(pg_settings.home) not in problem["detail"] and "/tmp" not in problem["detail"]
            )
            assert admin.get(f"/v1/tenants/{target}").status_code == 404, what
            assert server_names(superuser_dsn) == before, what
            assert scratch_left(pg_settings) == [], what
        # What create refuses, a restore refuses too -- before anything is made.
        for what, change, says in (
            ("an embedder not configured here", {"embedder": {"provider": "voyage",
             "model": "voyage-3"}, "dims": 1024}, "not configured here"),
            ("a backend there is none of", {"backend": "mainframe"}, "unknown backend"),
        ):  # fmt: skip
            body = archive_of(edit_manifest(good, lambda m, c=change: m["tenant"].update(c)))
            answer = admin.post("/v1/restores", params={"as": f"{tenant_id}-c"}, content=body)
            assert answer.status_code == 400, (what, answer.text)
            assert says in answer.json()["detail"], (what, answer.text)
            assert server_names(superuser_dsn) == before, what
        for t in (tenant_id, other_id):
            assert admin.delete(f"/v1/tenants/{t}").is_success


def _service_dsn(settings: Settings, tenant_id: str) -> str:
    import asyncio

    from controlplane.plane import ControlPlane

    async def find() -> str:
        async with ControlPlane.open(settings) as plane:
            return plane.service_conninfo(await plane.catalog.get_tenant(tenant_id)).dsn

    return asyncio.run(find())


SLOW_OWN_OBJECTS = [
    "CREATE FUNCTION app.slow(x int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT x'",
    "CREATE TABLE app.t (x int)",
    "CREATE INDEX ON app.t (app.slow(x))",
    "INSERT INTO app.t SELECT generate_series(1, 6)",
    # Only now does it sleep: the restore's index build calls it once a row.
    "CREATE OR REPLACE FUNCTION app.slow(x int) RETURNS int IMMUTABLE LANGUAGE plpgsql "
    "AS 'BEGIN PERFORM pg_sleep(2); RETURN x; END'",
]
EXPANDING_OWN_OBJECTS = [
    "CREATE TABLE app.blob (body text)",
    "ALTER TABLE app.blob ALTER COLUMN body SET STORAGE EXTERNAL",  # kept uncompressed
    "INSERT INTO app.blob SELECT repeat('a', 1024 * 1024) FROM generate_series(1, 40)",
]


@pytest.mark.parametrize(
    ("objects", "env", "says"),
    [
        (SLOW_OWN_OBJECTS, {"TENANTVEC_RESTORE_OWN_OBJECTS_SECONDS": "3"}, "took over 3 s"),
        (EXPANDING_OWN_OBJECTS, {}, "TENANTVEC_RESTORE_MAX_EXPANSION"),
    ],
    ids=["slow", "expanding"],
)
def test_own_objects_that_run_long_or_expand_are_refused_in_one_line(
    tenantctl: TenantCtl,
    tenant_id: str,
    superuser_dsn: str,
    pg_settings: Settings,
    tmp_path: Path,
    objects: list[str],
    env: dict[str, str],
    says: str,
) -> None:
    assert tenantctl("tenants", "create", tenant_id, "--dims", "3").code == 0
    dsn = tenantctl("tenants", "dsn", tenant_id).stdout.strip()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in objects:
            conn.execute(statement)
    backup = tmp_path / "b.tvbackup"
    assert tenantctl("tenants", "backup", tenant_id, "--to", str(backup)).code == 0
    before = server_names(superuser_dsn)
    refused = tenantctl("tenants", "restore", str(backup), "--as", f"{tenant_id}-r", env=env)
    assert refused.code == 2, refused.stderr
    line = one_line_error(refused.stderr)
    assert says in line and str(backup) in line and "backup was refused" in line, line
    assert server_names(superuser_dsn) == before
    assert scratch_left(pg_settings) == []
    listed = tenantctl("tenants", "list", "--json").json()
    assert f"{tenant_id}-r" not in [t["id"] for t in listed]
    # Nothing of the file's keeps running on the server either.
    with psycopg.connect(superuser_dsn) as conn:
        running = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE '%%app.t%%' "
            "AND pid <> pg_backend_pid()"
        ).fetchone()
    assert running == (0,)
    assert tenantctl("tenants", "delete", tenant_id, "--yes").code == 0


def test_a_restore_of_a_crafted_file_killed_at_any_moment_leaves_nothing_after_reconcile(
    tenantctl: TenantCtl,
    tenant_id: str,
    superuser_dsn: str,
    pg_settings: Settings,
    tmp_path: Path,
) -> None:
    """Real kills (the restore's whole process group) while a file's own objects sleep
    in the server: ``reconcile --fix`` ends what the file left running and removes the
    half-made tenant, its database, role and scratch."""
    assert tenantctl("tenants", "create", tenant_id, "--dims", "3").code == 0
    dsn = tenantctl("tenants", "dsn", tenant_id).stdout.strip()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in SLOW_OWN_OBJECTS:
            conn.execute(statement)
    backup = tmp_path / "b.tvbackup"
    assert tenantctl("tenants", "backup", tenant_id, "--to", str(backup)).code == 0
    assert tenantctl("tenants", "delete", tenant_id, "--yes").code == 0
    env = settings_env(pg_settings)
    rng = random.Random(os.getpid())
    before = server_names(superuser_dsn)
    for attempt in range(3):
        target = f"{tenant_id}-k{attempt}"
        kill_group_after(
            ["tenants", "restore", str(backup), "--as", target], env, rng.uniform(0.5, 4.0)
        )
        fixed = tenantctl("reconcile", "--fix", "--json")
        assert fixed.code == 0, fixed.stderr
        listed = {t["id"] for t in tenantctl("tenants", "list", "--json").json()}
        assert target not in listed
        assert server_names(superuser_dsn) == before, attempt
        assert scratch_left(pg_settings) == []
        with psycopg.connect(superuser_dsn) as conn:
            running = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE '%%pg_sleep%%' "
                "AND pid <> pg_backend_pid()"
            ).fetchone()
        assert running == (0,), attempt
