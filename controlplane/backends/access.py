"""Inside a tenant's database: what its own role may do there (layout 3), and taking a
database of an older layout over for the service role.

``backends/_tenantdb.py`` makes the roles and the database from the server's side and
says why the model is so; this module holds the steps that run *in* the database: the
tenant role's schema ``app`` and its rights on tenantvec's tables (after every
migration), the same schema for a one-role tenant (Neon), and the conversion of a
database the tenant's role owned (``migrate``).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from controlplane.backends.markers import TENANT_SCHEMA, TenantDatabase
from controlplane.errors import ProvisioningError
from tenantvec_schema.spec import MANAGED_TABLES

__all__ = ["adopt_contents", "give_own_schema", "grant_tenant_access"]

Conn = psycopg.AsyncConnection[Any]


async def give_own_schema(conn: Conn) -> None:
    """Where one role is both the tenant's and the control plane's (Neon): schema app,
    first on that role's path, so what the tenant makes lands outside ``public`` and
    backups carry it (the control plane's sessions pin their own path)."""
    schema = sql.Identifier(TENANT_SCHEMA)
    await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
    await conn.execute(
        sql.SQL("ALTER ROLE CURRENT_USER SET search_path = {}, public").format(schema)
    )


async def grant_tenant_access(conn: Conn, owner: str) -> None:
    """In a tenant's database, as its service role (or a superuser): the tenant role's
    own schema and its rights on tenantvec's tables -- after every migration, so that a
    table a migration adds is the tenant's to read and write too.

    Does nothing where this session's role does not own the database (a tenant of an
    older layout until ``migrate`` converts it, a Neon tenant: their roles own it).
    """
    cur = await conn.execute(
        "SELECT pg_get_userbyid(datdba) = current_user FROM pg_catalog.pg_database "
        "WHERE datname = current_database()"
    )
    row = await cur.fetchone()
    if row is None or not row[0]:
        return
    role = sql.Identifier(owner)
    statements = [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
            sql.Identifier(TENANT_SCHEMA), role
        ),
        sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC, {}").format(role),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(
            role
        ),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(role),
        # The ledger says which migrations ran: the tenant reads it, never writes it.
        sql.SQL(
            "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON public.schema_migrations FROM {}"
        ).format(role),
    ]
    for statement in statements:  # migrated: the ledger is there
        await conn.execute(statement)


async def adopt_contents(conn: Conn, db: TenantDatabase, *, where: str) -> None:
    """Inside a tenant's database, as the superuser: give the service role tenantvec's
    tables, move the tenant's own objects out of ``public`` into its own schema, and
    grant the tenant role its rights. Each step looks before it acts (idempotent)."""
    assert db.service is not None
    service = sql.Identifier(db.service)
    async with conn.transaction():
        # Names below are rendered (regclass, regprocedure) schema-qualified.
        await conn.execute("SET LOCAL search_path = ''")
        for table in MANAGED_TABLES:
            cur = await conn.execute(
                "SELECT pg_get_userbyid(relowner) FROM pg_class "
                "WHERE oid = to_regclass(%s) AND relkind = 'r'",
                (f"public.{table}",),
            )
            row = await cur.fetchone()
            if row is not None and row[0] != db.service:
                # Its indexes and the sequences its columns own follow it.
                await conn.execute(
                    sql.SQL("ALTER TABLE public.{} OWNER TO {}").format(
                        sql.Identifier(table), service
                    )
                )
        await conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                sql.Identifier(TENANT_SCHEMA), sql.Identifier(db.owner)
            )
        )
        cur = await conn.execute(_OWN_OBJECTS_IN_PUBLIC, (db.owner,))
        for kind, name in await cur.fetchall():
            statement = _SET_SCHEMA.get(kind)
            if statement is None:
                raise ProvisioningError(
                    f"tenant {db.tenant_id!r} on {where} keeps {kind} {name} of its own in "
                    f"schema public, which tenantvec cannot move for it: move it to schema "
                    f"{TENANT_SCHEMA} (ALTER ... SET SCHEMA {TENANT_SCHEMA}) and run migrate "
                    "again"
                )
            await conn.execute(
                sql.SQL(statement).format(sql.SQL(name), sql.Identifier(TENANT_SCHEMA))
            )
        await grant_tenant_access(conn, db.owner)


# What the tenant's role owns in schema public, besides tenantvec's tables (and what
# goes with them: indexes, the sequences their columns own, their row types, the
# array types of its types): (kind, qualified name, as regclass & co. render it).
_OWN_OBJECTS_IN_PUBLIC = """
WITH mine AS (SELECT oid FROM pg_roles WHERE rolname = %s),
     ns AS (SELECT 'public'::regnamespace AS oid)
SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
         WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
         WHEN 'f' THEN 'foreign table' ELSE 'relation' END, c.oid::regclass::text
FROM pg_class c
WHERE c.relnamespace = (SELECT oid FROM ns) AND c.relowner = (SELECT oid FROM mine)
  AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype IN ('a', 'i', 'e'))
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
         ELSE 'function' END, p.oid::regprocedure::text
FROM pg_proc p
WHERE p.pronamespace = (SELECT oid FROM ns) AND p.proowner = (SELECT oid FROM mine)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'type' END, t.oid::regtype::text
FROM pg_type t
WHERE t.typnamespace = (SELECT oid FROM ns) AND t.typowner = (SELECT oid FROM mine)
  AND t.typtype IN ('c', 'd', 'e', 'r', 'b')
  AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                  AND d.objid = t.oid AND d.deptype IN ('i', 'e'))
UNION ALL
SELECT 'statistics object', 'public.' || quote_ident(s.stxname)
FROM pg_statistic_ext s
WHERE s.stxnamespace = (SELECT oid FROM ns) AND s.stxowner = (SELECT oid FROM mine)
UNION ALL
SELECT 'operator', o.oid::regoperator::text
FROM pg_operator o
WHERE o.oprnamespace = (SELECT oid FROM ns) AND o.oprowner = (SELECT oid FROM mine)
UNION ALL
SELECT 'collation', 'public.' || quote_ident(c.collname)
FROM pg_collation c
WHERE c.collnamespace = (SELECT oid FROM ns) AND c.collowner = (SELECT oid FROM mine)
UNION ALL
SELECT 'text search configuration', 'public.' || quote_ident(c.cfgname)
FROM pg_ts_config c
WHERE c.cfgnamespace = (SELECT oid FROM ns) AND c.cfgowner = (SELECT oid FROM mine)
UNION ALL
SELECT 'text search dictionary', 'public.' || quote_ident(d.dictname)
FROM pg_ts_dict d
WHERE d.dictnamespace = (SELECT oid FROM ns) AND d.dictowner = (SELECT oid FROM mine)
"""
# How each kind moves (the name as rendered above).
_SET_SCHEMA = {
    "table": "ALTER TABLE {} SET SCHEMA {}",
    "view": "ALTER VIEW {} SET SCHEMA {}",
    "materialized view": "ALTER MATERIALIZED VIEW {} SET SCHEMA {}",
    "sequence": "ALTER SEQUENCE {} SET SCHEMA {}",
    "foreign table": "ALTER FOREIGN TABLE {} SET SCHEMA {}",
    "function": "ALTER FUNCTION {} SET SCHEMA {}",
    "procedure": "ALTER PROCEDURE {} SET SCHEMA {}",
    "aggregate": "ALTER AGGREGATE {} SET SCHEMA {}",
    "type": "ALTER TYPE {} SET SCHEMA {}",
    "domain": "ALTER DOMAIN {} SET SCHEMA {}",
    "statistics object": "ALTER STATISTICS {} SET SCHEMA {}",
}
