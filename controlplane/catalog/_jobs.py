"""The ingestion job queue in the catalog: enqueue, claim with a lease, renew, finish.

Claims use ``FOR UPDATE SKIP LOCKED`` so that API processes never take the same job,
and leases are timed by the catalog's clock (``now()``), so processes on machines whose
clocks disagree still agree on when a lease has run out.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from controlplane.catalog.models import JobRow

__all__ = ["JobQueue", "QueuedJob"]


def _lease_until(seconds: float) -> ColumnElement[Any]:
    return func.now() + func.make_interval(0, 0, 0, 0, 0, 0, seconds)


@dataclass(frozen=True)
class QueuedJob:
    id: str
    tenant_uid: str
    tenant_id: str
    attempts: int  # including this claim: more than 1 means an earlier holder died


class JobQueue:
    def __init__(
        self, engine: AsyncEngine, translate: Callable[[], AbstractContextManager[None]]
    ) -> None:
        self._engine = engine
        self._translate = translate

    async def enqueue(self, job_id: str, tenant_uid: str, tenant_id: str) -> None:
        with self._translate():
            async with self._engine.begin() as conn:
                await conn.execute(
                    pg_insert(JobRow)
                    .values(
                        id=uuid.UUID(job_id),
                        tenant_uid=uuid.UUID(tenant_uid),
                        tenant_id=tenant_id,
                        created_at=func.now(),
                        attempts=0,
                    )
                    .on_conflict_do_nothing(index_elements=["id"])
                )

    async def claim(self, owner: str, lease_seconds: float) -> QueuedJob | None:
        """The oldest job nobody holds (or whose holder's lease ran out), now ours."""
        with self._translate():
            async with self._engine.begin() as conn:
                free = (
                    select(col(JobRow.id))
                    .where(
                        or_(
                            col(JobRow.lease_expires_at).is_(None),
                            col(JobRow.lease_expires_at) < func.now(),
                        )
                    )
                    .order_by(col(JobRow.created_at))
                    .limit(1)
                    .with_for_update(skip_locked=True)
                    .scalar_subquery()
                )
                claim = (
                    update(JobRow)
                    .where(col(JobRow.id) == free)
                    .values(
                        lease_owner=owner,
                        lease_expires_at=_lease_until(lease_seconds),
                        attempts=col(JobRow.attempts) + 1,
                    )
                    .returning(
                        col(JobRow.id),
                        col(JobRow.tenant_uid),
                        col(JobRow.tenant_id),
                        col(JobRow.attempts),
                    )
                )
                row = (await conn.execute(claim)).first()
        if row is None:
            return None
        return QueuedJob(str(row[0]), str(row[1]), str(row[2]), int(row[3]))

    async def renew(self, job_id: str, owner: str, lease_seconds: float) -> bool:
        """Extend our lease; False if the job is no longer ours (finished, or taken)."""
        with self._translate():
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    update(JobRow)
                    .where(col(JobRow.id) == uuid.UUID(job_id), col(JobRow.lease_owner) == owner)
                    .values(lease_expires_at=_lease_until(lease_seconds))
                )
        return bool(result.rowcount)

    async def release(self, job_id: str, owner: str) -> None:
        """Give a job back at once (a graceful stop): it does not count as an attempt."""
        with self._translate():
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(JobRow)
                    .where(col(JobRow.id) == uuid.UUID(job_id), col(JobRow.lease_owner) == owner)
                    .values(
                        lease_owner=None,
                        lease_expires_at=None,
                        attempts=func.greatest(col(JobRow.attempts) - 1, 0),
                    )
                )

    async def finish(self, job_id: str) -> None:
        with self._translate():
            async with self._engine.begin() as conn:
                await conn.execute(delete(JobRow).where(col(JobRow.id) == uuid.UUID(job_id)))

    async def waiting(self) -> int:
        with self._translate():
            async with self._engine.connect() as conn:
                return int(
                    (await conn.execute(select(func.count()).select_from(JobRow))).scalar_one()
                )
