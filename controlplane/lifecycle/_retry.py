"""How provisioning retries: transient errors only, bounded in time, with jitter.

This is the one retry layer of a provisioning step. Backends try once and say whether
a failure is worth another try (BackendUnavailable, with ``retry_after`` when the
other side said when); the step then runs again from the top -- steps are written to
look first for what an earlier attempt made. Waits inside a step (Neon's operations)
end at the same deadline (``deadlines.remaining``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    before_sleep_log,
    retry_if_exception_type,
    stop_before_delay,
    wait_exponential_jitter,
)

from controlplane.deadlines import step_deadline
from controlplane.errors import BackendUnavailable

__all__ = ["with_retries"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


class _Wait:
    """Exponential backoff with jitter, never shorter than the other side's Retry-After."""

    def __init__(self) -> None:
        self._backoff = wait_exponential_jitter(multiplier=0.1, max=2.0)

    def __call__(self, state: RetryCallState) -> float:
        wait = float(self._backoff(state))
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "retry_after", None)
        if isinstance(hint, int | float) and hint > 0:
            wait = max(wait, float(hint))
        return wait


async def with_retries(step: Callable[[], Awaitable[T]], *, seconds: float) -> T:
    """Run ``step``, retrying BackendUnavailable for up to ``seconds``; re-raise the last.

    Only the backend boundary decides what is transient (it raises BackendUnavailable
    for unreachable servers, lock and deadlock timeouts, too many connections, Neon's
    423 and 429); any other error is permanent and surfaces at once. No retry starts
    after the deadline, and no wait inside a step (``deadlines.remaining``) passes it.
    """
    with step_deadline(seconds) as deadline:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(BackendUnavailable),
            stop=stop_before_delay(max(0.0, deadline - time.monotonic())),
            wait=_Wait(),
            before_sleep=before_sleep_log(logger, logging.INFO),
            reraise=True,
        ):
            with attempt:
                return await step()
    raise AssertionError("unreachable: tenacity re-raises the last error")
