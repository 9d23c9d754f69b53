"""Throwaway control planes: the one way to make a home, its settings and its embedded
Postgres that leave nothing behind -- for the pytest plugin (``Harness.throwaway``),
tenantvec's own test suite and its benchmarks alike.

A throwaway home is made by :func:`controlplane.testing._reaper.make_home` (locked by its
owner, swept by the next one if its owner dies) and removed by ``reap`` (its instance
servers and embedded server stopped first).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from controlplane.settings import Settings
from controlplane.testing._reaper import make_home, reap

__all__ = ["free_port", "throwaway_server", "throwaway_settings"]


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def throwaway_settings(
    home: Path,
    *,
    base: Settings | None = None,
    port: int | None = None,
    durable: bool = False,
    **overrides: Any,
) -> Settings:
    """Settings of a control plane in ``home``: its own embedded server on ``port`` (a
    free one), its own catalog, a fresh secret key and admin token -- and every other
    setting from ``base`` (default: the built-in defaults) and ``overrides`` (fields
    and groups of :class:`Settings` by name).

    ``durable``: fsync on, as in production (benchmarks measure that); off otherwise,
    since a throwaway server's durability buys nothing.
    """
    base = base or Settings()
    settings = base.replace(
        home=home,
        catalog=base.catalog.replace(url=None),
        embedded=base.embedded.replace(port=free_port() if port is None else port, fsync=durable),
        secret_key=None,
        api=base.api.replace(admin_token=None),
    )
    return settings.replace(**overrides) if overrides else settings


@contextlib.contextmanager
def throwaway_server(
    *, base: Settings | None = None, durable: bool = False, **overrides: Any
) -> Iterator[Settings]:
    """A control plane's embedded server, running, in a new throwaway home; at the end
    every server the home runs is stopped and the home removed."""
    from controlplane.localpg import EmbeddedServer

    home, lock = make_home()
    settings = throwaway_settings(home, base=base, durable=durable, **overrides)
    try:
        EmbeddedServer(settings).ensure_running()
        yield settings
    finally:
        try:
            reap(home, settings)
        finally:
            lock.release()
