"""The catalog store: every read and write of the catalog database goes through here."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy.exc
from sqlalchemy import column, func, literal, table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from controlplane.catalog.activity import ActivityLog
from controlplane.catalog.jobs import JobQueue
from controlplane.catalog.models import (
    ApiKeyRow,
    CatalogMetaRow,
    OperationRow,
    ServerRow,
    TenantRow,
    utcnow,
)
from controlplane.dsn import ConnInfo
from controlplane.errors import (
    BackendUnavailable,
    CatalogUnavailable,
    InvalidRequest,
    OverCapacity,
    ServerExists,
    ServerNotFound,
    TenantBusy,
    TenantExists,
    TenantNotFound,
)
from controlplane.model.chunking import ChunkingSpec
from controlplane.model.embedder import EmbedderSpec
from controlplane.model.records import (
    LIVE_STATES,
    ApiKey,
    Operation,
    OperationOutcome,
    Server,
    ServerState,
    Tenant,
    TenantState,
)
from controlplane.pgconnect import connect
from tenant_schema.migrations import MigrationSet
from tenant_schema.runner import migrate
from tenant_schema.spec import IndexSpec, Metric

__all__ = ["Catalog"]

logger = logging.getLogger("tenantvec.catalog")

# Advisory lock namespace ("tenv"); the second key is hashtext(tenant id), or 0 for
# the catalog's own schema setup.
_LOCK_CLASS = 0x74656E76
# The catalog's schema: versioned, checksummed files (``catalog/migrations/``) applied by
# the runner that migrates tenant databases.
CATALOG_MIGRATIONS = MigrationSet.from_package("controlplane.catalog")


def sqlalchemy_url(conninfo: ConnInfo) -> URL:
    return URL.create(
        "postgresql+psycopg",
        username=conninfo.user,
        password=conninfo.password,
        host=conninfo.host,
        port=conninfo.port,
        database=conninfo.dbname,
        query=dict(conninfo.params),
    )


class Catalog:
    """Tenants, servers and operations in one Postgres database.

    Owns its SQLAlchemy engine: open with :meth:`connect`, close with :meth:`close`.
    """

    def __init__(self, engine: AsyncEngine, conninfo: ConnInfo, *, timeout: int = 5) -> None:
        self._engine = engine
        self.conninfo = conninfo
        self._timeout = timeout
        # This catalog's own id (catalog_meta), read by ensure_schema.
        self.catalog_id = ""
        self.jobs = JobQueue(engine, self._translate)
        self.activity = ActivityLog(engine, self._translate)

    @classmethod
    async def connect(cls, conninfo: ConnInfo, *, connect_timeout: int = 5) -> Catalog:
        engine = create_async_engine(
            sqlalchemy_url(conninfo),
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=20,
            connect_args={"connect_timeout": connect_timeout, "application_name": "tenantvec"},
        )
        catalog = cls(engine, conninfo, timeout=connect_timeout)
        try:
            await catalog.ensure_schema()
        except BaseException:
            await engine.dispose()
            raise
        return catalog

    async def close(self) -> None:
        await self._engine.dispose()

    async def ensure_schema(self) -> None:
        """Migrate the catalog to this tenantvec's schema (a catalog made by an older one
        upgrades in place), and read -- or choose, the first time -- its id."""
        try:
            if not await self._schema_is_current():
                async with connect(
                    self.conninfo, where="the catalog", timeout=self._timeout, autocommit=False
                ) as conn:
                    await migrate(conn, None, CATALOG_MIGRATIONS)
        except CatalogUnavailable:
            raise
        except BackendUnavailable as exc:  # said as every other catalog outage is
            raise CatalogUnavailable(
                f"the catalog database at {self.conninfo.host}:{self.conninfo.port} is "
                f"unreachable: {exc}"
            ) from exc
        with self._translate():
            async with self._engine.begin() as conn:
                await conn.execute(
                    pg_insert(CatalogMetaRow)
                    .values(key="catalog_id", value=secrets.token_hex(8))
                    .on_conflict_do_nothing(index_elements=["key"])
                )
                chosen = select(col(CatalogMetaRow.value)).where(
                    col(CatalogMetaRow.key) == "catalog_id"
                )
                self.catalog_id = str((await conn.execute(chosen)).scalar_one())

    async def _schema_is_current(self) -> bool:
        """Whether every migration is applied, as written: then there is nothing for the
        runner to do, and every command is spared a connection of its own for it."""
        ledger = table("schema_migrations", column("version"), column("checksum"))
        applied: dict[int, str] = {}
        with self._translate():
            async with self._engine.connect() as conn:
                if (await conn.execute(select(func.to_regclass("schema_migrations")))).scalar():
                    rows = await conn.execute(ledger.select())
                    applied = {int(version): str(checksum) for version, checksum in rows}
        return applied == {m.version: m.checksum for m in CATALOG_MIGRATIONS.migrations}

    async def ping(self) -> None:
        """Raise BackendUnavailable unless the catalog answers."""
        with self._translate():
            async with self._engine.connect() as conn:
                await conn.execute(select(literal(1)))

    # -- tenants ----------------------------------------------------------------------

    async def find_tenant(self, tenant_id: str) -> Tenant | None:
        """The live (not deleted) tenant with this id, if any."""
        async with self._session() as session:
            row = (
                await session.exec(
                    select(TenantRow).where(
                        TenantRow.id == tenant_id, col(TenantRow.state) != TenantState.DELETED
                    )
                )
            ).first()
            return _tenant(row) if row else None

    async def find_tenant_by_uid(self, uid: str) -> Tenant | None:
        """The tenant incarnation ``uid``, whatever its state (deleted ones too)."""
        try:
            key = uuid.UUID(uid)
        except ValueError:
            return None
        async with self._session() as session:
            row = await session.get(TenantRow, key)
            return _tenant(row) if row else None

    async def get_tenant(self, tenant_id: str) -> Tenant:
        tenant = await self.find_tenant(tenant_id)
        if tenant is None:
            raise TenantNotFound(tenant_id)
        return tenant

    async def list_tenants(
        self,
        *,
        states: Iterable[TenantState] | None = None,
        labels: dict[str, str] | None = None,
        server: str | None = None,
        include_deleted: bool = False,
        expired_before: datetime | None = None,
    ) -> list[Tenant]:
        query = select(TenantRow)
        if states is not None:
            query = query.where(col(TenantRow.state).in_([s.value for s in states]))
        elif not include_deleted:
            query = query.where(col(TenantRow.state) != TenantState.DELETED)
        if labels:
            query = query.where(col(TenantRow.labels).contains(labels))
        if server is not None:
            query = query.where(TenantRow.server == server)
        if expired_before is not None:
            query = query.where(col(TenantRow.expires_at) < expired_before)
        query = query.order_by(col(TenantRow.id), col(TenantRow.created_at))
        async with self._session() as session:
            return [_tenant(row) for row in (await session.exec(query)).all()]

    async def add_tenant(self, **values: Any) -> Tenant:
        now = utcnow()
        row = TenantRow(created_at=now, updated_at=now, **values)
        try:
            async with self._session() as session:
                session.add(row)
                await session.commit()
                await session.refresh(row)
                return _tenant(row)
        except sqlalchemy.exc.IntegrityError as exc:
            if "tenants_live_id" in str(exc.orig):
                existing = await self.find_tenant(values["id"])
                raise TenantExists(values["id"], existing.state if existing else "?") from None
            raise

    async def update_tenant(self, uid: str, **changes: Any) -> Tenant:
        async with self._session() as session:
            row = await session.get(TenantRow, uuid.UUID(uid))
            if row is None:
                raise TenantNotFound(str(changes.get("id", uid)))
            for key, value in changes.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            session.add(row)
            await session.commit()
            await session.refresh(row)
            return _tenant(row)

    async def count_live_tenants_by_server(self) -> dict[str, int]:
        query = (
            select(TenantRow.server, func.count())
            .where(col(TenantRow.state).in_([s.value for s in LIVE_STATES]))
            .group_by(TenantRow.server)
        )
        async with self._session() as session:
            return {str(name): int(n) for name, n in (await session.exec(query)).all() if name}

    async def tenant_versions(self, tenant_ids: Iterable[str]) -> dict[str, tuple[str, datetime]]:
        """``{id: (uid, updated_at)}`` of the live tenants among ``tenant_ids``.

        One cheap query, so a router can revalidate every route it caches at once.
        """
        ids = list(tenant_ids)
        if not ids:
            return {}
        query = select(TenantRow.id, TenantRow.uid, TenantRow.updated_at).where(
            col(TenantRow.id).in_(ids), col(TenantRow.state) != TenantState.DELETED
        )
        async with self._session() as session:
            return {
                str(tid): (str(uid), updated)
                for tid, uid, updated in (await session.exec(query)).all()
            }

    @asynccontextmanager
    async def tenant_lock(self, tenant_id: str, *, wait: float = 0.0) -> AsyncIterator[None]:
        """Hold the tenant's lifecycle lock, or raise TenantBusy if another holder has it
        (still, after ``wait`` seconds).

        A session-level advisory lock on a dedicated connection: if the holder dies, its
        connection closes and the lock is released, which is how reconcile tells a
        crashed operation from one still in progress. The release is not instant -- the
        dead holder's server session ends when it notices its client gone -- so
        reconcile waits a moment before it calls an operation in progress.
        """
        with self._translate():
            conn = await self._engine.connect()
        try:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            key = (_LOCK_CLASS, func.hashtext(tenant_id))
            deadline = time.monotonic() + wait
            while not (await conn.execute(select(func.pg_try_advisory_lock(*key)))).scalar():
                if time.monotonic() >= deadline:
                    raise TenantBusy(tenant_id)
                await asyncio.sleep(0.05)
            try:
                yield
            finally:
                await conn.execute(select(func.pg_advisory_unlock(*key)))
        finally:
            await conn.close()

    # -- servers ----------------------------------------------------------------------

    async def add_server(self, server: Server, *, replace: bool = False) -> Server:
        async with self._session() as session:
            existing = await session.get(ServerRow, server.name)
            if existing is not None and not replace:
                raise ServerExists(server.name)
            values: dict[str, Any] = {
                "kind": server.kind,
                "state": server.state.value,
                "address": server.address,
                "admin_dsn_encrypted": server.admin_dsn_encrypted,
                "capacity": server.capacity,
                "server_version": server.server_version,
                "pgvector_version": server.pgvector_version,
            }
            if existing is None:
                row = ServerRow(name=server.name, created_at=server.created_at, **values)
            else:
                row = existing
                del values["state"]  # re-registering must not undo a drain
                for key, value in values.items():
                    setattr(row, key, value)
            session.add(row)
            await session.commit()
            await session.refresh(row)
            return _server(row)

    async def find_server(self, name: str) -> Server | None:
        async with self._session() as session:
            row = await session.get(ServerRow, name)
            return _server(row) if row else None

    async def get_server(self, name: str) -> Server:
        server = await self.find_server(name)
        if server is None:
            raise ServerNotFound(name)
        return server

    async def list_servers(self) -> list[Server]:
        async with self._session() as session:
            rows = (await session.exec(select(ServerRow).order_by(col(ServerRow.name)))).all()
            return [_server(row) for row in rows]

    async def remove_server(self, name: str) -> None:
        async with self._session() as session:
            row = await session.get(ServerRow, name)
            if row is None:
                raise ServerNotFound(name)
            await session.delete(row)
            await session.commit()

    # -- API keys ---------------------------------------------------------------------

    async def add_key(self, key: ApiKey) -> ApiKey:
        row = ApiKeyRow(
            id=key.id,
            tenant_uid=uuid.UUID(key.tenant_uid),
            tenant_id=key.tenant_id,
            name=key.name,
            secret_hash=key.secret_hash,
            created_by=key.created_by,
            created_at=key.created_at,
        )
        async with self._session() as session:
            session.add(row)
            await session.commit()
            await session.refresh(row)
            return _key(row)

    async def find_key(self, key_id: str) -> ApiKey | None:
        async with self._session() as session:
            row = await session.get(ApiKeyRow, key_id)
            return _key(row) if row else None

    async def list_keys(self, tenant_uid: str, *, include_revoked: bool = False) -> list[ApiKey]:
        query = select(ApiKeyRow).where(ApiKeyRow.tenant_uid == uuid.UUID(tenant_uid))
        if not include_revoked:
            query = query.where(col(ApiKeyRow.revoked_at).is_(None))
        query = query.order_by(col(ApiKeyRow.created_at), col(ApiKeyRow.id))
        async with self._session() as session:
            return [_key(row) for row in (await session.exec(query)).all()]

    async def revoke_key(self, key_id: str) -> ApiKey | None:
        """Mark the key revoked (idempotent); None if there is no such key."""
        async with self._session() as session:
            row = await session.get(ApiKeyRow, key_id)
            if row is None:
                return None
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                session.add(row)
                await session.commit()
                await session.refresh(row)
            return _key(row)

    # -- operations -------------------------------------------------------------------

    async def begin_operation(
        self,
        action: str,
        actor: str,
        *,
        tenant: Tenant | None = None,
        tenant_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        row = OperationRow(
            action=action,
            actor=actor,
            tenant_id=tenant.id if tenant else tenant_id,
            tenant_uid=uuid.UUID(tenant.uid) if tenant else None,
            outcome=OperationOutcome.RUNNING.value,
            started_at=utcnow(),
            details=details or {},
        )
        async with self._session() as session:
            session.add(row)
            await session.commit()
            await session.refresh(row)
            assert row.id is not None
            return row.id

    async def find_operation(self, operation_id: int) -> Operation | None:
        async with self._session() as session:
            row = await session.get(OperationRow, operation_id)
            return _operation(row) if row else None

    async def end_operation(
        self,
        operation_id: int,
        outcome: OperationOutcome,
        *,
        error: str | None = None,
        tenant: Tenant | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        async with self._session() as session:
            row = await session.get(OperationRow, operation_id)
            if row is None:
                return
            row.outcome = outcome.value
            row.ended_at = utcnow()
            row.error = error
            if tenant is not None:
                row.tenant_uid = uuid.UUID(tenant.uid)
            if details:
                row.details = {**row.details, **details}
            session.add(row)
            await session.commit()

    async def list_operations(
        self,
        *,
        tenant_id: str | None = None,
        limit: int = 100,
        outcome: OperationOutcome | None = None,
    ) -> list[Operation]:
        query = select(OperationRow)
        if tenant_id is not None:
            query = query.where(OperationRow.tenant_id == tenant_id)
        if outcome is not None:
            query = query.where(OperationRow.outcome == outcome.value)
        query = query.order_by(col(OperationRow.id).desc()).limit(limit)
        async with self._session() as session:
            return [_operation(row) for row in (await session.exec(query)).all()]

    # -- plumbing ---------------------------------------------------------------------

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        with self._translate():
            async with AsyncSession(self._engine, expire_on_commit=False) as session:
                yield session

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """The one place where driver errors about the catalog become ours."""
        try:
            yield
        except sqlalchemy.exc.DataError as exc:
            # Inputs are validated before they get here; this is the net under them.
            raise InvalidRequest(f"the catalog refused a value: {_first_line(exc.orig)}") from exc
        except sqlalchemy.exc.TimeoutError as exc:
            raise OverCapacity(
                "every catalog connection of this process is busy; retry shortly",
                retry_after=1,
            ) from exc
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
            raise CatalogUnavailable(
                f"the catalog database at {self.conninfo.host}:{self.conninfo.port} is "
                f"unreachable: {_first_line(exc.orig)}"
            ) from exc


def _first_line(exc: BaseException | None) -> str:
    return str(exc).strip().splitlines()[0] if exc and str(exc).strip() else "no detail"


def _tenant(row: TenantRow) -> Tenant:
    return Tenant(
        uid=str(row.uid),
        id=row.id,
        state=TenantState(row.state),
        backend=row.backend,
        server=row.server,
        placement=dict(row.placement),
        dims=row.dims,
        metric=Metric(row.metric),
        index=IndexSpec.from_params(row.index_kind, row.index_params),
        text_config=row.text_config,
        schema_version=row.schema_version,
        labels={str(k): str(v) for k, v in row.labels.items()},
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        deleted_at=row.deleted_at,
        last_active_at=row.last_active_at,
        error=row.error,
        embedder=EmbedderSpec.from_json(row.embedder)
        if row.embedder
        else EmbedderSpec.parse("hash"),
        chunking=ChunkingSpec.from_json(row.chunking),
        dsn_encrypted=row.dsn_encrypted,
        service_dsn_encrypted=row.service_dsn_encrypted,
    )


def _server(row: ServerRow) -> Server:
    return Server(
        name=row.name,
        kind=row.kind,
        state=ServerState(row.state),
        address=row.address,
        capacity=row.capacity,
        server_version=row.server_version,
        pgvector_version=row.pgvector_version,
        created_at=row.created_at,
        admin_dsn_encrypted=row.admin_dsn_encrypted,
    )


def _operation(row: OperationRow) -> Operation:
    assert row.id is not None
    return Operation(
        id=row.id,
        action=row.action,
        actor=row.actor,
        tenant_id=row.tenant_id,
        tenant_uid=str(row.tenant_uid) if row.tenant_uid else None,
        outcome=OperationOutcome(row.outcome),
        started_at=row.started_at,
        ended_at=row.ended_at,
        error=row.error,
        details=dict(row.details),
    )


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        tenant_uid=str(row.tenant_uid),
        tenant_id=row.tenant_id,
        name=row.name,
        created_by=row.created_by,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        secret_hash=row.secret_hash,
    )
