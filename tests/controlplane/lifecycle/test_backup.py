"""Backing a tenant up to a file and restoring it, on the real server: the round trip
through ``tenantctl``, writers during a backup, an older schema version, damaged
files, and restores killed at random moments that ``reconcile`` rolls back."""

from __future__ import annotations

import asyncio
import json
import os
import random
import stat
import tarfile
from pathlib import Path

import pytest

from controlplane.context import PlaneContext
from controlplane.dsn import ConnInfo
from controlplane.errors import BackupInvalid
from controlplane.lifecycle.backup import (
    MANIFEST,
    backup_tenant,
    partial_path,
    read_backup,
)
from controlplane.lifecycle.reconcile import reconcile
from controlplane.lifecycle.restore import restore_tenant
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.model.embedder import EmbedderSpec
from controlplane.model.records import Tenant, TenantState
from controlplane.pgconnect import connect
from controlplane.plane import ControlPlane
from controlplane.retrieval import SearchRequest
from controlplane.retrieval.search import search
from controlplane.routing import TenantRouter
from controlplane.settings import Settings
from tenantvec_schema.runner import MigrationReport, migrate
from tenantvec_schema.spec import IndexSpec
from tests.controlplane.lifecycle.rows import load, rows_of
from tests.fixtures.cli import TenantCtl, kill_group_after, one_line_error, settings_env

HASH = EmbedderSpec.parse("hash")


async def test_a_tenant_backs_up_and_restores_as_it_was(
    plane: ControlPlane, tenant_id: str, tenantctl: TenantCtl, tmp_path: Path
) -> None:
    request = TenantRequest(
        id=tenant_id,
        dims=3,
        embedder=HASH,
        index=IndexSpec(m=12, ef_construction=40),
        labels={"team": "search"},
        limits={"connection_limit": 7},
    )
    await create_tenant(plane, request, actor="test")
    await load(plane, tenant_id, 40)
    backup = tmp_path / "acme.tvbackup"
    made = tenantctl("tenants", "backup", tenant_id, "--to", str(backup), "--json")
    assert made.code == 0, made.stderr
    facts = made.json()
    assert facts["documents"] == 40 and facts["chunks"] == sum(1 + i % 3 for i in range(40))
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    with tarfile.open(backup) as archive:
        manifest = json.loads(archive.extractfile(MANIFEST).read())  # type: ignore[union-attr]
    assert manifest["tenant"]["labels"] == {"team": "search"}
    assert "password" not in backup.read_bytes().decode(errors="replace").lower()

    # Its own id is taken while it lives: the restore says so and makes nothing.
    taken = tenantctl("tenants", "restore", str(backup))
    assert taken.code == 4 and "already exists" in one_line_error(taken.stderr)

    copy = f"{tenant_id}-copy"
    restored = tenantctl("tenants", "restore", str(backup), "--as", copy, "--json")
    assert restored.code == 0, restored.stderr
    report = restored.json()
    assert report["verified"] is True and report["restored_from"] == tenant_id
    original = await plane.catalog.get_tenant(tenant_id)
    copied = await plane.catalog.get_tenant(copy)
    assert copied.state is TenantState.READY and copied.other_copy is None
    for attribute in ("dims", "metric", "index", "text_config", "embedder", "chunking", "labels"):
        assert getattr(copied, attribute) == getattr(original, attribute), attribute
    assert copied.placement["limits"]["connection_limit"] == 7
    assert copied.uid != original.uid
    assert await rows_of(plane, copy) == await rows_of(plane, tenant_id)
    assert (await rows_of(plane, copy))[1] == 1  # the HNSW index, built after the load
    async with TenantRouter.open(plane) as router:
        hits = await search(router, copy, SearchRequest(vector=[1.0, 0.5, 0.0], k=1))
        assert hits.results[0].document_id == "doc-5"
    # No key came with it: a restored tenant starts with none.
    assert tenantctl("keys", "list", copy, "--json").json() == []
    for tenant in (tenant_id, copy):
        await delete_tenant(plane, tenant, actor="test")


async def test_writers_keep_writing_and_the_backup_is_one_moment(
    plane: ControlPlane, tenant_id: str, tmp_path: Path
) -> None:
    await create_tenant(plane, TenantRequest(id=tenant_id, dims=3, embedder=HASH), actor="test")
    await load(plane, tenant_id, 200)

    async def writer() -> None:
        for batch in range(20):
            await load(plane, tenant_id, 10, start=1000 + batch * 10)

    writing = asyncio.create_task(writer())
    report = await backup_tenant(plane, tenant_id, tmp_path, actor="test")
    await writing
    assert report.path.parent == tmp_path and report.path.suffix == ".tvbackup"
    # The restore checks every row against the manifest: one moment, whole.
    restored = await restore_tenant(plane, report.path, as_id=f"{tenant_id}-r", actor="test")
    assert restored.manifest.fingerprint.documents >= 200
    for tenant in (tenant_id, f"{tenant_id}-r"):
        await delete_tenant(plane, tenant, actor="test")


async def test_a_backup_of_an_older_schema_is_migrated_on_restore(
    plane: ControlPlane, tenant_id: str, tmp_path: Path
) -> None:
    async def at_version_3(_: PlaneContext, tenant: Tenant, conninfo: ConnInfo) -> MigrationReport:
        async with connect(conninfo, where="test", timeout=5, autocommit=False) as conn:
            return await migrate(conn, tenant.schema, target=3)

    old = await create_tenant(
        plane,
        TenantRequest(id=tenant_id, dims=3, embedder=HASH),
        actor="test",
        schema_step=at_version_3,  # a tenant as an older tenantvec made it
    )
    assert old.schema_version == 3
    tenant = await plane.catalog.get_tenant(tenant_id)
    async with connect(plane.service_conninfo(tenant), where="test", timeout=5) as conn:
        await conn.execute("INSERT INTO documents (id, title) VALUES ('old', 'from v3')")
        await conn.execute(
            "INSERT INTO chunks (document_id, ordinal, content, embedding) "
            "VALUES ('old', 0, 'an old chunk', '[1,0,0]')"
        )
    report = await backup_tenant(plane, tenant_id, tmp_path / "v3.tvbackup", actor="test")
    assert report.manifest.schema_version == 3
    restored = await restore_tenant(plane, report.path, as_id=f"{tenant_id}-new", actor="test")
    assert (restored.from_version, restored.to_version) == (3, 4)
    new = await plane.catalog.get_tenant(f"{tenant_id}-new")
    async with connect(plane.service_conninfo(new), where="test", timeout=5) as conn:
        row = await (await conn.execute("SELECT content, key FROM chunks")).fetchone()
    assert row == ("an old chunk", None)  # version 4's column, on the old rows
    for t in (tenant_id, f"{tenant_id}-new"):
        await delete_tenant(plane, t, actor="test")


def test_a_file_that_is_not_a_whole_backup_is_refused(
    tenantctl: TenantCtl, tmp_path: Path, pg_settings: Settings, tenant_id: str
) -> None:
    assert tenantctl("tenants", "create", tenant_id, "--dims", "3", "--embedder", "hash").code == 0
    good = tmp_path / "good.tvbackup"
    assert tenantctl("tenants", "backup", tenant_id, "--to", str(good)).code == 0
    damaged = tmp_path / "damaged.tvbackup"
    data = bytearray(good.read_bytes())
    with tarfile.open(good) as archive:
        dump = archive.getmember("tenant.dump")
    data[dump.offset_data + dump.size // 2] ^= 0xFF  # inside the dump: its digest changes
    damaged.write_bytes(bytes(data))
    notes = tmp_path / "notes.txt"
    notes.write_text("not a backup")
    truncated = tmp_path / "truncated.tvbackup"
    truncated.write_bytes(good.read_bytes()[:700])
    for bad, says in (
        (damaged, "damaged"),
        (notes, "not a tenantvec backup"),
        (truncated, "not a whole tenantvec backup"),
        (tmp_path / "missing.tvbackup", "missing.tvbackup: no backup there"),
    ):
        result = tenantctl("tenants", "restore", str(bad), "--as", f"{tenant_id}-x")
        assert result.code == 2 and says in one_line_error(result.stderr), (bad, result.stderr)
    listed = [t["id"] for t in tenantctl("tenants", "list", "--json").json()]
    assert f"{tenant_id}-x" not in listed  # nothing was made
    with pytest.raises(BackupInvalid):
        read_backup(notes, tmp_path)
    assert tenantctl("tenants", "delete", tenant_id, "--yes").code == 0


def test_a_restore_killed_at_any_moment_is_rolled_back_by_reconcile(
    plane_settings_backup: tuple[Settings, Path], tenantctl: TenantCtl, tenant_id: str
) -> None:
    """Real kills (the restore's whole process group, at random moments): afterwards
    the tenant is either restored and verified, or not there -- never half."""
    settings, backup = plane_settings_backup
    env = settings_env(settings)
    rng = random.Random(os.getpid())
    outcomes = []
    for attempt in range(4):
        target = f"{tenant_id}-k{attempt}"
        # Killed during start-up, provisioning, load, index or verify.
        kill_group_after(
            ["tenants", "restore", str(backup), "--as", target, "--json"],
            env,
            rng.uniform(0.3, 2.0),
        )
        fixed = tenantctl("reconcile", "--fix", "--json")
        assert fixed.code == 0, fixed.stderr
        # Nor is the extracted dump left behind: the killed restore's scratch is swept.
        assert _scratch_left(settings) == [], fixed.json()["scratch_removed"]
        state = {t["id"]: t["state"] for t in tenantctl("tenants", "list", "--json").json()}
        outcomes.append(state.get(target, "absent"))
        assert state.get(target, "absent") in ("ready", "absent"), state.get(target)
        if state.get(target) == "ready":
            shown = tenantctl("docs", "count", target, "--json").json()
            assert shown["documents"] == 300
            assert tenantctl("tenants", "delete", target, "--yes").code == 0
    # The same backup restores afterwards, whatever the kills left.
    again = tenantctl("tenants", "restore", str(backup), "--as", f"{tenant_id}-after", "--json")
    assert again.code == 0, again.stderr
    assert tenantctl("tenants", "delete", f"{tenant_id}-after", "--yes").code == 0
    print("kill outcomes:", outcomes)


@pytest.fixture
def plane_settings_backup(
    pg_settings: Settings, tenant_id: str, tmp_path: Path
) -> tuple[Settings, Path]:
    """A backup of a 300-document tenant (the source is deleted again)."""

    async def make() -> Path:
        async with ControlPlane.open(pg_settings) as plane:
            source = f"{tenant_id}-src"
            await create_tenant(plane, TenantRequest(id=source, dims=3, embedder=HASH), actor="t")
            await load(plane, source, 300)
            report = await backup_tenant(plane, source, tmp_path / "src.tvbackup", actor="t")
            await delete_tenant(plane, source, actor="t")
            return report.path

    return pg_settings, asyncio.run(make())


def test_a_backup_restores_onto_a_server_of_its_own(
    plane_settings_backup: tuple[Settings, Path], tenantctl: TenantCtl, tenant_id: str
) -> None:
    _, backup = plane_settings_backup
    target = f"{tenant_id}-own"
    restored = tenantctl(
        "tenants", "restore", str(backup), "--as", target, "--backend", "instance", "--json"
    )
    assert restored.code == 0, restored.stderr
    assert restored.json()["tenant"]["backend"] == "instance"
    assert restored.json()["documents"] == 300
    assert tenantctl("docs", "count", target, "--json").json()["documents"] == 300
    assert tenantctl("tenants", "delete", target, "--yes").code == 0


def test_a_backup_killed_midway_leaves_no_file_and_reconcile_closes_it(
    pg_settings: Settings, tenantctl: TenantCtl, tenant_id: str, tmp_path: Path
) -> None:
    async def big() -> None:
        async with ControlPlane.open(pg_settings) as plane:
            await create_tenant(
                plane, TenantRequest(id=tenant_id, dims=3, embedder=HASH), actor="t"
            )
            await load(plane, tenant_id, 3000)

    asyncio.run(big())
    dest = tmp_path / "killed.tvbackup"
    rng = random.Random(os.getpid())
    for _ in range(3):
        kill_group_after(
            ["tenants", "backup", tenant_id, "--to", str(dest)],
            settings_env(pg_settings),
            rng.uniform(0.5, 1.5),
        )
        if dest.exists():  # it finished before the kill: then it is whole
            read_backup(dest, tmp_path)
            dest.unlink()
        # Never a file by the final name that is not whole.
        assert all(p.name.startswith(".") for p in tmp_path.iterdir() if p.name != "tenant.dump")
    fixed = tenantctl("reconcile", "--fix", "--json")
    assert fixed.code == 0, fixed.stderr
    operations = tenantctl("operations", "--tenant", tenant_id, "--json").json()
    assert not [op for op in operations if op["outcome"] == "running"]
    # And nothing at all once reconcile ran: no half-written file, no dump in scratch.
    assert [p.name for p in tmp_path.iterdir() if p.name != "tenant.dump"] == []
    assert _scratch_left(pg_settings) == []
    assert tenantctl("tenants", "backup", tenant_id, "--to", str(dest)).code == 0
    read_backup(dest, tmp_path)
    assert tenantctl("tenants", "delete", tenant_id, "--yes").code == 0


def _scratch_left(settings: Settings) -> list[str]:
    root = settings.scratch_root
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


async def test_reconcile_removes_the_half_written_file_of_a_backup_that_died(
    plane: ControlPlane, tenant_id: str, tmp_path: Path
) -> None:
    """What a backup killed while archiving leaves: its operation running, its file
    half-written under the partial name (the final name is only ever whole)."""
    tenant = await create_tenant(
        plane, TenantRequest(id=tenant_id, dims=3, embedder=HASH), actor="t"
    )
    partial = partial_path(tmp_path / "nightly.tvbackup")
    partial.write_bytes(b"half a tar archive")
    neighbour = tmp_path / "keep.txt"
    neighbour.write_text("not ours")
    operation = await plane.catalog.begin_operation(
        "backup", "t", tenant=tenant, details={"partial": str(partial)}
    )
    report = await reconcile(plane, actor="t")
    assert not partial.exists() and neighbour.exists()
    closed = await plane.catalog.find_operation(operation)
    assert closed is not None and closed.outcome.value == "failed"
    assert report.clean
    await delete_tenant(plane, tenant_id, actor="t")


async def test_a_backup_writes_through_nothing_planted_beside_it(
    plane: ControlPlane, tenant_id: str, tmp_path: Path
) -> None:
    """A backup directory another local user can write to: a symlink planted under the
    file's name, or under the name its half-written file used to have, is never written
    through, and a planted world-readable file is replaced by a 0600 one."""
    await create_tenant(plane, TenantRequest(id=tenant_id, dims=3, embedder=HASH), actor="t")
    victim = tmp_path / "victim.conf"
    victim.write_text("root's own file")
    victim.chmod(0o644)
    dest = tmp_path / "nightly.tvbackup"
    dest.symlink_to(victim)
    (tmp_path / ".nightly.tvbackup.partial").symlink_to(victim)  # the old fixed name
    report = await backup_tenant(plane, tenant_id, dest, actor="t")
    assert victim.read_text() == "root's own file"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert report.path == dest and not dest.is_symlink()
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    (tmp_path / "check").mkdir()
    assert read_backup(dest, tmp_path / "check").manifest.fingerprint.documents == 0

    planted = tmp_path / "readable.tvbackup"
    planted.write_text("anyone may read this")
    planted.chmod(0o666)
    await backup_tenant(plane, tenant_id, planted, actor="t")
    assert stat.S_IMODE(planted.stat().st_mode) == 0o600
    # What was planted stays; no half-written file of the backups is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")) == [
        ".nightly.tvbackup.partial"
    ]
    await delete_tenant(plane, tenant_id, actor="t")


def test_a_backup_to_a_missing_directory_is_one_line(
    tenantctl: TenantCtl, tenant_id: str, tmp_path: Path
) -> None:
    assert tenantctl("tenants", "create", tenant_id, "--dims", "3").code == 0
    missing = tmp_path / "missing" / "x.tvbackup"
    refused = tenantctl("tenants", "backup", tenant_id, "--to", str(missing))
    assert refused.code == 2
    assert "is not a directory" in one_line_error(refused.stderr)
    # Ending in '/', it is made (0700: the backup holds the tenant's data).
    made = tenantctl("tenants", "backup", tenant_id, "--to", f"{tmp_path / 'new'}/")
    assert made.code == 0, made.stderr
    assert len(list((tmp_path / "new").glob(f"{tenant_id}-*.tvbackup"))) == 1
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert tenantctl("tenants", "delete", tenant_id, "--yes").code == 0


@pytest.mark.parametrize("piece", [1, 2, 3, 5, 4096])
async def test_rows_stream_in_pieces_of_any_size(
    plane: ControlPlane, tenant_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, piece: int
) -> None:
    """The strict row loader finds the end of each block of rows wherever a read ends --
    in the middle of the end marker included -- and loads every row."""
    from controlplane.lifecycle import _dumps as dumps

    source = f"{tenant_id}-src"
    await create_tenant(plane, TenantRequest(id=source, dims=3, embedder=HASH), actor="t")
    await load(plane, source, 7)
    report = await backup_tenant(plane, source, tmp_path / "b.tvbackup", actor="t")
    monkeypatch.setattr(dumps, "_READ", piece)
    restored = await restore_tenant(plane, report.path, as_id=f"{tenant_id}-r", actor="t")
    assert (await rows_of(plane, f"{tenant_id}-r"))[0] == report.manifest.fingerprint
    assert restored.manifest.fingerprint.documents == 7
    for t in (source, f"{tenant_id}-r"):
        await delete_tenant(plane, t, actor="t")
