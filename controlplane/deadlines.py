"""The deadline of the step running now, for waits deep below the step that sets it.

The lifecycle retries a provisioning step until a deadline (``lifecycle.retry``); a
backend that waits on its own inside the step -- Neon's operations, polled until they
finish -- must not wait past it, or the step's bound would not bound anything. The
deadline travels in a context variable, so no signature between the two needs it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["remaining", "step_deadline"]

_DEADLINE: ContextVar[float | None] = ContextVar("tenantvec_step_deadline", default=None)


@contextlib.contextmanager
def step_deadline(seconds: float) -> Iterator[float]:
    """Run the block with a deadline ``seconds`` from now (or the enclosing one, if
    sooner); yields it (monotonic)."""
    deadline = time.monotonic() + seconds
    outer = _DEADLINE.get()
    if outer is not None:
        deadline = min(deadline, outer)
    token = _DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        _DEADLINE.reset(token)


def remaining(default: float) -> float:
    """Seconds left before the current step's deadline, at most ``default`` (which is
    all there is outside any step). Never negative."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return default
    return max(0.0, min(default, deadline - time.monotonic()))
