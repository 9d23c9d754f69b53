"""Settings: one object, built explicitly from ``TENANTVEC_*`` environment variables.

Nothing in the library reads the environment itself; the CLI and the API build a
:class:`Settings` once (``Settings.from_env()``) and pass it down. Its settings come in
groups, one per concern -- the catalog, routing, the API, embedding, the embedded
server, each backend (``settings.neon.api_key``) -- beside a few that concern every part
(where tenantvec keeps its files, its secret key, timeouts and the maintenance cadence).
Every field names its variable and says what it does in its metadata; the README's
settings table and ``tenantctl settings`` come from the same place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from controlplane.envparse import (
    parse_duration_seconds,
    parse_positive_float,
    parse_positive_int,
)
from controlplane.errors import ConfigurationError
from controlplane.inputs import K_CEILING
from controlplane.memory import parse_pg_size
from controlplane.settings._api import ApiSettings
from controlplane.settings._catalog import CatalogSettings
from controlplane.settings._docker import DockerSettings
from controlplane.settings._embedded import EmbeddedServerSettings
from controlplane.settings._embedding import EmbeddingSettings
from controlplane.settings._fields import SettingDoc, SettingsGroup, group, setting
from controlplane.settings._instance import InstanceSettings
from controlplane.settings._neon import NeonSettings
from controlplane.settings._routing import RoutingSettings
from controlplane.tiers import Tier

__all__ = [
    "ApiSettings",
    "CatalogSettings",
    "DockerSettings",
    "EmbeddedServerSettings",
    "EmbeddingSettings",
    "InstanceSettings",
    "NeonSettings",
    "RoutingSettings",
    "SettingDoc",
    "Settings",
    "default_home",
    "setting_docs",
]


def default_home() -> Path:
    """Where the embedded server and local secrets live when ``TENANTVEC_HOME`` is unset.

    As root, the server runs as an unprivileged user that must be able to reach its data
    directory; a root user's home (mode 0700) is not reachable, so root gets the
    conventional system location instead.
    """
    if os.geteuid() == 0:
        return Path("/var/lib/tenantvec")
    return Path(platformdirs.user_data_dir("tenantvec", appauthor=False))


@dataclass(frozen=True, kw_only=True)
class Settings(SettingsGroup):
    """Every knob of the control plane. Build it with :meth:`from_env` or directly
    (``Settings(home=..., neon=NeonSettings(api_key=...))``)."""

    concern = "every part of tenantvec"

    home: Path = setting(
        "TENANTVEC_HOME",
        "Data directory: the embedded server, its superuser password and the local secret "
        "key. Default: the user's data dir (/var/lib/tenantvec when run as root).",
        default_factory=default_home,
        parse=lambda raw: Path(raw).expanduser(),
    )
    secret_key: str | None = setting(
        "TENANTVEC_SECRET_KEY",
        "Fernet key(s) that encrypt DSNs in the catalog; several, comma-separated, to "
        "rotate (the first encrypts). Default: a key file generated under TENANTVEC_HOME. "
        "Every process sharing a catalog needs the same key.",
        secret=True,
    )
    connect_timeout: int = setting(
        "TENANTVEC_CONNECT_TIMEOUT",
        "Seconds to wait for a Postgres connection before calling the server unreachable.",
        default=5,
        parse=parse_positive_int,
        positive=True,
    )
    retry_seconds: float = setting(
        "TENANTVEC_RETRY_SECONDS",
        "How long a provisioning step retries transient errors (unreachable server, lock "
        "timeouts) before the tenant is marked failed.",
        default=20.0,
        parse=parse_positive_float,
        positive=True,
    )
    migrate_concurrency: int = setting(
        "TENANTVEC_MIGRATE_CONCURRENCY",
        "How many tenants 'migrate --all' upgrades at once.",
        default=8,
        parse=parse_positive_int,
        positive=True,
    )
    index_build_memory: str = setting(
        "TENANTVEC_INDEX_BUILD_MEMORY",
        "maintenance_work_mem of the sessions that build a tenant's whole vector index at "
        "once (restore, move, set-index), e.g. 1GB. An HNSW graph that does not fit is "
        "built many times slower; each build in progress may use this much.",
        default="512MB",
        parse=parse_pg_size,
    )
    restore_max_expansion: int = setting(
        "TENANTVEC_RESTORE_MAX_EXPANSION",
        "How many times its own size a backup file may grow to when restored (rows, "
        "tables, indexes, before the vector index is built), beyond the empty tenant's "
        "size: a file that claims more is refused as backup_invalid -- so a small crafted "
        "file cannot fill a server.",
        default=100,
        parse=parse_positive_int,
    )
    restore_own_objects_seconds: float = setting(
        "TENANTVEC_RESTORE_OWN_OBJECTS_SECONDS",
        "Longest a restore (or move) may spend re-creating what the tenant made itself "
        "through its own DSN (its tables, views, functions and their rows, run as the "
        "tenant's own role); past it the restore is refused as backup_invalid.",
        default=3600.0,
        parse=parse_positive_float,
    )
    default_tier: str = setting(
        "TENANTVEC_TIER",
        "Tier of tenants created without --tier: small, medium or large. It sets the "
        "connection limit and statement timeouts of every tenant's role and the size of "
        "an instance or docker tenant's server (docs/operations.md, docs/instances.md).",
        default="small",
        aliases=("TENANTVEC_INSTANCE_TIER",),
    )
    suspend_after: float | None = setting(
        "TENANTVEC_SUSPEND_AFTER",
        "Suspend tenants idle (no request) this long, e.g. 15m; their first request "
        "resumes them. Default: off.",
        parse=parse_duration_seconds,
    )
    supervise_seconds: float = setting(
        "TENANTVEC_SUPERVISE_SECONDS",
        "How often the API checks that every ready instance tenant's server runs, and "
        "restarts one that died.",
        default=10.0,
        parse=parse_positive_float,
        positive=True,
    )
    limits_seconds: float = setting(
        "TENANTVEC_LIMITS_SECONDS",
        "How often the API ends what tenants' own sessions on shared servers do beyond "
        "their limits -- a statement past its statement timeout is cancelled, a session "
        "idle in a transaction past its idle timeout is ended -- whatever timeouts those "
        "sessions set for themselves.",
        default=5.0,
        parse=parse_positive_float,
        positive=True,
    )
    max_k: int = setting(
        "TENANTVEC_MAX_K",
        "Most hits one search may ask for (k), through the API, the Python clients and "
        "the library alike; up to 10000. A hybrid search fuses up to 4 k candidates of "
        "each ranking, so its cost grows with k.",
        default=1000,
        parse=parse_positive_int,
        positive=True,
    )
    recall_seconds: float = setting(
        "TENANTVEC_RECALL_SECONDS",
        "How often the API measures one tenant's recall on samples of its own chunks and "
        "sets the ef_search (HNSW) or probes (IVFFlat) that meets its recall target: a "
        "tenant whose index, target or size (by a fifth) changed since it was last "
        "measured. Each measurement is bounded to ~1-2 s of one core.",
        default=60.0,
        parse=parse_positive_float,
        positive=True,
    )
    failpoints: frozenset[str] = setting(
        "TENANTVEC_FAILPOINTS",
        "Comma-separated failpoints at which the process exits abruptly, as if killed "
        "(crash-recovery tests; see docs/operations.md). Never set in production.",
        default=frozenset(),
        parse=lambda raw: frozenset(p.strip() for p in raw.split(",") if p.strip()),
    )

    catalog: CatalogSettings = group(CatalogSettings)
    embedded: EmbeddedServerSettings = group(EmbeddedServerSettings)
    routing: RoutingSettings = group(RoutingSettings)
    api: ApiSettings = group(ApiSettings)
    embedding: EmbeddingSettings = group(EmbeddingSettings)
    instance: InstanceSettings = group(InstanceSettings)
    docker: DockerSettings = group(DockerSettings)
    neon: NeonSettings = group(NeonSettings)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.suspend_after is not None and self.suspend_after <= 0:
            raise ConfigurationError("TENANTVEC_SUSPEND_AFTER must be positive (or off)")
        if self.max_k > K_CEILING:
            raise ConfigurationError(f"TENANTVEC_MAX_K must be at most {K_CEILING}")
        if self.default_tier not in set(Tier):
            tiers = ", ".join(Tier)
            raise ConfigurationError(f"TENANTVEC_TIER must be one of {tiers}")

    @property
    def scratch_root(self) -> Path:
        """Where backups and restores keep their temporary files (see controlplane.scratch)."""
        return self.home / "scratch"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); ``overrides`` (fields
        and groups by name) win."""
        return super().from_env(os.environ if environ is None else environ, **overrides)


def setting_docs() -> list[SettingDoc]:
    """The documented settings, in declaration order (for docs and ``tenantctl settings``)."""
    return list(Settings.docs())
