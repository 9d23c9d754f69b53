"""When each tenant last served a request, for scale to zero.

Routers remember their tenants' last use in memory and write it here every few seconds,
in one statement (:meth:`ActivityLog.touch`); ``last_active_at`` is not part of a
tenant's routing facts, so writing it does not change ``updated_at`` (which would make
every router reload the route). Ages are sent rather than timestamps, and idleness is
judged by the catalog's clock, so processes whose clocks disagree still agree on who
is idle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["ActivityLog"]

_TOUCH = text(
    """
    UPDATE tenants t
    SET last_active_at = greatest(t.last_active_at, now() - make_interval(secs => v.ago))
    FROM unnest(CAST(:ids AS text[]), CAST(:agos AS float8[])) AS v(id, ago)
    WHERE t.id = v.id AND t.state <> 'deleted'
    """
)
# A tenant never used since it became ready counts from then (updated_at).
_IDLE = text(
    """
    SELECT id FROM tenants
    WHERE state = 'ready'
      AND greatest(last_active_at, updated_at) < now() - make_interval(secs => :idle)
      AND (CAST(:uid AS uuid) IS NULL OR uid = CAST(:uid AS uuid))
    ORDER BY id
    """
)


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
                await conn.execute(
                    _TOUCH, {"ids": list(ages), "agos": [max(0.0, a) for a in ages.values()]}
                )

    async def idle(self, seconds: float) -> list[str]:
        """Ids of the ready tenants unused for at least ``seconds``."""
        return await self._idle(seconds, None)

    async def is_idle(self, uid: str, seconds: float) -> bool:
        """Whether this tenant is ready and still unused for ``seconds`` (checked under its
        lock, just before suspending it)."""
        return bool(await self._idle(seconds, uid))

    async def _idle(self, seconds: float, uid: str | None) -> list[str]:
        with self._translate():
            async with self._engine.connect() as conn:
                result = await conn.execute(_IDLE, {"idle": seconds, "uid": uid})
                return [str(row[0]) for row in result]
