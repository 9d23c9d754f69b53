"""A client-side limiter that keeps one process under Neon's API rate limits.

Neon allows 700 requests per minute per account and bursts of 40 per second on one
route. A token bucket would allow a full bucket *plus* its refill inside one window, so
this counts requests in sliding windows instead: never more than ``limit`` requests in
any ``window`` seconds, which is what a server-side counter checks.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

__all__ = ["NeonRateLimiter", "SlidingWindow"]

# Neon counts requests when they arrive, this limiter when they leave: a request held up
# on the way could land inside the next window. A little slack on each window absorbs it.
_MINUTE = 61.0
_SECOND = 1.1


class SlidingWindow:
    """At most ``limit`` events in any ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        if limit <= 0 or window <= 0:
            raise ValueError("limit and window must be positive")
        self.limit = limit
        self.window = window
        self._events: deque[float] = deque()

    def wait_time(self, now: float) -> float:
        """Seconds until one more event fits (0 when it fits now)."""
        while self._events and self._events[0] <= now - self.window:
            self._events.popleft()
        if len(self._events) < self.limit:
            return 0.0
        return self._events[0] + self.window - now

    def record(self, now: float) -> None:
        self._events.append(now)


class NeonRateLimiter:
    """Neon's two limits: requests per minute overall, and per second on each route.

    ``acquire(route)`` waits until a request to ``route`` fits both, then counts it.
    Waiters are served in arrival order. The limiter counts one process's requests:
    processes sharing an API key must split the budget between them (the
    ``TENANTVEC_NEON_REQUESTS_PER_MINUTE`` setting).
    """

    def __init__(
        self,
        per_minute: int,
        per_route_per_second: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._overall = SlidingWindow(per_minute, _MINUTE)
        self._route_limit = per_route_per_second
        self._routes: dict[str, SlidingWindow] = {}
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self.waited_seconds = 0.0  # total time requests spent held back (for metrics)

    async def acquire(self, route: str) -> None:
        window = self._routes.get(route)
        if window is None:
            window = self._routes[route] = SlidingWindow(self._route_limit, _SECOND)
        async with self._lock:
            while True:
                now = self._clock()
                wait = max(self._overall.wait_time(now), window.wait_time(now))
                if wait <= 0:
                    self._overall.record(now)
                    window.record(now)
                    return
                self.waited_seconds += wait
                await self._sleep(wait)
