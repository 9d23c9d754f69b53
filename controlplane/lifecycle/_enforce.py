"""Holding tenants' own sessions to their limits, whatever those sessions set.

A tenant's statement and idle-in-transaction timeouts reach its own sessions as role
defaults, and any session may change its own (``SET statement_timeout = 0``): Postgres
has no limit a non-superuser cannot lift. So the keeper of each API process looks, every
``TENANTVEC_LIMITS_SECONDS``, at the sessions of tenants' own roles on every registered
server (one query per server) and ends what outlived its tenant's limits -- by more
than :data:`GRACE_SECONDS`, so that Postgres's own timeout, where the session kept it,
acts first: a statement running longer than its statement timeout is cancelled, a
session idle in a transaction longer than its idle timeout is terminated.

The tenants of shared servers (the ``postgres`` backend) are held so: they are the
neighbours a runaway session would hurt. A tenant with a server of its own (instance,
docker) or a Neon compute only slows itself down. tenantvec's own sessions (the service
role's) are never touched: they run with the limits as connection options.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from controlplane.backends.markers import owner_role
from controlplane.context import PlaneContext
from controlplane.errors import TenantvecError
from controlplane.model.backends import BackendKind
from controlplane.model.limits import RoleLimits
from controlplane.model.records import TenantState
from controlplane.pgconnect import connect

__all__ = ["GRACE_SECONDS", "Enforced", "enforce_limits"]

logger = logging.getLogger(__name__)

# How far past its limit a session may go before it is ended from outside.
GRACE_SECONDS = 1.0

# Sessions of the given roles past their limits: cancel the statement, or end the
# session idle in a transaction. Both functions answer false for a session gone.
_ENFORCE = """
WITH limits AS (
    SELECT * FROM unnest(%(roles)s::text[], %(statement_ms)s::bigint[], %(idle_ms)s::bigint[])
        AS l(role, statement_ms, idle_ms)
)
SELECT a.usename, a.state,
       CASE WHEN a.state = 'active' THEN pg_catalog.pg_cancel_backend(a.pid)
            ELSE pg_catalog.pg_terminate_backend(a.pid) END
FROM pg_catalog.pg_stat_activity a JOIN limits l ON a.usename = l.role
WHERE a.backend_type = 'client backend' AND a.pid <> pg_catalog.pg_backend_pid() AND (
    (a.state = 'active'
     AND a.query_start < now() - make_interval(secs => (l.statement_ms / 1000.0) + %(grace)s))
    OR (a.state IN ('idle in transaction', 'idle in transaction (aborted)')
     AND a.state_change < now() - make_interval(secs => (l.idle_ms / 1000.0) + %(grace)s))
)
"""


@dataclass(frozen=True)
class Enforced:
    server: str
    tenant: str
    state: str  # what the session was doing: active (cancelled), idle in transaction (ended)


async def enforce_limits(plane: PlaneContext) -> list[Enforced]:
    """End what tenants' own sessions on shared servers do beyond their limits; what
    was ended. A server that cannot be reached is skipped (and said so) until next time."""
    tenants = await plane.catalog.list_tenants(states=[TenantState.READY])
    by_server: dict[str, dict[str, tuple[str, RoleLimits]]] = defaultdict(dict)
    for tenant in tenants:
        if tenant.backend == BackendKind.POSTGRES.value and tenant.server is not None:
            limits = tenant.where.limits
            by_server[tenant.server][owner_role(tenant)] = (tenant.id, limits)
    ended: list[Enforced] = []
    for name, roles in by_server.items():
        try:
            server = await plane.catalog.get_server(name)
            admin = plane.servers.admin_conninfo(server)
            async with connect(
                admin, where=f"server {name!r}", timeout=plane.settings.connect_timeout
            ) as conn:
                cur = await conn.execute(
                    _ENFORCE,
                    {
                        "roles": list(roles),
                        "statement_ms": [lim.statement_timeout_ms for _, lim in roles.values()],
                        "idle_ms": [
                            lim.idle_in_transaction_timeout_ms for _, lim in roles.values()
                        ],
                        "grace": GRACE_SECONDS,
                    },
                )
                for role, state, done in await cur.fetchall():
                    if done:
                        ended.append(Enforced(name, roles[str(role)][0], str(state)))
        except TenantvecError as exc:
            logger.info("server %s: its tenants' limits not checked this time: %s", name, exc)
    for item in ended:
        logger.info(
            "tenant %s (server %s): a session of its own outlived its limits (%s): %s",
            item.tenant,
            item.server,
            item.state,
            "statement cancelled" if item.state == "active" else "session ended",
        )
    return ended
