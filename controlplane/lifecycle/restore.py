"""Restoring a tenant from a backup file (lifecycle/backup.py), verified.

A restore is a create whose schema step loads the backup: the tenant is provisioned
like any other (on the backend and server asked for, or the one it came from), its
schema is built by tenantvec's migrations *up to the backup's version* with no vector
index, the rows are loaded in one transaction (``pg_restore --single-transaction``),
the schema is migrated to the latest, the digest of every document and chunk is
checked against the manifest's, and only then is the vector index built in one pass
(far faster than row by row) and the tenant made ``ready``.

Crash safety: until it is ready the tenant is ``restoring`` (model/records.py). A
restore that dies leaves it so, and ``reconcile`` rolls it back (drops the half-loaded
database; a ``provisioning`` create would be finished instead) -- run the restore
again. Nothing of a restore is ever served before it is verified.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from controlplane.backends.access import give_own_schema, grant_tenant_access
from controlplane.backends.markers import owner_role
from controlplane.context import PlaneContext
from controlplane.dsn import ConnInfo
from controlplane.errors import BackupInvalid, InvalidRequest, TenantvecError
from controlplane.lifecycle._dumps import DumpRefused, load_own_objects, load_rows
from controlplane.lifecycle.backup import Fingerprint, Manifest, fingerprint, read_backup
from controlplane.lifecycle.tenants import create_tenant, finish_delete
from controlplane.localpg.tools import pg_tool
from controlplane.model.chunking import ChunkingSpec
from controlplane.model.embedder import NO_EMBEDDER, EmbedderChoice, embedder_from_json
from controlplane.model.recall import DEFAULT_RECALL_TARGET, RecallTuning
from controlplane.model.records import Tenant, TenantState, validate_tenant_id
from controlplane.model.request import TenantRequest
from controlplane.model.views import RestoreView
from controlplane.pgconnect import connect, describe_pg_error
from controlplane.scratch import scratch_dir
from tenantvec_schema.reshape import rebuild_vector_index
from tenantvec_schema.runner import MigrationReport, migrate
from tenantvec_schema.spec import ROW_TABLES, IndexKind, IndexSpec, Metric, SchemaSpec

__all__ = ["DumpLoader", "RestoreReport", "request_from_settings", "restore_tenant"]


@dataclass(frozen=True)
class RestoreReport:
    tenant: Tenant
    manifest: Manifest
    from_version: int
    to_version: int
    seconds: float

    def view(self) -> RestoreView:
        return RestoreView(
            tenant=self.tenant.view(),
            restored_from=str(self.manifest.tenant.get("id")),
            backup_schema_version=self.from_version,
            documents=self.manifest.fingerprint.documents,
            chunks=self.manifest.fingerprint.chunks,
            verified=True,  # a restore that does not verify fails
            seconds=round(self.seconds, 3),
        )


async def restore_tenant(
    plane: PlaneContext,
    path: Path,
    *,
    as_id: str | None = None,
    backend: str | None = None,
    server: str | None = None,
    actor: str,
) -> RestoreReport:
    """Create tenant ``as_id`` (default: the backup's own id) from the backup at
    ``path``. Its settings (dims, metric, index, text config, embedder, chunking, labels,
    role limits) are the backup's; its keys are new (none are in a backup)."""
    started = time.monotonic()
    if as_id is not None:
        validate_tenant_id(as_id)  # before a byte of the file is read
    # The extracted dump, as large as the tenant: a scratch directory, so that a killed
    # restore leaves nothing a sweep does not remove.
    async with scratch_dir(plane.settings.scratch_root, "restore") as scratch:
        backup = await asyncio.to_thread(read_backup, path, scratch)
        manifest = backup.manifest
        request = request_from_settings(
            manifest.tenant, as_id=as_id, backend=backend, server=server
        )
        loader = DumpLoader(manifest.schema_version, manifest.fingerprint, backup.rows, backup.own)
        try:
            tenant = await create_tenant(
                plane,
                request,
                actor=actor,
                action="restore",
                schema_step=loader,
                restoring=True,
                details={
                    "from": manifest.tenant.get("id"),
                    "digest": manifest.fingerprint.digest,
                },
            )
        except BackupInvalid:
            # The file failed a check after its tenant was provisioned: nothing of it
            # stays -- no failed tenant, database or role.
            await _remove_refused(plane, request.id, actor=actor)
            raise
    return RestoreReport(
        tenant, manifest, manifest.schema_version, tenant.schema_version, time.monotonic() - started
    )


async def _remove_refused(plane: PlaneContext, tenant_id: str, *, actor: str) -> None:
    async with plane.catalog.tenant_lock(tenant_id):
        tenant = await plane.catalog.find_tenant(tenant_id)
        if tenant is None or tenant.state is not TenantState.FAILED:
            return
        last = await plane.catalog.list_operations(tenant_id=tenant_id, limit=1)
        if last and last[0].action == "restore" and last[0].tenant_uid == tenant.uid:
            await finish_delete(plane, tenant, actor=actor, action="delete-refused-restore")


def request_from_settings(
    t: dict[str, Any], *, as_id: str | None, backend: str | None, server: str | None
) -> TenantRequest:
    """The create request that rebuilds a tenant from its settings (as
    ``backup.tenant_settings`` wrote them): placed on ``backend`` / ``server``."""
    try:
        limits = dict(t.get("limits") or {})
        return TenantRequest(
            id=as_id or str(t["id"]),
            dims=int(t["dims"]),
            metric=Metric(t["metric"]),
            index=IndexSpec.from_json(t["index"]),
            text_config=str(t["text_config"]),
            backend=backend or str(t["backend"]),
            server=server,
            tier=str(limits["tier"]) if "tier" in limits else None,
            limits={
                "connection_limit": limits["connection_limit"],
                "statement_timeout": limits["statement_timeout_ms"],
                "idle_in_transaction_timeout": limits["idle_in_transaction_timeout_ms"],
            }
            if "connection_limit" in limits
            else {},
            labels=dict(t.get("labels") or {}),
            embedder=_embedder_choice(t["embedder"]),
            chunking=ChunkingSpec.from_json(t["chunking"]),
            recall=_recall(t),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupInvalid(f"the backup's tenant settings are incomplete: {exc}") from None


def _recall(t: dict[str, Any]) -> RecallTuning:
    """The backup's recall target (made before recall targets: the default)."""
    try:
        return RecallTuning(target=float(t.get("recall_target", DEFAULT_RECALL_TARGET)))
    except InvalidRequest as exc:
        raise BackupInvalid(f"the backup's tenant settings are invalid: {exc}") from None


def _embedder_choice(data: dict[str, Any]) -> EmbedderChoice:
    if not isinstance(data, dict):
        raise TypeError("embedder is not an object")
    spec = embedder_from_json(data)
    return spec if spec is not None else NO_EMBEDDER


class DumpLoader:
    """The schema step of a restore (and of a move): schema at the dump's version, its
    rows (lifecycle/_dumps.py: only rows), what the tenant made itself (as its own
    role), migrations, verification against ``expected``, then the vector index.

    Whatever the dumps hold that fails a check is ``invalid`` (BackupInvalid for a
    file, ProvisioningError for a move's own copy), raised before the tenant is ready.
    """

    def __init__(
        self,
        schema_version: int,
        expected: Fingerprint,
        rows: Path,
        own: Path | None = None,
        *,
        invalid: type[TenantvecError] = BackupInvalid,
        owner: ConnInfo | None = None,
    ) -> None:
        self.schema_version = schema_version
        self.owner = owner  # the tenant role's DSN, where the catalog does not hold it yet
        self.expected = expected
        self.rows = rows
        self.own = own
        self.invalid = invalid

    async def __call__(
        self, plane: PlaneContext, tenant: Tenant, conninfo: ConnInfo
    ) -> MigrationReport:
        where = f"tenant {tenant.id!r}"
        settings = plane.settings
        timeout = settings.connect_timeout
        pg_restore = pg_tool("pg_restore", settings.embedded.bin)
        owner = owner_role(tenant)
        separate = tenant.where.service_role
        # No vector index while rows arrive: one bulk build at the end is far cheaper.
        unindexed = SchemaSpec(
            dims=tenant.dims,
            metric=tenant.metric,
            index=IndexSpec(kind=IndexKind.NONE),
            text_config=tenant.text_config,
        )
        dump_bytes = self.rows.stat().st_size + (self.own.stat().st_size if self.own else 0)
        budget = settings.restore_max_expansion * dump_bytes + _EXPANSION_SLACK
        async with connect(conninfo, where=where, timeout=timeout, autocommit=False) as conn:
            await migrate(conn, unindexed, target=self.schema_version)
            if separate:
                await grant_tenant_access(conn, owner)
            else:  # one role (Neon): the schema the tenant's own objects come back to
                await give_own_schema(conn)
            await conn.commit()
            empty_size = await _database_size(conn)
            try:
                await load_rows(conn, pg_restore, self.rows, max_bytes=budget)
            except DumpRefused as exc:
                raise self.invalid(f"{where}: the backup was refused: {exc}") from None
            except psycopg.Error as exc:
                raise self.invalid(
                    f"{where}: the backup's rows do not load: {describe_pg_error(exc)}"
                ) from None
            await conn.commit()
        if self.own is not None:
            await self._load_own(plane, tenant, conninfo, pg_restore, where)
        async with connect(conninfo, where=where, timeout=timeout, autocommit=False) as conn:
            grown = await _database_size(conn) - empty_size
            if grown > budget:
                raise self.invalid(
                    f"{where}: the backup was refused: it grew the database by {grown:,} "
                    f"bytes, more than a file of {dump_bytes:,} bytes may "
                    "(TENANTVEC_RESTORE_MAX_EXPANSION)"
                )
            report = await migrate(conn, unindexed)
            if separate:
                await grant_tenant_access(conn, owner)
            found = await fingerprint(conn)
            await conn.commit()
        expected = self.expected
        if found != expected:
            raise self.invalid(
                f"restore of {where} does not match its backup: {found.documents} documents "
                f"and {found.chunks} chunks (digest {found.digest}) where the backup holds "
                f"{expected.documents} and {expected.chunks} ({expected.digest})"
            )
        async with connect(conninfo, where=where, timeout=timeout, autocommit=True) as conn:
            if tenant.index.kind is not IndexKind.NONE:
                await rebuild_vector_index(
                    conn, tenant.schema, online=False, memory=settings.index_build_memory
                )
            for table in ROW_TABLES:
                await conn.execute(sql.SQL("ANALYZE public.{}").format(sql.Identifier(table)))
        return MigrationReport(
            from_version=self.schema_version,
            to_version=report.to_version,
            applied=report.applied,
        )

    async def _load_own(
        self,
        plane: PlaneContext,
        tenant: Tenant,
        service: ConnInfo,
        pg_restore: Path,
        where: str,
    ) -> None:
        """What the tenant made itself, as its own role."""
        assert self.own is not None
        owner = self.owner or plane.tenant_conninfo(tenant)
        settings = plane.settings

        async def end_sessions() -> None:
            # What the stopped tool left running on the server (a pg_sleep, a long
            # statement of the file's): the service role may end its tenant's sessions.
            async with connect(service, where=where, timeout=settings.connect_timeout) as conn:
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND usename = %s",
                    (owner.user,),
                )

        try:
            await load_own_objects(
                pg_restore,
                self.own,
                owner,
                end_sessions=end_sessions,
                where=where,
                timeout=settings.restore_own_objects_seconds,
            )
        except DumpRefused as exc:
            raise self.invalid(f"{where}: the backup was refused: {exc}") from None


# What an empty tenant may grow by beyond its dumps' size times the expansion: the
# indexes' first pages, the catalog entries of its own objects.
_EXPANSION_SLACK = 16 * 1024 * 1024


async def _database_size(conn: psycopg.AsyncConnection[Any]) -> int:
    row = await (
        await conn.execute("SELECT pg_catalog.pg_database_size(pg_catalog.current_database())")
    ).fetchone()
    assert row is not None
    return int(row[0])
