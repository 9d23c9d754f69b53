"""Tenants as older tenantvecs left them, made from today's: for the tests of migrate."""

from __future__ import annotations

import psycopg
from psycopg import sql

from controlplane.dsn import ConnInfo
from controlplane.model.records import Tenant
from controlplane.plane import ControlPlane


async def make_layout_2(plane: ControlPlane, tenant: Tenant, superuser_dsn: str) -> Tenant:
    """What tenantvec made before layout 3: the tenant's role owns its database and
    tenantvec's tables, the service role's sessions act as it, no schema ``app``."""
    placement = tenant.placement
    owner = sql.Identifier(placement["role"])
    service = sql.Identifier(placement["service_role"])
    database = sql.Identifier(placement["database"])
    inside = ConnInfo.parse(superuser_dsn).with_(dbname=placement["database"]).dsn
    async with await psycopg.AsyncConnection.connect(inside, autocommit=True) as conn:
        await conn.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(service, owner))
        await conn.execute("DROP SCHEMA app")
        await conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, owner))
        await conn.execute(
            sql.SQL("ALTER ROLE {} SET role = {}").format(service, sql.Literal(placement["role"]))
        )
        await conn.execute(sql.SQL("ALTER ROLE {} RESET search_path").format(owner))
    return await plane.catalog.update_tenant(tenant.uid, placement={**placement, "layout": 2})
