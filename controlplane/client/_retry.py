"""When the clients send a request again: a bounded wait, the server's Retry-After first.

A 503 means the server did not do it -- no room (``OverCapacity``), a tenant resuming, an
embedding provider refusing -- and says when to come back: the request goes again after
``Retry-After`` (or backoff with jitter, whichever is longer), until ``retry_seconds``
have passed since the first try; then the 503's error is raised. A request whose answer
never came (connection refused, reset, timeout) goes again only if it is safe to repeat
(``Call.idempotent``). ``retry_seconds=0`` turns retrying off.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

__all__ = ["RetryBudget"]

_FIRST_WAIT = 0.1
_MAX_WAIT = 5.0


@dataclass
class RetryBudget:
    """The retries of one call: ``wait = budget.next(retry_after)``; None: give up."""

    seconds: float
    started: float = field(default_factory=time.monotonic)
    attempts: int = 0

    def next(self, retry_after: float | None) -> float | None:
        self.attempts += 1
        backoff = min(_MAX_WAIT, _FIRST_WAIT * 2.0 ** (self.attempts - 1))
        wait = max(retry_after or 0.0, backoff * (0.5 + random.random() / 2))  # noqa: S311
        if time.monotonic() + wait - self.started > self.seconds:
            return None
        return wait
