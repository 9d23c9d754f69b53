"""The catalog store: every read and write of the catalog database goes through here.

``Catalog`` owns the engine, the schema (its migrations) and the tenant locks; its
rows are read and written by the parts it is made of (``tenants``, ``servers``,
``keys``, ``operations``, and ``jobs`` and ``activity`` as attributes), which share
``base.StoreBase``'s sessions and error translation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import column, func, literal, table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import col, select

from controlplane.catalog._activity import ActivityLog
from controlplane.catalog._jobs import JobQueue
from controlplane.catalog._keys import KeyStore
from controlplane.catalog._operations import OperationLog
from controlplane.catalog._servers import ServerStore
from controlplane.catalog._tenants import TenantStore
from controlplane.catalog.models import (
    CatalogMetaRow,
)
from controlplane.dsn import ConnInfo
from controlplane.errors import (
    BackendUnavailable,
    CatalogUnavailable,
    TenantBusy,
)
from controlplane.pgconnect import connect
from tenantvec_schema.migrations import MigrationSet
from tenantvec_schema.runner import migrate

__all__ = ["Catalog"]

logger = logging.getLogger(__name__)

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


class Catalog(TenantStore, ServerStore, KeyStore, OperationLog):
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
            key = (_LOCK_CLASS, func.hashtext(tenant_id))
            with self._translate():
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                deadline = time.monotonic() + wait
                while not (await conn.execute(select(func.pg_try_advisory_lock(*key)))).scalar():
                    if time.monotonic() >= deadline:
                        raise TenantBusy(tenant_id)
                    await asyncio.sleep(0.05)
            try:
                yield
            finally:
                # A catalog gone meanwhile took the lock with the session: nothing to
                # release, and the body's own outcome is what the caller must hear.
                with contextlib.suppress(CatalogUnavailable), self._translate():
                    await conn.execute(select(func.pg_advisory_unlock(*key)))
        finally:
            with contextlib.suppress(CatalogUnavailable), self._translate():
                await conn.close()
