"""Where a tenant lives: each backend's record of it, typed, and what the layers above
the backends read of it.

A tenant's catalog ``placement`` holds its backend's own record -- one type per backend
(:class:`PostgresPlacement`, :class:`InstancePlacement`, :class:`DockerPlacement`,
:class:`NeonPlacement`), which the backend reads with ``of`` and writes whole through
its checkpoint -- beside what the model itself records there (the tenant's role limits,
a deleted tenant's erasure: :func:`with_limits`, :func:`with_erasure`). What routing,
the lifecycle and doctor need of it -- whose connection budget the tenant counts
against, how many connections its own server takes, its role limits, its layout -- is
read here, once, into a typed :class:`Placement` (``Tenant.where``); nothing reads the
dict's keys but this module (tests/test_conventions.py keeps it so). A move's second
copy is a :class:`TenantCopy` of its own, beside the placement; where a move stands is
the tenant's state (model/records.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import msgspec

from controlplane.model.erasure import Erasure
from controlplane.model.limits import RoleLimits
from controlplane.model.views import Location

__all__ = [
    "DEFAULT_OWN_MAX_CONNECTIONS",
    "BackendPlacement",
    "DatabasePlacement",
    "DockerPlacement",
    "InstancePlacement",
    "NeonPlacement",
    "Placement",
    "PostgresPlacement",
    "TenantCopy",
    "with_erasure",
    "with_limits",
]

# An own server's max_connections when its placement does not say (small tier).
DEFAULT_OWN_MAX_CONNECTIONS = 25


class BackendPlacement(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True):
    """A backend's record of where a tenant lives: its own keys of the catalog's
    ``placement`` (the model's -- limits, erasure -- are not its to read or write)."""

    backend: ClassVar[str] = ""

    @classmethod
    def of(cls, placement: Mapping[str, Any]) -> Self:
        """The record as ``placement`` holds it (keys of no field are left out).

        A value of the wrong type (an older version's, a hand edit) reads as unset, as
        if not recorded, rather than making the tenant unreadable: routing, reconcile
        and delete must still reach it.
        """
        data = dict(placement)
        try:
            return msgspec.convert(data, cls, strict=False)
        except msgspec.ValidationError:
            readable = {}
            for name in cls.__struct_fields__:
                try:
                    msgspec.convert({name: data[name]}, cls, strict=False)
                except (KeyError, msgspec.ValidationError):
                    continue
                readable[name] = data[name]
            return msgspec.convert(readable, cls, strict=False)

    def replace(self, **changes: Any) -> Self:
        return msgspec.structs.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """Its keys as the catalog holds them (unset ones left out)."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data

    def merged_into(self, placement: Mapping[str, Any]) -> dict[str, Any]:
        """``placement`` with this record as the backend's keys: a field it leaves unset
        is removed; keys of no field (the model's, older versions') stay."""
        mine = set(self.__struct_fields__)
        kept = {k: v for k, v in placement.items() if k not in mine}
        return {**kept, **self.to_json()}


class DatabasePlacement(BackendPlacement, kw_only=True, omit_defaults=True, frozen=True):
    """A database and roles of tenantvec's layout on a Postgres server (markers.py)."""

    database: str | None = None
    # The tenant's owner role (its own DSN's) and the control plane's service role.
    role: str | None = None
    service_role: str | None = None
    # Which generation of tenantvec's layout it has (opaque names, service role: 2;
    # the service role owning the database: 3). Unrecorded: 1.
    layout: int = 1


class PostgresPlacement(DatabasePlacement, kw_only=True, omit_defaults=True, frozen=True):
    """On a registered server of the postgres backend."""

    backend = "postgres"
    address: str | None = None
    # Whether its service role may use the reserved connection slots (False: the server
    # refused; unset: it may).
    reserved_slots: bool | None = None
    # An upgrade of its layout renaming its database, under way: the name it gets.
    rename_to: str | None = None


class InstancePlacement(DatabasePlacement, kw_only=True, omit_defaults=True, frozen=True):
    """On a Postgres server of its own, run by tenantvec (the instance backend)."""

    backend = "instance"
    instance: str | None = None
    port: int | None = None
    data_dir: str | None = None
    compute: dict[str, Any] = msgspec.field(default_factory=dict)


class DockerPlacement(DatabasePlacement, kw_only=True, omit_defaults=True, frozen=True):
    """In a container of its own (the docker backend)."""

    backend = "docker"
    container: str | None = None
    volume: str | None = None
    image: str | None = None
    port: int | None = None
    compute: dict[str, Any] = msgspec.field(default_factory=dict)


class NeonPlacement(BackendPlacement, kw_only=True, omit_defaults=True, frozen=True):
    """A Neon project of its own, or a branch of the template project (its ``mode``)."""

    backend = "neon"
    mode: str | None = None  # "project" | "branch"; unset: project (made before modes)
    # Its project's or branch's name (the prefix and the tenant id).
    name: str | None = None
    database: str | None = None
    role: str | None = None
    region: str | None = None
    pg_version: int | None = None
    project_id: str | None = None
    branch_id: str | None = None
    endpoint_id: str | None = None
    # Branch mode: the template branch it was cut from.
    parent_id: str | None = None


# Each backend's record, by backend kind.
RECORDS: dict[str, type[BackendPlacement]] = {
    cls.backend: cls
    for cls in (PostgresPlacement, InstancePlacement, DockerPlacement, NeonPlacement)
}


@dataclass(frozen=True)
class Placement:
    backend: str
    # The registered server it lives on (postgres backend), or None.
    server: str | None
    # The name of its server of its own (an instance, a container), or None.
    own_server: str | None
    # Its Neon compute endpoint, or None.
    endpoint: str | None
    # Its own server's max_connections (own servers only).
    own_max_connections: int | None
    limits: RoleLimits
    # Which generation of tenantvec's layout it has (opaque names, service role: 2).
    layout: int
    # postgres backend: whether its service role may use the reserved connection slots
    # (False: the server refused; None: not recorded).
    reserved_slots: bool | None
    # Whether the control plane reaches it as a service role of its own (layout 2), not
    # as the tenant's owner role.
    service_role: bool = False
    # Where it lives, in words: "on server local", "on its own server at 127.0.0.1:26001
    # (small)", "on Neon project p-1 in aws-eu-central-1".
    described: str = ""
    # Its database and owner role on its server (Postgres-based backends).
    database: str | None = None
    role: str | None = None
    # A deleted tenant's erasure: what became of its data, in words (None: not deleted).
    erasure: str | None = None

    @classmethod
    def parse(cls, backend: str, server: str | None, raw: Mapping[str, Any]) -> Placement:
        record = RECORDS.get(backend, DatabasePlacement).of(raw)
        own, compute = None, {}
        if isinstance(record, InstancePlacement | DockerPlacement):
            own = record.instance if isinstance(record, InstancePlacement) else record.container
            compute = record.compute
        database = record if isinstance(record, DatabasePlacement) else None
        neon = record if isinstance(record, NeonPlacement) else None
        named = database or neon  # its database and owner role
        return cls(
            backend=backend,
            server=server,
            own_server=own,
            endpoint=neon.endpoint_id if neon else None,
            own_max_connections=int(compute.get("max_connections", DEFAULT_OWN_MAX_CONNECTIONS))
            if own
            else None,
            limits=RoleLimits.from_json(raw.get("limits")),
            layout=database.layout if database else 1,
            reserved_slots=record.reserved_slots if isinstance(record, PostgresPlacement) else None,
            service_role=bool(database and database.service_role),
            described=_described(record, server),
            database=named.database if named else None,
            role=named.role if named else None,
            erasure=_erasure(raw.get("erasure")),
        )

    @property
    def budget_key(self) -> str:
        """Whose connection budget the tenant's connections count against: the server it
        lives on, its own server, its Neon compute -- or else its backend."""
        return self.server or self.endpoint or self.own_server or self.backend


def with_limits(placement: Mapping[str, Any], limits: RoleLimits) -> dict[str, Any]:
    """``placement`` recording the tenant's role limits (``Placement.limits``)."""
    return {**placement, "limits": limits.to_json()}


def with_erasure(placement: Mapping[str, Any], erasure: Erasure) -> dict[str, Any]:
    """A deleted tenant's ``placement`` recording what became of its data
    (``Placement.erasure``)."""
    return {**placement, "erasure": erasure.to_json()}


def _described(record: BackendPlacement, server: str | None) -> str:
    if server is not None:
        return f"on server {server}"
    if isinstance(record, NeonPlacement):
        mode = record.mode or "project"
        which = record.branch_id if mode == "branch" else record.project_id
        return f"on Neon {mode} {which} in {record.region}"
    if isinstance(record, InstancePlacement | DockerPlacement) and record.port is not None:
        tier = record.compute.get("tier", "?")
        kind = "its own server" if isinstance(record, InstancePlacement) else "its own container"
        return f"on {kind} at 127.0.0.1:{record.port} ({tier})"
    return f"on the {record.backend or 'unknown'} backend"


def _erasure(raw: Any) -> str | None:
    if not isinstance(raw, Mapping):
        return None
    detail = raw.get("detail")
    return str(detail) if detail else None


@dataclass(frozen=True)
class TenantCopy:
    """One copy of a tenant's database: its backend, server and that backend's placement
    record -- the second copy a move keeps (``Tenant.other_copy``), in the catalog's
    ``other_copy`` column."""

    backend: str
    server: str | None
    placement: dict[str, Any]

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> TenantCopy:
        placement = raw.get("placement")
        return cls(
            backend=str(raw["backend"]),
            server=str(raw["server"]) if raw.get("server") is not None else None,
            placement=dict(placement) if isinstance(placement, Mapping) else {},
        )

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "server": self.server, "placement": self.placement}

    @property
    def where(self) -> Placement:
        return Placement.parse(self.backend, self.server, self.placement)

    @property
    def resource_names(self) -> frozenset[str]:
        """The names its placement gives the copy's resources (database, roles, a Neon
        project or branch, an instance or container): how reconcile knows them."""
        return frozenset(str(v) for v in self.placement.values() if not isinstance(v, dict))

    def location(self) -> Location:
        return Location(backend=self.backend, server=self.server)
