"""The catalog's tenants: find, list, add and update their rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy.exc
from sqlalchemy import func
from sqlmodel import col, select

from controlplane.catalog._base import StoreBase
from controlplane.catalog.models import (
    TenantRow,
    utcnow,
)
from controlplane.errors import (
    TenantChanged,
    TenantExists,
    TenantNotFound,
)
from controlplane.model.chunking import ChunkingSpec
from controlplane.model.embedder import embedder_from_json
from controlplane.model.placement import TenantCopy
from controlplane.model.recall import RecallTuning
from controlplane.model.records import (
    LIVE_STATES,
    Tenant,
    TenantState,
)
from tenantvec_schema.spec import IndexSpec, Metric

__all__ = ["TenantStore"]


class TenantStore(StoreBase):
    """Tenant rows: one live row per id, deleted ones kept for audit."""

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

    async def update_tenant(
        self, uid: str, *, expect: Mapping[str, Any] | None = None, **changes: Any
    ) -> Tenant:
        """Change the tenant's row; with ``expect``, only if those columns still hold
        those values (the row locked while it is compared), else TenantChanged: how a
        step of a long operation makes sure nobody took the tenant over meanwhile."""
        async with self._session() as session:
            row = await session.get(TenantRow, uuid.UUID(uid), with_for_update=expect is not None)
            if row is None:
                raise TenantNotFound(str(changes.get("id", uid)))
            for key, value in (expect or {}).items():
                if getattr(row, key) != _column(value):
                    raise TenantChanged(row.id, key)
            for key, value in changes.items():
                setattr(row, key, _column(value))
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
        embedder=embedder_from_json(row.embedder),
        chunking=ChunkingSpec.from_json(row.chunking),
        recall=RecallTuning.from_json(row.recall),
        dsn_encrypted=row.dsn_encrypted,
        service_dsn_encrypted=row.service_dsn_encrypted,
        other_copy=TenantCopy.from_json(row.other_copy) if row.other_copy else None,
    )


def _column(value: Any) -> Any:
    """A record's value as its column holds it."""
    if isinstance(value, TenantCopy):
        return value.to_json()
    return value
