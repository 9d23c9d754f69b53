"""Backing up a tenant to one file: what the file holds and how it is made.

A backup is a tar archive of two members:

* ``manifest.json`` -- the format, when and by which tenantvec it was made, the tenant's
  settings (dims, metric, index, text search config, embedder, chunking, labels, role
  limits, backend), its schema version, and a :class:`Fingerprint` (document and chunk
  counts and a digest of their rows) taken in the snapshot the dump was taken in;
* ``tenant.dump`` -- ``pg_dump --data-only --format=custom`` of the tenant's database in
  that snapshot: rows only -- no roles, owners, grants or passwords.

The schema is not in the file: a restore builds it with tenantvec's own migrations at
the recorded version, loads the rows, then migrates to the latest, so a backup made by
an older tenantvec restores onto a newer one. API keys are not in it either: a restored
tenant is a new incarnation, and keys never outlive theirs (DESIGN.md, invariant 6).

The file holds the tenant's data: it is written with mode 0600, under a temporary name
renamed into place once complete, so no reader ever sees half a backup.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import tarfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from controlplane.catalog.models import utcnow
from controlplane.context import PlaneContext
from controlplane.errors import BackupInvalid, Conflict, InvalidRequest
from controlplane.localpg.tools import pg_tool, run_pg_tool
from controlplane.model.embedder import embedder_json
from controlplane.model.records import OperationOutcome, Tenant, TenantState
from controlplane.pgconnect import connect
from controlplane.scratch import scratch_dir
from tenantvec_schema.runner import applied_version

__all__ = [
    "BackupReport",
    "Fingerprint",
    "Manifest",
    "backup_tenant",
    "dump_tenant",
    "fingerprint",
    "partial_path",
    "read_backup",
    "tenant_settings",
]

FORMAT = "tenantvec-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DUMP = "tenant.dump"
_DUMP_TIMEOUT = 6 * 3600.0
_MAX_MANIFEST_BYTES = 1_000_000

# A digest of every document and chunk, in an order no collation changes, built from
# columns every schema version has -- so that a restore onto a newer schema, or onto
# another server, can be checked row for row. quote_nullable tells NULL from 'NULL'.
_FINGERPRINT_SQL = """
SELECT
  (SELECT count(*) FROM documents),
  (SELECT count(*) FROM chunks),
  md5(
    coalesce((SELECT string_agg(md5(concat_ws(',', quote_literal(id), quote_nullable(title),
        quote_nullable(source), quote_literal(metadata::text), quote_nullable(content_hash))),
        '' ORDER BY id COLLATE "C") FROM documents), '')
    || coalesce((SELECT string_agg(md5(concat_ws(',', quote_literal(document_id), ordinal,
        quote_literal(content), quote_nullable(embedding::text), quote_literal(metadata::text))),
        '' ORDER BY document_id COLLATE "C", ordinal) FROM chunks), '')
  )
"""


@dataclass(frozen=True)
class Fingerprint:
    documents: int
    chunks: int
    digest: str


async def fingerprint(conn: psycopg.AsyncConnection[Any]) -> Fingerprint:
    """The tenant database's rows, summed up (in the connection's current snapshot)."""
    row = await (await conn.execute(_FINGERPRINT_SQL)).fetchone()
    assert row is not None
    return Fingerprint(documents=int(row[0]), chunks=int(row[1]), digest=str(row[2]))


@dataclass(frozen=True)
class Manifest:
    """What a backup says about itself and its tenant."""

    tenant: dict[str, Any]  # id, dims, metric, index, text_config, embedder, chunking, ...
    schema_version: int
    fingerprint: Fingerprint
    dump_sha256: str
    dump_bytes: int
    created_at: str
    tenantvec_version: str
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BackupInvalid("not a tenantvec backup: its manifest does not say so")
        if data.get("format_version") != FORMAT_VERSION:
            raise BackupInvalid(
                f"backup format {data.get('format_version')!r} is not one this tenantvec "
                f"reads ({FORMAT_VERSION}); restore it with the tenantvec that made it"
            )
        try:
            return cls(
                tenant=dict(data["tenant"]),
                schema_version=int(data["schema_version"]),
                fingerprint=Fingerprint(**data["fingerprint"]),
                dump_sha256=str(data["dump_sha256"]),
                dump_bytes=int(data["dump_bytes"]),
                created_at=str(data["created_at"]),
                tenantvec_version=str(data["tenantvec_version"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BackupInvalid(f"the backup's manifest is incomplete: {exc}") from None


@dataclass(frozen=True)
class BackupReport:
    path: Path
    tenant: str
    manifest: Manifest
    bytes: int
    seconds: float

    def public_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "tenant": self.tenant,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "schema_version": self.manifest.schema_version,
            "documents": self.manifest.fingerprint.documents,
            "chunks": self.manifest.fingerprint.chunks,
            "digest": self.manifest.fingerprint.digest,
        }


def default_backup_path(tenant_id: str, when: datetime) -> Path:
    return Path(f"{tenant_id}-{when.strftime('%Y%m%dT%H%M%SZ')}.tvbackup")


async def backup_tenant(
    plane: PlaneContext, tenant_id: str, dest: Path | None = None, *, actor: str
) -> BackupReport:
    """Write a consistent snapshot of the tenant to ``dest`` (default:
    ``<id>-<UTC time>.tvbackup`` here). Writers keep writing meanwhile: the file holds
    the database as it was when the backup began. A suspended tenant is woken."""
    started = time.monotonic()
    tenant = await plane.catalog.get_tenant(tenant_id)
    if tenant.state is TenantState.SUSPENDED:
        await plane.wake(tenant.id)
        tenant = await plane.catalog.get_tenant(tenant_id)
    if tenant.state is not TenantState.READY:
        raise Conflict(f"tenant {tenant_id!r} is {tenant.state}: only a ready tenant backs up")
    now = utcnow()
    dest = dest if dest is not None else default_backup_path(tenant.id, now)
    # Absolute, but not resolved: a symlink planted under the file's name is replaced by
    # the backup, never followed to the file it points at.
    dest = Path(os.path.abspath(dest))
    if dest.is_dir():
        dest = dest / default_backup_path(tenant.id, now)
    elif not dest.parent.is_dir():
        raise InvalidRequest(
            f"cannot write the backup to {dest}: {dest.parent} is not a directory (make it, "
            "or give --to a directory ending in '/' to have it made)"
        )
    # Under the tenant's lock, like every lifecycle action: no delete, suspend or index
    # change pulls the database away mid-dump, and reconcile can tell a backup in
    # progress (lock held) from one whose process died.
    async with plane.catalog.tenant_lock(tenant.id):
        tenant = await plane.catalog.get_tenant(tenant_id)  # as it is now, under the lock
        if tenant.state is not TenantState.READY:
            raise Conflict(f"tenant {tenant_id!r} is {tenant.state}: only a ready tenant backs up")
        # Should this process die, reconcile removes the half-written file it names.
        partial = partial_path(dest)
        operation = await plane.catalog.begin_operation(
            "backup", actor, tenant=tenant, details={"partial": str(partial)}
        )
        try:
            async with scratch_dir(plane.settings.scratch_root, "backup") as scratch:
                dump = scratch / DUMP
                version, found = await dump_tenant(plane, tenant, dump)
                manifest = Manifest(
                    tenant=tenant_settings(tenant),
                    schema_version=version,
                    fingerprint=found,
                    dump_sha256=await asyncio.to_thread(_sha256, dump),
                    dump_bytes=dump.stat().st_size,
                    created_at=now.isoformat(),
                    tenantvec_version=_version(),
                )
                # Hashing and archiving gigabytes: off the event loop (the API serves on).
                await asyncio.to_thread(_write_archive, dest, partial, manifest, dump)
        except Exception as exc:
            await plane.catalog.end_operation(operation, OperationOutcome.FAILED, error=str(exc))
            raise
        report = BackupReport(
            dest, tenant.id, manifest, dest.stat().st_size, time.monotonic() - started
        )
        details = {k: v for k, v in report.public_dict().items() if k != "path"}
        await plane.catalog.end_operation(operation, OperationOutcome.SUCCEEDED, details=details)
    return report


async def dump_tenant(plane: PlaneContext, tenant: Tenant, dump: Path) -> tuple[int, Fingerprint]:
    """pg_dump the tenant's rows to ``dump`` in one snapshot, and count and digest them
    in the same one: its schema version and fingerprint."""
    conninfo = plane.service_conninfo(tenant)
    where = f"tenant {tenant.id!r}"
    async with connect(
        conninfo, where=where, timeout=plane.settings.connect_timeout, autocommit=True
    ) as conn:
        # The snapshot lives as long as this transaction: pg_dump runs inside it.
        await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            row = await (await conn.execute("SELECT pg_export_snapshot()")).fetchone()
            assert row is not None
            version = await applied_version(conn)
            found = await fingerprint(conn)
            await run_pg_tool(
                pg_tool("pg_dump", plane.settings.pg_bin),
                [
                    "--format=custom",
                    "--data-only",
                    "--no-owner",
                    "--no-privileges",
                    "--exclude-table-data=schema_migrations",
                    f"--snapshot={row[0]}",
                    f"--file={dump}",
                ],
                conninfo,
                where=where,
                timeout=_DUMP_TIMEOUT,
            )
        finally:
            await conn.execute("ROLLBACK")
    return version, found


def tenant_settings(tenant: Tenant) -> dict[str, Any]:
    """What a restore needs to rebuild the tenant as it was (not where it lived)."""
    return {
        "id": tenant.id,
        "dims": tenant.dims,
        "metric": tenant.metric.value,
        "index": {"kind": tenant.index.kind.value, **tenant.index.params()},
        "text_config": tenant.text_config,
        "embedder": embedder_json(tenant.embedder),
        "chunking": tenant.chunking.to_json(),
        "labels": dict(tenant.labels),
        "limits": dict(tenant.placement.get("limits") or {}),
        "backend": tenant.backend,
    }


def partial_path(dest: Path) -> Path:
    """A name, new and unguessable, to write the backup to ``dest`` under until it is
    whole (then renamed): nothing planted in its directory -- a symlink to another file,
    a file anyone may read -- can be waiting there under it."""
    return dest.with_name(f".{dest.name}.{secrets.token_hex(8)}.partial")


def _write_archive(dest: Path, partial: Path, manifest: Manifest, dump: Path) -> None:
    # A new file or nothing (O_EXCL), never through a symlink (O_NOFOLLOW), 0600 from its
    # first byte; the rename then replaces whatever ``dest`` was -- a symlink included,
    # never what it points to.
    fd = os.open(
        partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
    )
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as archive:
            body = json.dumps(manifest.to_json(), indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(body)
            info.mode = 0o600
            info.mtime = int(time.time())
            archive.addfile(info, _bytes_io(body))
            archive.add(dump, arcname=DUMP, recursive=False)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, dest)
        _fsync_directory(dest.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable: a crash after a backup said so keeps the file."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_backup(path: Path, scratch: Path) -> tuple[Manifest, Path]:
    """The manifest of the backup at ``path`` and its dump, extracted into ``scratch``
    and checked against the manifest's digest; BackupInvalid if it is not whole."""
    try:
        archive = tarfile.open(path, mode="r:")  # noqa: SIM115 -- entered just below
    except FileNotFoundError:
        raise BackupInvalid(f"no backup at {path}") from None
    except (tarfile.TarError, OSError) as exc:
        raise BackupInvalid(f"{path} is not a tenantvec backup ({exc})") from None
    try:
        with archive:
            manifest, dump, digest = _extract(archive, path, scratch)
    except (tarfile.TarError, EOFError) as exc:
        raise BackupInvalid(f"{path} is not a whole tenantvec backup ({exc})") from None
    if digest.hexdigest() != manifest.dump_sha256:
        raise BackupInvalid(f"{path} is damaged: its dump does not match the manifest's digest")
    return manifest, dump


def _extract(archive: tarfile.TarFile, path: Path, scratch: Path) -> tuple[Manifest, Path, Any]:
    members = {m.name: m for m in archive.getmembers()}
    if set(members) != {MANIFEST, DUMP} or not all(m.isfile() for m in members.values()):
        raise BackupInvalid(f"{path} is not a tenantvec backup (members {sorted(members)})")
    if members[MANIFEST].size > _MAX_MANIFEST_BYTES:
        raise BackupInvalid(f"{path}: its manifest is implausibly large")
    raw = archive.extractfile(members[MANIFEST])
    assert raw is not None
    try:
        manifest = Manifest.from_json(json.loads(raw.read()))
    except ValueError:
        raise BackupInvalid(f"{path}: its manifest is not JSON") from None
    dump = scratch / DUMP
    source = archive.extractfile(members[DUMP])
    assert source is not None
    digest = hashlib.sha256()
    with dump.open("wb") as out:
        while block := source.read(1 << 20):
            digest.update(block)
            out.write(block)
    return manifest, dump, digest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _bytes_io(body: bytes) -> Any:
    import io

    return io.BytesIO(body)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tenantvec")
    except PackageNotFoundError:
        return "unknown"
