"""Backing up a tenant to one file: what the file holds and how it is made.

A backup is a tar archive of two or three members:

* ``manifest.json`` -- the format, when and by which tenantvec it was made, the tenant's
  settings (dims, metric, index, text search config, embedder, chunking, recall target,
  labels, role limits, backend), its schema version, and a :class:`Fingerprint` (document and chunk
  counts and a digest of their rows) taken in the snapshot the dumps were taken in,
  with the size and SHA-256 of each dump;
* ``tenant.dump`` -- ``pg_dump --data-only --format=custom`` of tenantvec's tables in
  that snapshot: rows only -- no schema, roles, owners, grants or passwords;
* ``own.dump`` (format 2, when the tenant made anything through its own DSN) --
  ``pg_dump --format=custom`` of everything outside schema ``public``: the tenant's
  schema ``app`` and any other of its own, with their tables, views, functions,
  sequences, indexes and rows (no owners, no grants: they belong to whichever role
  restores them).

The schema is not in the file: a restore builds it with tenantvec's own migrations at
the recorded version, loads the rows (checked entry by entry: lifecycle/_dumps.py), the
tenant's own objects as the tenant's own role, then migrates to the latest, so a backup
made by an older tenantvec restores onto a newer one. API keys are not in it either: a
restored tenant is a new incarnation, and keys never outlive theirs (DESIGN.md,
invariant 6).

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
from typing import Annotated, Any

import msgspec
import psycopg

from controlplane.catalog.models import utcnow
from controlplane.context import PlaneContext
from controlplane.errors import BackupInvalid, Conflict, InvalidRequest
from controlplane.lifecycle._dumps import own_objects, own_objects_in_public
from controlplane.lifecycle.change import state_conflict
from controlplane.localpg.tools import pg_tool, run_pg_tool
from controlplane.model.embedder import embedder_json
from controlplane.model.records import OperationOutcome, Tenant, TenantState
from controlplane.model.views import BackupView, details_of
from controlplane.pgconnect import connect
from controlplane.scratch import scratch_dir
from tenantvec_schema.migrations import MigrationSet
from tenantvec_schema.runner import applied_version

__all__ = [
    "BackupReport",
    "Fingerprint",
    "BackupFile",
    "Dumps",
    "Manifest",
    "backup_tenant",
    "check_carriable",
    "dump_tenant",
    "fingerprint",
    "partial_path",
    "read_backup",
    "tenant_settings",
]

FORMAT = "tenantvec-backup"
# 2: own.dump (what the tenant made itself); 1 (rows only) is still read.
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
MANIFEST = "manifest.json"
DUMP = "tenant.dump"
OWN_DUMP = "own.dump"
_DUMP_TIMEOUT = 6 * 3600.0
_MAX_MANIFEST_BYTES = 64 * 1024

# A digest of every document and chunk, in an order no collation changes, built from
# columns every schema version has -- so that a restore onto a newer schema, or onto
# another server, can be checked row for row. quote_nullable tells NULL from 'NULL'.
# Every name qualified: it runs in a database whose tenant may have made objects of its
# own (never in public, which only the service role may create in -- see tenantdb).
_FINGERPRINT_SQL = """
SELECT
  (SELECT pg_catalog.count(*) FROM public.documents),
  (SELECT pg_catalog.count(*) FROM public.chunks),
  pg_catalog.md5(
    pg_catalog.concat(
    coalesce((SELECT pg_catalog.string_agg(pg_catalog.md5(pg_catalog.concat_ws(',',
        pg_catalog.quote_literal(id), pg_catalog.quote_nullable(title),
        pg_catalog.quote_nullable(source), pg_catalog.quote_literal(metadata::text),
        pg_catalog.quote_nullable(content_hash))),
        '' ORDER BY id COLLATE "C") FROM public.documents), ''),
    coalesce((SELECT pg_catalog.string_agg(pg_catalog.md5(pg_catalog.concat_ws(',',
        pg_catalog.quote_literal(document_id), ordinal, pg_catalog.quote_literal(content),
        pg_catalog.quote_nullable(embedding::text), pg_catalog.quote_literal(metadata::text))),
        '' ORDER BY document_id COLLATE "C", ordinal) FROM public.chunks), '')
    )
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


# What a manifest may hold, typed: decoding checks every field's type and range, and no
# value nests deeper than these types do (a manifest 100,000 levels deep is refused at
# its second level, never recursed into).
_Scalar = str | int | float | bool | None  # floats: the recall target
_Count = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
_Sha256 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
_Text = Annotated[str, msgspec.Meta(max_length=200)]


class _FingerprintDoc(msgspec.Struct, forbid_unknown_fields=True):
    documents: _Count
    chunks: _Count
    digest: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$")]


class _PartDoc(msgspec.Struct, forbid_unknown_fields=True):
    sha256: _Sha256
    bytes: _Count


class _ManifestDoc(msgspec.Struct, forbid_unknown_fields=True):
    format: _Text
    format_version: Annotated[int, msgspec.Meta(ge=0, le=1000)]
    tenant: dict[_Text, _Scalar | dict[_Text, _Scalar]]
    schema_version: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    fingerprint: _FingerprintDoc
    dump_sha256: _Sha256
    dump_bytes: _Count
    created_at: _Text
    tenantvec_version: _Text
    own: _PartDoc | None = None


class _Header(msgspec.Struct):
    """Read first: whether the file says it is a backup of a format this reads."""

    format: Any = None
    format_version: Any = None


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
    own: dict[str, Any] | None = None  # {"sha256", "bytes"} of own.dump, when there is one
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.own is None:
            del data["own"]
        return data

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        """The manifest in ``raw``, every field checked; BackupInvalid otherwise."""
        try:
            header = msgspec.json.decode(raw, type=_Header)
        except (msgspec.DecodeError, RecursionError) as exc:  # deep nesting: the latter
            raise BackupInvalid(
                f"not a tenantvec backup: its manifest is not valid ({str(exc)[:200]})"
            ) from None
        if header.format != FORMAT:
            raise BackupInvalid("not a tenantvec backup: its manifest does not say so")
        if header.format_version not in READABLE_FORMATS:
            raise BackupInvalid(
                f"backup format {str(header.format_version)[:20]!r} is not one this "
                f"tenantvec reads ({', '.join(map(str, READABLE_FORMATS))}); restore it with "
                "the tenantvec that made it"
            )
        try:
            doc = msgspec.json.decode(raw, type=_ManifestDoc)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise BackupInvalid(f"the backup's manifest is not valid: {str(exc)[:200]}") from None
        latest = MigrationSet.bundled().latest
        if doc.schema_version > latest:
            raise BackupInvalid(
                f"the backup was made at schema version {doc.schema_version}, newer than this "
                f"tenantvec knows ({latest}): restore it with a newer tenantvec"
            )
        return cls(
            tenant=dict(doc.tenant),
            schema_version=doc.schema_version,
            fingerprint=Fingerprint(
                doc.fingerprint.documents, doc.fingerprint.chunks, doc.fingerprint.digest
            ),
            dump_sha256=doc.dump_sha256,
            dump_bytes=doc.dump_bytes,
            created_at=doc.created_at,
            tenantvec_version=doc.tenantvec_version,
            own=msgspec.structs.asdict(doc.own) if doc.own is not None else None,
            format_version=doc.format_version,
        )


@dataclass(frozen=True)
class BackupReport:
    path: Path
    tenant: str
    manifest: Manifest
    bytes: int
    seconds: float

    def view(self) -> BackupView:
        return BackupView(
            path=str(self.path),
            tenant=self.tenant,
            bytes=self.bytes,
            seconds=round(self.seconds, 3),
            schema_version=self.manifest.schema_version,
            documents=self.manifest.fingerprint.documents,
            chunks=self.manifest.fingerprint.chunks,
            digest=self.manifest.fingerprint.digest,
        )


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
            raise state_conflict(tenant, "back it up when ready")
        # Should this process die, reconcile removes the half-written file it names.
        partial = partial_path(dest)
        operation = await plane.catalog.begin_operation(
            "backup", actor, tenant=tenant, details={"partial": str(partial)}
        )
        try:
            async with scratch_dir(plane.settings.scratch_root, "backup") as scratch:
                dumps = await dump_tenant(plane, tenant, scratch)
                # Hashing and archiving gigabytes: off the event loop (the API serves on).
                own = None
                if dumps.own is not None:
                    own = {
                        "sha256": await asyncio.to_thread(_sha256, dumps.own),
                        "bytes": dumps.own.stat().st_size,
                    }
                manifest = Manifest(
                    tenant=tenant_settings(tenant),
                    schema_version=dumps.schema_version,
                    fingerprint=dumps.fingerprint,
                    dump_sha256=await asyncio.to_thread(_sha256, dumps.rows),
                    dump_bytes=dumps.rows.stat().st_size,
                    created_at=now.isoformat(),
                    tenantvec_version=_version(),
                    own=own,
                )
                await asyncio.to_thread(_write_archive, dest, partial, manifest, dumps)
        except Exception as exc:
            await plane.catalog.end_operation(operation, OperationOutcome.FAILED, error=str(exc))
            raise
        report = BackupReport(
            dest, tenant.id, manifest, dest.stat().st_size, time.monotonic() - started
        )
        details = details_of(report.view(), "path")
        await plane.catalog.end_operation(operation, OperationOutcome.SUCCEEDED, details=details)
    return report


async def check_carriable(plane: PlaneContext, tenant: Tenant) -> bool:
    """Refuse (Conflict, one line) a tenant whose objects a backup or move cannot carry;
    otherwise, whether it made objects of its own (outside ``public``)."""
    where = f"tenant {tenant.id!r}"
    async with connect(
        plane.service_conninfo(tenant), where=where, timeout=plane.settings.connect_timeout
    ) as conn:
        _refuse_stray(tenant, await own_objects_in_public(conn))
        return await own_objects(conn)


def _refuse_stray(tenant: Tenant, stray: list[str]) -> None:
    if not stray:
        return
    way = (
        f"run 'tenantctl migrate {tenant.id}' (it moves them to schema app)"
        if tenant.where.service_role
        else "move them to schema app through its DSN (ALTER TABLE ... SET SCHEMA app)"
    )
    raise Conflict(
        f"tenant {tenant.id!r} keeps objects of its own in schema public "
        f"({', '.join(stray)}), which tenantvec cannot carry: {way}, then try again"
    )


@dataclass(frozen=True)
class Dumps:
    """A tenant's rows and own objects, dumped in one snapshot, and what they sum to."""

    schema_version: int
    fingerprint: Fingerprint
    rows: Path  # tenant.dump
    own: Path | None  # own.dump, when the tenant made anything itself


async def dump_tenant(plane: PlaneContext, tenant: Tenant, scratch: Path) -> Dumps:
    """pg_dump the tenant's rows (and what it made itself) into ``scratch`` in one
    snapshot, and count and digest the rows in the same one."""
    conninfo = plane.service_conninfo(tenant)
    where = f"tenant {tenant.id!r}"
    pg_dump = pg_tool("pg_dump", plane.settings.embedded.bin)
    async with connect(
        conninfo, where=where, timeout=plane.settings.connect_timeout, autocommit=True
    ) as conn:
        # The snapshot lives as long as this transaction: pg_dump runs inside it.
        await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            _refuse_stray(tenant, await own_objects_in_public(conn))
            row = await (await conn.execute("SELECT pg_export_snapshot()")).fetchone()
            assert row is not None
            snapshot = f"--snapshot={row[0]}"
            version = await applied_version(conn)
            found = await fingerprint(conn)
            rows = scratch / DUMP
            await run_pg_tool(
                pg_dump,
                [
                    "--format=custom",
                    "--data-only",
                    "--schema=public",
                    "--no-owner",
                    "--no-privileges",
                    "--exclude-table-data=public.schema_migrations",
                    snapshot,
                    f"--file={rows}",
                ],
                conninfo,
                where=where,
                timeout=_DUMP_TIMEOUT,
            )
            own = None
            if await own_objects(conn):
                own = scratch / OWN_DUMP
                await run_pg_tool(
                    pg_dump,
                    [
                        "--format=custom",
                        "--exclude-schema=public",
                        "--no-owner",
                        "--no-privileges",
                        snapshot,
                        f"--file={own}",
                    ],
                    conninfo,
                    where=where,
                    timeout=_DUMP_TIMEOUT,
                )
        finally:
            await conn.execute("ROLLBACK")
    return Dumps(version, found, rows, own)


def tenant_settings(tenant: Tenant) -> dict[str, Any]:
    """What a restore needs to rebuild the tenant as it was (not where it lived)."""
    return {
        "id": tenant.id,
        "dims": tenant.dims,
        "metric": tenant.metric.value,
        "index": tenant.index.to_json(),
        "text_config": tenant.text_config,
        "embedder": embedder_json(tenant.embedder),
        "chunking": tenant.chunking.to_json(),
        "recall_target": tenant.recall.target,
        "labels": dict(tenant.labels),
        "limits": tenant.where.limits.to_json(),
        "backend": tenant.backend,
    }


def partial_path(dest: Path) -> Path:
    """A name, new and unguessable, to write the backup to ``dest`` under until it is
    whole (then renamed): nothing planted in its directory -- a symlink to another file,
    a file anyone may read -- can be waiting there under it."""
    return dest.with_name(f".{dest.name}.{secrets.token_hex(8)}.partial")


def _write_archive(dest: Path, partial: Path, manifest: Manifest, dumps: Dumps) -> None:
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
            archive.add(dumps.rows, arcname=DUMP, recursive=False)
            if dumps.own is not None:
                archive.add(dumps.own, arcname=OWN_DUMP, recursive=False)
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


@dataclass(frozen=True)
class BackupFile:
    """A backup, read and checked: its manifest and its dumps, extracted."""

    manifest: Manifest
    rows: Path
    own: Path | None


def read_backup(path: Path, scratch: Path) -> BackupFile:
    """The manifest of the backup at ``path`` and its dumps, extracted into ``scratch``
    and checked against the manifest's sizes and digests; BackupInvalid if it is not a
    whole backup. Messages never name ``path`` (an upload's is the server's own)."""
    try:
        archive = tarfile.open(path, mode="r:")  # noqa: SIM115 -- entered just below
    except FileNotFoundError:
        raise BackupInvalid("no backup there") from None
    except (tarfile.TarError, OSError) as exc:
        raise BackupInvalid(f"not a tenantvec backup ({_no_path(exc, path)})") from None
    try:
        with archive:
            return _extract(archive, scratch)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupInvalid(f"not a whole tenantvec backup ({_no_path(exc, path)})") from None


def _no_path(exc: BaseException, path: Path) -> str:
    return str(exc).replace(str(path), "the file")[:200]


_MEMBERS_LIMIT = 3


def _extract(archive: tarfile.TarFile, scratch: Path) -> BackupFile:
    members: dict[str, tarfile.TarInfo] = {}
    for member in archive:
        if len(members) == _MEMBERS_LIMIT or member.name in members:
            raise BackupInvalid("not a tenantvec backup (it holds other members)")
        members[member.name] = member
    names = set(members)
    if names not in ({MANIFEST, DUMP}, {MANIFEST, DUMP, OWN_DUMP}):
        raise BackupInvalid(f"not a tenantvec backup (members {sorted(names)[:3]})")
    if not all(m.isfile() for m in members.values()):
        raise BackupInvalid("not a tenantvec backup (a member is not a plain file)")
    if members[MANIFEST].size > _MAX_MANIFEST_BYTES:
        raise BackupInvalid("not a tenantvec backup: its manifest is implausibly large")
    raw = archive.extractfile(members[MANIFEST])
    assert raw is not None
    manifest = Manifest.from_bytes(raw.read())
    expected = {DUMP: (manifest.dump_sha256, manifest.dump_bytes)}
    if manifest.own is not None:
        expected[OWN_DUMP] = (manifest.own["sha256"], manifest.own["bytes"])
    if set(expected) != names - {MANIFEST}:
        raise BackupInvalid("damaged: its members are not the ones its manifest lists")
    extracted: dict[str, Path] = {}
    for name, (sha256, size) in expected.items():
        if members[name].size != size:
            raise BackupInvalid(f"damaged: its {name} is not the size its manifest says")
        target = scratch / name
        source = archive.extractfile(members[name])
        assert source is not None
        digest = hashlib.sha256()
        with target.open("wb") as out:
            while block := source.read(1 << 20):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != sha256:
            raise BackupInvalid(f"damaged: its {name} does not match the manifest's digest")
        extracted[name] = target
    return BackupFile(manifest, extracted[DUMP], extracted.get(OWN_DUMP))


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
