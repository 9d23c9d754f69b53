"""Serving through a catalog outage: how long what was verified may still be trusted.

Routes and API keys are cached for ``TENANTVEC_ROUTE_TTL_SECONDS`` and then read from
the catalog again. When the catalog cannot be reached at that moment, an entry that
was verified less than ``TENANTVEC_CATALOG_GRACE_SECONDS`` ago keeps serving, so an
outage of the catalog is not an outage of every tenant. The price: a change made in
the catalog just before it became unreachable (a key revoked, a tenant suspended by
another process) may go unseen here until it is back, for at most the grace. Deleted
tenants are not at risk: their databases are gone with them.

While the catalog is down, it is asked again at most every :data:`RETRY_SECONDS` --
requests do not each pay a connection attempt -- and recovery is automatic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from controlplane.errors import CatalogUnavailable

__all__ = ["RETRY_SECONDS", "CatalogGrace"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_SECONDS = 1.0


class CatalogGrace:
    """Whether to ask the catalog now, and whether a stale entry may serve meanwhile.

    One per process (owned by the router), shared by the route cache and the key
    verifier: they see the same catalog.
    """

    def __init__(self, grace_seconds: float) -> None:
        self.grace_seconds = grace_seconds
        self._down_since: float | None = None
        self._retry_at = 0.0

    async def read(
        self, fetch: Callable[[], Awaitable[T]], *, verified_at: float | None
    ) -> tuple[bool, T | None]:
        """``(True, fetch())`` -- or ``(False, None)``: the catalog is down, and what was
        verified at ``verified_at`` (monotonic; None: nothing was) may serve instead.

        Raises CatalogUnavailable when the catalog is down and nothing may serve.
        """
        if verified_at is not None and not self.should_ask() and self.may_serve(verified_at):
            return False, None
        try:
            value = await fetch()
        except CatalogUnavailable:
            self.failed()
            if verified_at is not None and self.may_serve(verified_at):
                return False, None
            raise
        self.answered()
        return True, value

    @property
    def catalog_down(self) -> bool:
        return self._down_since is not None

    def serving(self) -> bool:
        """Whether entries verified before the outage may still serve (within the grace)."""
        return self._down_since is None or time.monotonic() - self._down_since <= self.grace_seconds

    def should_ask(self) -> bool:
        """False while the catalog failed less than RETRY_SECONDS ago."""
        return time.monotonic() >= self._retry_at

    def may_serve(self, verified_at: float) -> bool:
        """Whether an entry verified at ``verified_at`` (monotonic) may serve unverified."""
        return self.catalog_down and time.monotonic() - verified_at <= self.grace_seconds

    def failed(self) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            logger.warning(
                "the catalog is unreachable: serving routes and keys verified in the last "
                "%g s until it is back",
                self.grace_seconds,
            )
        self._retry_at = now + RETRY_SECONDS

    def answered(self) -> None:
        if self._down_since is not None:
            logger.warning(
                "the catalog answers again after %.1f s", time.monotonic() - self._down_since
            )
        self._down_since = None
        self._retry_at = 0.0
