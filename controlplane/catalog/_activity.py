"""When each tenant last served a request, for scale to zero.

Routers remember their tenants' last use in memory and write it here every few seconds,
in one statement (:meth:`ActivityLog.touch`); ``last_active_at`` is not part of a
tenant's routing facts, so writing it does not change ``updated_at`` (which would make
every router reload the route). Ages are sent rather than timestamps, and idleness is
judged by the catalog's clock, so processes whose clocks disagree still agree on who
is idle.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Float, Text, cast, func, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from controlplane.catalog.models import TenantRow

__all__ = ["ActivityLog"]


def _ago(seconds: Any) -> Any:
    return func.now() - func.make_interval(0, 0, 0, 0, 0, 0, seconds)


class ActivityLog:
    def __init__(
        self, engine: AsyncEngine, translate: Callable[[], AbstractContextManager[None]]
    ) -> None:
        self._engine = engine
        self._translate = translate

    async def touch(self, ages: Mapping[str, float]) -> None:
        """Record that each tenant in ``ages`` was used that many seconds ago."""
        if not ages:
            return
        with self._translate():
            async with self._engine.begin() as conn:
                # One statement for all of them: UPDATE ... FROM unnest(ids, ages).
                used = (
                    func.unnest(
                        cast(literal(list(ages)), ARRAY(Text)),
                        cast(literal([max(0.0, a) for a in ages.values()]), ARRAY(Float)),
                    )
                    .table_valued("id", "ago")
                    .render_derived(name="used")
                )
                await conn.execute(
                    update(TenantRow)
                    .where(col(TenantRow.id) == used.c.id, col(TenantRow.state) != "deleted")
                    .values(
                        last_active_at=func.greatest(
                            col(TenantRow.last_active_at), _ago(used.c.ago)
                        )
                    )
                )

    async def idle(self, seconds: float) -> list[str]:
        """Ids of the ready tenants unused for at least ``seconds``."""
        return await self._idle(seconds, None)

    async def is_idle(self, uid: str, seconds: float) -> bool:
        """Whether this tenant is ready and still unused for ``seconds`` (checked under its
        lock, just before suspending it)."""
        return bool(await self._idle(seconds, uid))

    async def _idle(self, seconds: float, uid: str | None) -> list[str]:
        # A tenant never used since it became ready counts from then (updated_at).
        last_use = func.greatest(col(TenantRow.last_active_at), col(TenantRow.updated_at))
        idle = (
            select(col(TenantRow.id))
            .where(col(TenantRow.state) == "ready", last_use < _ago(seconds))
            .order_by(col(TenantRow.id))
        )
        if uid is not None:
            idle = idle.where(col(TenantRow.uid) == uuid.UUID(uid))
        with self._translate():
            async with self._engine.connect() as conn:
                return [str(row[0]) for row in await conn.execute(idle)]
