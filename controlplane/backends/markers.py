"""What tenantvec writes on the objects it makes on a Postgres server: opaque names and
marker comments, and the layout generation a tenant's placement records.

Names are opaque (``tv_`` and 24 random characters) because every role on a server can
read ``pg_database`` and ``pg_roles``. A marker ``tenantvec catalog=<id> uid=<uid>``
names the catalog and the tenant incarnation an object belongs to -- how reconcile knows
what it made and never touches what it did not; tenants made before opaque names carry
``tenantvec tenant=<id>`` until ``tenantctl migrate`` renames them. Parsed whole
(``fullmatch``), never by prefix.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from controlplane.model.placement import DatabasePlacement
from controlplane.model.records import TENANT_ID_RE, Tenant

__all__ = [
    "LAYOUT",
    "MARKER_PREFIX",
    "SERVICE_SUFFIX",
    "TENANT_SCHEMA",
    "Marker",
    "TenantDatabase",
    "new_names",
    "owner_role",
    "parse_marker",
]

# The generation of this layout, recorded in each tenant's placement: 2 = opaque names,
# a service role, limits; 3 = the service role owns the database and tenantvec's tables,
# the tenant's own objects live outside ``public`` (backends/_tenantdb.py). Tenants at an
# older one are upgraded by migrate.
LAYOUT = 3
# The schema a tenant's own objects go in: first on its role's search_path, its own.
TENANT_SCHEMA = "app"
_NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
SERVICE_SUFFIX = "_svc"
_MARKER_RE = re.compile(
    r"tenantvec catalog=([0-9a-f]{16}) uid=([0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})"
)
_LEGACY_MARKER_RE = re.compile(r"tenantvec tenant=(" + TENANT_ID_RE.pattern + ")")
# Marked objects are found with LIKE 'tenantvec %' first, then parsed exactly.
MARKER_PREFIX = "tenantvec "


def new_names() -> tuple[str, str]:
    """A new opaque (database = owner role, service role) pair: 124 random bits."""
    name = "tv_" + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(24))
    return name, name + SERVICE_SUFFIX


@dataclass(frozen=True)
class Marker:
    """What a marker comment says. Exactly one of ``uid`` and ``tenant_id`` is set."""

    catalog_id: str | None
    uid: str | None  # the tenant incarnation (current markers)
    tenant_id: str | None  # the tenant id (markers written before opaque names)


def parse_marker(comment: str | None) -> Marker | None:
    """The marker in ``comment``, or None unless the whole comment is one."""
    if comment is None:
        return None
    if match := _MARKER_RE.fullmatch(comment):
        return Marker(catalog_id=match.group(1), uid=match.group(2), tenant_id=None)
    if match := _LEGACY_MARKER_RE.fullmatch(comment):
        return Marker(catalog_id=None, uid=None, tenant_id=match.group(1))
    return None


def owner_role(tenant: Tenant) -> str:
    """The name of the tenant's owner role, as its placement records it."""
    where = tenant.where
    return where.role or where.database or tenant.id


@dataclass(frozen=True)
class TenantDatabase:
    """One tenant's database and roles on a server, as its catalog placement records them."""

    tenant_id: str
    database: str
    owner: str
    service: str | None  # None: a tenant made before service roles (layout 1)
    marker: str

    @classmethod
    def of(cls, tenant: Tenant, catalog_id: str) -> TenantDatabase:
        recorded = DatabasePlacement.of(tenant.placement)
        database = recorded.database or tenant.id
        return cls(
            tenant_id=tenant.id,
            database=database,
            owner=recorded.role or database,
            service=recorded.service_role or None,
            marker=f"{MARKER_PREFIX}catalog={catalog_id} uid={tenant.uid}",
        )

    def owns(self, comment: str | None) -> bool:
        """Whether ``comment`` marks an object as this tenant's (also the older marker)."""
        return comment == self.marker or comment == f"{MARKER_PREFIX}tenant={self.tenant_id}"
