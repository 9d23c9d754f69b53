"""How provisioning retries: transient errors only, bounded in time, with jitter."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from controlplane.errors import BackendUnavailable

__all__ = ["with_retries"]

logger = logging.getLogger("tenantvec.provisioning")
T = TypeVar("T")


async def with_retries(step: Callable[[], Awaitable[T]], *, seconds: float) -> T:
    """Run ``step``, retrying BackendUnavailable for up to ``seconds``; re-raise the last.

    Only the backend boundary decides what is transient (it raises BackendUnavailable
    for unreachable servers, lock and deadlock timeouts, too many connections); any
    other error is permanent and surfaces at once.
    """
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(BackendUnavailable),
        stop=stop_after_delay(seconds),
        wait=wait_exponential_jitter(multiplier=0.1, max=2.0),
        before_sleep=before_sleep_log(logger, logging.INFO),
        reraise=True,
    ):
        with attempt:
            return await step()
    raise AssertionError("unreachable: tenacity re-raises the last error")
