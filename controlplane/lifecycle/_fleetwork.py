"""One lifecycle action over many tenants, a few at a time: what ``migrate --all``,
``servers drain`` and ``gc`` share.

Each tenant's result is reported as it comes (``on_result``: a progress bar) and
collected in the order the tenants were given. ``work`` turns its own failures into
results; one tenant's failure stops no other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

__all__ = ["for_each_tenant"]

T = TypeVar("T")
R = TypeVar("R")


async def for_each_tenant(
    tenants: Iterable[T],
    work: Callable[[T], Awaitable[R]],
    *,
    concurrency: int,
    on_result: Callable[[R], None] | None = None,
) -> list[R]:
    """``work(tenant)`` for every tenant, at most ``concurrency`` at once."""
    gate = asyncio.Semaphore(concurrency)

    async def one(tenant: T) -> R:
        async with gate:
            result = await work(tenant)
        if on_result is not None:
            on_result(result)
        return result

    return list(await asyncio.gather(*(one(t) for t in tenants)))
