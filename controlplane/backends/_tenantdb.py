"""A tenant's database and its two login roles on a Postgres server: made, checked, dropped.

Shared by every backend that reaches a server as its superuser (``postgres``,
``instance``, ``docker``); the names and markers they carry are ``markers``'. The
ownership model (layout 3) is what keeps a tenant's own DSN from changing what the
control plane relies on:

* the **service role** (``<name>_svc``), which the control plane connects as (the
  router, migrations, ingestion, backups), **owns the database**, schema ``public`` and
  every table tenantvec's migrations make there. Only it (or a superuser) can drop,
  comment, open or reconfigure the database (``ALTER DATABASE ... SET``), or alter those
  tables. It is outside the tenant's connection limit and -- where the server lets us
  grant it -- allowed into Postgres's reserved connection slots
  (``pg_use_reserved_connections``). It is a member of the owner role: it may end the
  tenant's sessions (a move's write pause) and read what the tenant made (backups).
* the tenant's **owner role**, named like its database, is the role of the DSN that
  ``tenantctl tenants dsn`` hands out. It may CONNECT, make TEMP tables and CREATE
  schemas; it owns schema ``app`` (first on its ``search_path``: ``CREATE TABLE notes``
  lands there); on tenantvec's tables it may SELECT, INSERT, UPDATE and DELETE (the
  migration ledger: SELECT). It carries the tenant's :class:`RoleLimits`: a connection
  limit (which it cannot change) and default timeouts. It cannot create anything in
  ``public``, so nothing it makes can stand in for what the control plane's sessions
  name there (they pin ``search_path`` to ``public``, after ``pg_catalog``).

The database is copied from ``tenantvec_template`` (which already holds the vector
extension, so no tenant role needs to be a superuser) and closed to every other role.
All three carry the tenant's marker comment. Tenants made before this layout are
converted in place by :func:`ensure_tenant_database` (``tenantctl migrate``): their own
objects in ``public`` move to ``app``, what the tenant set on its database is reset.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from controlplane.backends.access import adopt_contents
from controlplane.backends.base import Checkpoint
from controlplane.backends.markers import (
    LAYOUT,
    SERVICE_SUFFIX,
    TENANT_SCHEMA,
    TenantDatabase,
    new_names,
)
from controlplane.backends.servers import TEMPLATE_DB, ensure_template
from controlplane.dsn import ConnInfo
from controlplane.errors import BackendUnavailable, ProvisioningError
from controlplane.model.limits import RoleLimits
from controlplane.model.placement import DatabasePlacement
from controlplane.pgconnect import CONTROLPLANE_APPLICATION, ROUTER_APPLICATION, connect
from controlplane.secretbox import new_password

__all__ = [
    "apply_limits",
    "drop_tenant_database",
    "ensure_tenant_database",
    "provision_own_server",
    "rename_legacy_database",
    "rename_legacy_role",
    "session_counts",
]

Conn = psycopg.AsyncConnection[Any]


async def ensure_tenant_database(
    conn: Conn,
    db: TenantDatabase,
    *,
    admin: ConnInfo,
    owner_password: str,
    service_password: str | None,
    limits: RoleLimits,
    reserved_slots: bool,
    where: str,
    timeout: int,
) -> bool:
    """Create (or finish creating, or bring to this layout) the tenant's roles and
    database; idempotent. ``conn`` is the server's superuser (``admin``) session.

    Returns whether the service role may use the server's reserved connection slots
    (False where the admin may not grant ``pg_use_reserved_connections``).
    """
    reserved = False
    # Both roles in one transaction: one commit (one fsync) instead of a dozen.
    async with conn.transaction():
        await _ensure_role(conn, db, db.owner, owner_password, where=where)
        await apply_limits(conn, db.owner, limits)
        owner = sql.Identifier(db.owner)
        # Its own objects go in its own schema: first on its path (it may change that
        # for its own sessions -- they are the only ones it changes).
        await conn.execute(
            sql.SQL("ALTER ROLE {} SET search_path = {}, public").format(
                owner, sql.Identifier(TENANT_SCHEMA)
            )
        )
        if db.service is not None:
            assert service_password is not None
            await _ensure_role(conn, db, db.service, service_password, where=where)
            service = sql.Identifier(db.service)
            # Membership, not acting as it: the service role may end the tenant's
            # sessions and read what it made; what the service role creates is its own.
            await conn.execute(sql.SQL("GRANT {} TO {}").format(owner, service))
            await conn.execute(sql.SQL("ALTER ROLE {} RESET role").format(service))
            if reserved_slots:
                reserved = await _grant_reserved_slots(conn, db.service)
    existed = await _ensure_database(conn, db, where=where)
    if existed and db.service is not None:
        # Made by an older tenantvec (or an interrupted attempt): take over what the
        # control plane relies on, inside the database.
        async with connect(admin.with_(dbname=db.database), where=where, timeout=timeout) as inside:
            await adopt_contents(inside, db, where=where)
    return reserved


async def apply_limits(conn: Conn, owner_role: str, limits: RoleLimits) -> None:
    """Give a tenant's owner role its connection limit and default timeouts."""
    owner = sql.Identifier(owner_role)
    await conn.execute(
        sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
            owner, sql.Literal(limits.connection_limit)
        )
    )
    for name, value in limits.role_settings().items():
        await conn.execute(
            sql.SQL("ALTER ROLE {} SET {} = {}").format(
                owner, sql.Identifier(name), sql.Literal(value)
            )
        )


async def rename_legacy_database(
    conn: Conn, old: TenantDatabase, target: str, *, where: str
) -> None:
    """Rename a tenant's database (named after its id) to ``target``.

    Only if it still has its old name and carries the tenant's marker, so running it
    again after an interruption is harmless. The database is closed to connections
    while it is renamed (a rename needs it empty) and reopened as it was.
    """
    facts = await _database_facts(conn, old.database)
    if facts is not None and await _database_facts(conn, target) is None:
        owner, comment = facts
        if not (old.owns(comment) or (comment is None and owner == old.owner)):
            raise ProvisioningError(
                f"database {old.database!r} on {where} does not carry tenant "
                f"{old.tenant_id!r}'s marker; not renaming it"
            )
        cur = await conn.execute(
            "SELECT datallowconn FROM pg_database WHERE datname = %s", (old.database,)
        )
        row = await cur.fetchone()
        allowed = bool(row and row[0])
        ident = sql.Identifier(old.database)
        await conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident))
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (old.database,),
        )
        await conn.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident, sql.Identifier(target))
        )
        if allowed:
            await conn.execute(
                sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(target))
            )


async def rename_legacy_role(conn: Conn, old: TenantDatabase, target: str, *, where: str) -> None:
    """Rename a tenant's owner role (named after its id) to ``target``, if not done yet."""
    exists, comment = await _role_facts(conn, old.owner)
    if exists and not (await _role_facts(conn, target))[0]:
        if not old.owns(comment):
            raise ProvisioningError(
                f"role {old.owner!r} on {where} does not carry tenant {old.tenant_id!r}'s "
                "marker; not renaming it"
            )
        # SCRAM verifiers do not depend on the role name: the password stays valid.
        await conn.execute(
            sql.SQL("ALTER ROLE {} RENAME TO {}").format(
                sql.Identifier(old.owner), sql.Identifier(target)
            )
        )


async def drop_tenant_database(conn: Conn, db: TenantDatabase, *, where: str) -> None:
    """Drop the tenant's database and roles -- only those carrying its marker.

    A killed create can leave its ``CREATE DATABASE`` still running on the server: the
    database is not there when we look, and ``DROP ROLE`` then waits for that statement
    (it locks the owner role) and fails once it commits, the new database depending on
    the role. So a role that something still depends on sends us back to look again.
    """
    for attempt in range(_DROP_ATTEMPTS):
        await _drop_marked_database(conn, db, where=where)
        try:
            await _drop_marked_roles(conn, db, where=where)
            return
        except psycopg.errors.DependentObjectsStillExist as exc:
            if attempt + 1 == _DROP_ATTEMPTS:
                raise ProvisioningError(
                    f"the roles of tenant {db.tenant_id!r} on {where} still own objects "
                    f"outside its database ({exc.diag.message_detail or exc}); drop or "
                    "reassign those, then delete the tenant again"
                ) from None


_DROP_ATTEMPTS = 3


async def _drop_marked_database(conn: Conn, db: TenantDatabase, *, where: str) -> None:
    facts = await _database_facts(conn, db.database)
    if facts is None:
        return
    if not await _is_ours(conn, db, facts):
        raise ProvisioningError(
            f"database {db.database!r} on {where} does not carry tenant "
            f"{db.tenant_id!r}'s marker; refusing to drop it"
        )
    # WITH (FORCE) terminates the tenant's sessions first (Postgres 13+).
    await conn.execute(
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db.database))
    )


async def _drop_marked_roles(conn: Conn, db: TenantDatabase, *, where: str) -> None:
    async with conn.transaction():  # both roles, one commit
        # Two droppers at once (a reconcile and the process it thought dead) would race
        # in DROP ROLE ("could not find tuple for role"): one at a time, the second
        # finding nothing left to drop.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (db.owner,))
        for role in (db.service, db.owner):
            if role is None:
                continue
            exists, comment = await _role_facts(conn, role)
            if not exists:
                continue
            if not db.owns(comment):
                raise ProvisioningError(
                    f"role {role!r} on {where} does not carry tenant {db.tenant_id!r}'s "
                    "marker; refusing to drop it"
                )
            await conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


async def provision_own_server(
    admin: ConnInfo, checkpoint: Checkpoint, *, where: str, timeout: int
) -> None:
    """On a server of the tenant's own (instance, container) reached as ``admin``: the
    template, the tenant's roles (with the limits its placement records) and its database.

    The DSNs are recorded (with new passwords) before the roles are made, so a create
    that dies in between is resumed with the passwords the catalog holds.
    """
    recorded = DatabasePlacement.of(checkpoint.placement)
    if checkpoint.conninfo is None:
        database, service = new_names()
        await checkpoint.record(
            recorded.replace(database=database, role=database, service_role=service),
            conninfo=admin.with_(user=database, dbname=database, password=new_password()),
            service_conninfo=admin.with_(user=service, dbname=database, password=new_password()),
        )
    elif checkpoint.service_conninfo is None:
        # Made before service roles (named after its id, on a server of its own, where
        # no other tenant can see the name): keep its names, add the service role.
        owner = checkpoint.conninfo
        service = f"{owner.user}{SERVICE_SUFFIX}"
        await checkpoint.record(
            recorded.replace(service_role=service),
            service_conninfo=owner.with_(user=service, password=new_password()),
        )
    conninfo, service_conninfo = checkpoint.conninfo, checkpoint.service_conninfo
    assert conninfo is not None and conninfo.password is not None
    assert service_conninfo is not None and service_conninfo.password is not None
    db = TenantDatabase.of(checkpoint.tenant, checkpoint.catalog_id)
    async with connect(admin, where=where, timeout=timeout) as conn:
        await ensure_template(conn, admin, where=where, timeout=timeout)
        await ensure_tenant_database(
            conn,
            db,
            admin=admin,
            timeout=timeout,
            owner_password=conninfo.password,
            service_password=service_conninfo.password,
            limits=checkpoint.tenant.where.limits,
            # The server is the tenant's alone: the owner's connection limit already
            # leaves the rest to the service role.
            reserved_slots=False,
            where=where,
        )
    recorded = DatabasePlacement.of(checkpoint.placement)
    if recorded.layout != LAYOUT:
        await checkpoint.record(recorded.replace(layout=LAYOUT))


async def session_counts(conn: Conn, database: str) -> tuple[int, int]:
    """Sessions in ``database``: all of them, and those of clients other than tenantvec.

    The second is what scale to zero must respect: a client connected with the tenant's
    DSN directly (a CI job, psql) is in use even though no request reached the router.
    """
    cur = await conn.execute(
        """
        SELECT count(*), count(*) FILTER (WHERE application_name <> ALL(%s))
        FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'
        """,
        ([ROUTER_APPLICATION, CONTROLPLANE_APPLICATION], database),
    )
    row = await cur.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def _ensure_role(
    conn: Conn, db: TenantDatabase, role: str, password: str, *, where: str
) -> None:
    """Create a login role of the tenant's, or give an existing one of ours ``password``."""
    verifier = await _scram_verifier(conn, role, password)
    ident = sql.Identifier(role)
    exists, comment = await _role_facts(conn, role)
    if not exists:
        try:
            async with conn.transaction():
                await conn.execute(
                    sql.SQL(
                        "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT "
                        "NOREPLICATION NOBYPASSRLS PASSWORD {}"
                    ).format(ident, sql.Literal(verifier))
                )
                await conn.execute(
                    sql.SQL("COMMENT ON ROLE {} IS {}").format(ident, sql.Literal(db.marker))
                )
            return
        except psycopg.errors.DuplicateObject:
            exists, comment = await _role_facts(conn, role)  # made by a racing attempt
        except psycopg.errors.UniqueViolation:
            raise _still_being_made("role", role, where) from None
    if not db.owns(comment):
        raise ProvisioningError(
            f"role {role!r} already exists on {where} and does not belong to tenant "
            f"{db.tenant_id!r}; refusing to touch it"
        )
    # Resuming a create: make sure the role has the password the catalog holds.
    await conn.execute(
        sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(verifier))
    )
    if comment != db.marker:
        await conn.execute(
            sql.SQL("COMMENT ON ROLE {} IS {}").format(ident, sql.Literal(db.marker))
        )


# SCRAM's PBKDF2 stretching (4,096 rounds by default) protects guessable passwords; a
# tenant role's is 192 random bits, out of reach of any guessing, so the stretching only
# costs every connection ~4 ms of CPU on each side. One round, as Postgres 16+ allows.
_SCRAM_ITERATIONS = 1


async def _scram_verifier(conn: Conn, role: str, password: str) -> str:
    """The role's SCRAM-SHA-256 verifier, computed here.

    The verifier is sent instead of the password: the plaintext never reaches the
    server, so no statement log can capture it. libpq computes it with the server's
    ``scram_iterations`` (reported to the client when set), lowered for the call.
    """
    lowered = conn.info.server_version >= 160000
    if lowered:
        await conn.execute(f"SET scram_iterations = {_SCRAM_ITERATIONS}")
    try:
        return conn.pgconn.encrypt_password(
            password.encode(), role.encode(), b"scram-sha-256"
        ).decode()
    finally:
        if lowered:
            await conn.execute("RESET scram_iterations")


async def _ensure_database(conn: Conn, db: TenantDatabase, *, where: str) -> bool:
    """Create the tenant's database (owned by its service role) or check that the one
    there is the tenant's; close it to every other role. Whether it was already there."""
    ident = sql.Identifier(db.database)
    owner_role = db.service or db.owner
    facts = await _database_facts(conn, db.database)
    existed = facts is not None
    if facts is None:
        try:
            await conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {} STRATEGY wal_log").format(
                    ident, sql.Identifier(owner_role), sql.Identifier(TEMPLATE_DB)
                )
            )
        except psycopg.errors.DuplicateDatabase:
            facts = await _database_facts(conn, db.database)
            existed = True
        except psycopg.errors.UniqueViolation:
            raise _still_being_made("database", db.database, where) from None
    if facts is not None and not await _is_ours(conn, db, facts):
        raise ProvisioningError(
            f"database {db.database!r} already exists on {where} and does not belong "
            f"to tenant {db.tenant_id!r}; refusing to touch it"
        )
    async with conn.transaction():
        if facts is not None and facts[0] != owner_role:
            await conn.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(ident, sql.Identifier(owner_role))
            )
            # Whatever its old owner (the tenant's role) set on it -- a search_path, a
            # lifted write pause, its own timeouts -- is not the control plane's.
            await conn.execute(sql.SQL("ALTER DATABASE {} RESET ALL").format(ident))
        await conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(db.marker))
        )
        # Closed to every role but the tenant's two (an older owner may have opened it).
        cur = await conn.execute(
            """
            SELECT DISTINCT acl.grantee
            FROM pg_database, aclexplode(datacl) AS acl
            WHERE datname = %s
            """,
            (db.database,),
        )
        for (grantee,) in await cur.fetchall():
            name = await _role_name(conn, int(grantee))
            if name not in (db.owner, db.service):
                target = sql.SQL("PUBLIC") if name is None else sql.Identifier(name)
                await conn.execute(
                    sql.SQL("REVOKE ALL ON DATABASE {} FROM {} CASCADE").format(ident, target)
                )
        await conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident))
        if db.service is not None:
            await conn.execute(
                sql.SQL("GRANT CONNECT, TEMPORARY, CREATE ON DATABASE {} TO {}").format(
                    ident, sql.Identifier(db.owner)
                )
            )
    return existed


async def _role_name(conn: Conn, oid: int) -> str | None:
    """The name of role ``oid``; None for PUBLIC (oid 0)."""
    if oid == 0:
        return None
    cur = await conn.execute("SELECT rolname FROM pg_roles WHERE oid = %s", (oid,))
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def _is_ours(conn: Conn, db: TenantDatabase, facts: tuple[str, str | None]) -> bool:
    """Whether the database with ``facts`` (owner, comment) is the tenant's: it carries
    the marker, or it is owned by one of the tenant's roles and that role carries it (a
    crash between CREATE DATABASE and COMMENT leaves no marker yet; and before layout 3,
    the tenant's own role could rewrite the database's comment -- never its role's)."""
    owner, comment = facts
    if db.owns(comment):
        return True
    if owner not in (db.owner, db.service):
        return False
    return db.owns((await _role_facts(conn, owner))[1])


def _still_being_made(kind: str, name: str, where: str) -> BackendUnavailable:
    """Another session is creating the very same object and has not committed yet: the
    session of a create that was killed, its statement still running on the server.
    Transient: once that statement ends, the object is there (or not) to look at."""
    return BackendUnavailable(f"{kind} {name!r} on {where} is being created by another session")


async def _grant_reserved_slots(conn: Conn, role: str) -> bool:
    """Let ``role`` use the reserved connection slots (Postgres 16+), if we may grant it."""
    cur = await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'pg_use_reserved_connections'")
    if await cur.fetchone() is None:
        return False  # Postgres 15: no reserved slots for non-superusers
    try:
        async with conn.transaction():
            await conn.execute(
                sql.SQL("GRANT pg_use_reserved_connections TO {}").format(sql.Identifier(role))
            )
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


async def _database_facts(conn: Conn, database: str) -> tuple[str, str | None] | None:
    """(owner, marker comment) of ``database``, or None if there is none."""
    cur = await conn.execute(
        """
        SELECT pg_get_userbyid(datdba), shobj_description(oid, 'pg_database')
        FROM pg_database WHERE datname = %s
        """,
        (database,),
    )
    row = await cur.fetchone()
    return (str(row[0]), row[1]) if row else None


async def _role_facts(conn: Conn, role: str) -> tuple[bool, str | None]:
    """(exists, marker comment) of ``role``."""
    cur = await conn.execute(
        "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s", (role,)
    )
    row = await cur.fetchone()
    return (row is not None, row[0] if row else None)
