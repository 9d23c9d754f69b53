"""The catalog's operation log: every lifecycle action with actor, outcome and error."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import col, select

from controlplane.catalog._base import StoreBase
from controlplane.catalog.models import (
    OperationRow,
    utcnow,
)
from controlplane.model.records import (
    Operation,
    OperationOutcome,
    Tenant,
)

__all__ = ["OperationLog"]


class OperationLog(StoreBase):
    """Operation rows."""

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
