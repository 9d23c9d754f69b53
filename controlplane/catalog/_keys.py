"""The catalog's tenant API keys (hashed; never their secrets)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlmodel import col, select

from controlplane.catalog._base import StoreBase
from controlplane.catalog.models import (
    ApiKeyRow,
    TenantRow,
    utcnow,
)
from controlplane.model.records import (
    ApiKey,
    TenantState,
)

__all__ = ["KeyStore"]

# A key opens its tenant incarnation while the key is not revoked and the incarnation
# lives: not deleted, not being deleted.
_DEAD_STATES = (TenantState.DELETED, TenantState.DELETING)


class KeyStore(StoreBase):
    """API key rows."""

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

    async def live_keys(self, key_ids: Iterable[str]) -> dict[str, ApiKey]:
        """The keys among ``key_ids`` that open a living tenant incarnation, in one query.

        What a key verifier asks, for one key on a request or for every key it caches at
        once in the background: a key not in the answer is unknown, revoked, or its
        tenant incarnation is gone.
        """
        ids = list(key_ids)
        if not ids:
            return {}
        query = (
            select(ApiKeyRow)
            .join(TenantRow, col(TenantRow.uid) == col(ApiKeyRow.tenant_uid))
            .where(
                col(ApiKeyRow.id).in_(ids),
                col(ApiKeyRow.revoked_at).is_(None),
                col(TenantRow.state).not_in(_DEAD_STATES),
            )
        )
        async with self._session() as session:
            return {row.id: _key(row) for row in (await session.exec(query)).all()}

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
