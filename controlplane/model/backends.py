"""The kinds of backend a tenant can live on, and the facts about each that the layers
above a backend read (routing, the lifecycle) without building one."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

__all__ = ["BackendKind", "BackendTraits"]


class BackendKind(StrEnum):
    POSTGRES = "postgres"  # a database and roles on a registered Postgres server
    INSTANCE = "instance"  # a Postgres server of its own, run by tenantvec
    DOCKER = "docker"  # a pgvector container
    NEON = "neon"  # a Neon project, or a branch of a template project


class BackendTraits(Protocol):
    """What a backend is, as opposed to what it does (``backends.base.Backend``)."""

    kind: BackendKind
    # Whether tenants are placed on registered servers (the catalog's servers table).
    uses_servers: bool
    # Whether tenants are placed in a region the caller names (--region).
    regional: bool
    # Whether each tenant gets a server of its own, sized by a ComputeSpec (--tier).
    sized: bool
    # Whether tenantvec runs the tenant's server itself, and so must notice when it
    # dies and restart it (see lifecycle.supervise).
    supervises: bool
    # Whether connections to its tenants may set settings at start-up (libpq
    # ``options``): not through a pooler such as Neon's PgBouncer, which refuses them.
    session_options: bool
    # How long the lifecycle retries one of its steps on transient errors (the one
    # retry layer around backend steps): TENANTVEC_RETRY_SECONDS, or Neon's longer one.
    retry_seconds: float
