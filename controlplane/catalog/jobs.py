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

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["JobQueue", "QueuedJob"]

_CLAIM = text(
    """
    UPDATE job_queue
    SET lease_owner = :owner,
        lease_expires_at = now() + make_interval(secs => :lease),
        attempts = attempts + 1
    WHERE id = (
        SELECT id FROM job_queue
        WHERE lease_expires_at IS NULL OR lease_expires_at < now()
        ORDER BY created_at
        FOR UPDATE SKIP LOCKED
        LIMIT 1
    )
    RETURNING id, tenant_uid, tenant_id, attempts
    """
)
_RENEW = text(
    "UPDATE job_queue SET lease_expires_at = now() + make_interval(secs => :lease) "
    "WHERE id = :id AND lease_owner = :owner"
)


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
                    text(
                        "INSERT INTO job_queue (id, tenant_uid, tenant_id, created_at, attempts) "
                        "VALUES (:id, :uid, :tid, now(), 0) ON CONFLICT (id) DO NOTHING"
                    ),
                    {"id": uuid.UUID(job_id), "uid": uuid.UUID(tenant_uid), "tid": tenant_id},
                )

    async def claim(self, owner: str, lease_seconds: float) -> QueuedJob | None:
        """The oldest job nobody holds (or whose holder's lease ran out), now ours."""
        with self._translate():
            async with self._engine.begin() as conn:
                row = (await conn.execute(_CLAIM, {"owner": owner, "lease": lease_seconds})).first()
        if row is None:
            return None
        return QueuedJob(str(row[0]), str(row[1]), str(row[2]), int(row[3]))

    async def renew(self, job_id: str, owner: str, lease_seconds: float) -> bool:
        """Extend our lease; False if the job is no longer ours (finished, or taken)."""
        with self._translate():
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    _RENEW, {"id": uuid.UUID(job_id), "owner": owner, "lease": lease_seconds}
                )
        return bool(result.rowcount)

    async def release(self, job_id: str, owner: str) -> None:
        """Give a job back at once (a graceful stop): it does not count as an attempt."""
        with self._translate():
            async with self._engine.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE job_queue SET lease_owner = NULL, lease_expires_at = NULL, "
                        "attempts = greatest(attempts - 1, 0) "
                        "WHERE id = :id AND lease_owner = :owner"
                    ),
                    {"id": uuid.UUID(job_id), "owner": owner},
                )

    async def finish(self, job_id: str) -> None:
        with self._translate():
            async with self._engine.begin() as conn:
                await conn.execute(
                    text("DELETE FROM job_queue WHERE id = :id"), {"id": uuid.UUID(job_id)}
                )

    async def waiting(self) -> int:
        with self._translate():
            async with self._engine.connect() as conn:
                return int(
                    (await conn.execute(text("SELECT count(*) FROM job_queue"))).scalar_one()
                )
