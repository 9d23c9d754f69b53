"""Where a new tenant (or a moving one) goes among the registered servers.

A server takes tenants while it is ``active`` (a ``draining`` one keeps its tenants and
takes none) and has room by both its limits: ``capacity`` (tenants) and
``capacity_bytes`` (what its databases hold on disk, read from the server and cached
for ``USED_BYTES_SECONDS``; a lone server without a byte limit is not measured at
all). Among those, the least full goes first -- the larger of its
two fill fractions -- then the one holding fewest bytes, then fewest tenants, then by
name, so placement is deterministic. A server that does not answer gets no tenant.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from controlplane.context import PlaneContext
from controlplane.errors import BackendUnavailable, Conflict, OverCapacity
from controlplane.model.records import Server, ServerState

__all__ = ["ServerLoad", "choose_server", "server_loads"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerLoad:
    server: Server
    tenants: int
    bytes: int | None  # None: not measured (the server did not answer)

    @property
    def full(self) -> bool:
        s = self.server
        return (s.capacity is not None and self.tenants >= s.capacity) or (
            s.capacity_bytes is not None
            and self.bytes is not None
            and self.bytes >= s.capacity_bytes
        )

    @property
    def fill(self) -> float:
        """How full it is by its tighter limit (0 where it has none)."""
        s = self.server
        by_count = self.tenants / s.capacity if s.capacity else 0.0
        by_bytes = (self.bytes or 0) / s.capacity_bytes if s.capacity_bytes else 0.0
        return max(by_count, by_bytes)

    def rank(self) -> tuple[float, int, int, str]:
        return (self.fill, self.bytes or 0, self.tenants, self.server.name)


async def server_loads(
    plane: PlaneContext, servers: list[Server], *, measure_all: bool = True
) -> list[ServerLoad]:
    """Each server's tenants (from the catalog) and bytes (from the server itself:
    ``pg_database_size`` of every database, a stat of each of their files -- so not
    asked where nothing depends on it: ``measure_all=False`` measures only servers
    with a byte limit, or all of them when there are several to rank)."""
    counts = await plane.catalog.count_live_tenants_by_server()
    timeout = plane.settings.connect_timeout
    rank_by_bytes = measure_all or len(servers) > 1

    async def measure(server: Server) -> int | None:
        if not rank_by_bytes and server.capacity_bytes is None:
            return 0
        try:
            return await plane.servers.used_bytes(server, timeout=timeout)
        except BackendUnavailable as exc:
            logger.warning("server %s: not measured for placement: %s", server.name, exc)
            return None

    sizes = await asyncio.gather(*(measure(s) for s in servers))
    return [
        ServerLoad(s, counts.get(s.name, 0), size) for s, size in zip(servers, sizes, strict=True)
    ]


async def choose_server(
    plane: PlaneContext, requested: str | None, *, exclude: str | None = None
) -> Server:
    """The requested server (if it takes tenants and has room), or the least full
    active one -- never ``exclude``, the server a tenant moves off."""
    if requested is not None:
        server = await plane.catalog.get_server(requested)
        if server.state is not ServerState.ACTIVE:
            raise Conflict(f"server {requested!r} is {server.state} and takes no new tenants")
        (load,) = await server_loads(plane, [server], measure_all=False)
        if load.full:
            raise OverCapacity(f"server {requested!r} is full ({_limits(server)})")
        return server
    active = [
        s
        for s in await plane.catalog.list_servers()
        if s.state is ServerState.ACTIVE and s.name != exclude
    ]
    loads = [
        load
        for load in await server_loads(plane, active, measure_all=False)
        if not load.full and load.bytes is not None
    ]
    if not loads:
        other = f" other than {exclude!r}" if exclude else ""
        raise OverCapacity(
            f"no active server{other} has room for another tenant; raise a server's "
            "capacity or register another with 'tenantctl servers add'"
        )
    return min(loads, key=ServerLoad.rank).server


def _limits(server: Server) -> str:
    parts = []
    if server.capacity is not None:
        parts.append(f"{server.capacity} tenants")
    if server.capacity_bytes is not None:
        parts.append(f"{server.capacity_bytes} bytes")
    return " or ".join(parts)
