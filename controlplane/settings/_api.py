"""Settings of the HTTP API: its admin token, request bodies, ingestion jobs."""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.envparse import (
    parse_non_negative_int,
    parse_positive_float,
    parse_positive_int,
)
from controlplane.errors import ConfigurationError
from controlplane.settings._fields import SettingsGroup, setting

__all__ = ["ApiSettings"]


@dataclass(frozen=True, kw_only=True)
class ApiSettings(SettingsGroup):
    concern = "the HTTP API: its token, bodies, ingestion jobs"

    admin_token: str | None = setting(
        "TENANTVEC_ADMIN_TOKEN",
        "Bearer token for the API's admin endpoints. Default: a token generated at first "
        "start into TENANTVEC_HOME/admin-token (mode 0600).",
        secret=True,
    )
    max_body_bytes: int = setting(
        "TENANTVEC_MAX_BODY_BYTES",
        "Largest request body the API accepts (bytes); larger ones get 413.",
        default=32 * 1024 * 1024,
        parse=parse_positive_int,
        positive=True,
    )
    request_timeout_seconds: float = setting(
        "TENANTVEC_REQUEST_TIMEOUT_SECONDS",
        "The longest pause the API allows in a request's body (its headers come within "
        "10 s); the body must also arrive whole within this plus its size at 64 kB/s. A "
        "slower client gets 408 and its connection is closed.",
        default=60.0,
        parse=parse_positive_float,
    )
    max_restore_bytes: int = setting(
        "TENANTVEC_MAX_RESTORE_BYTES",
        "Largest backup file POST /v1/restores accepts (bytes); larger ones get 413. "
        "Restore bigger ones with 'tenantctl tenants restore FILE'.",
        default=8 * 1024**3,
        parse=parse_positive_int,
        positive=True,
    )
    inline_ingest_documents: int = setting(
        "TENANTVEC_INLINE_INGEST_DOCUMENTS",
        "Text documents a PUT .../documents embeds while the caller waits; larger batches "
        "(or ?async=true) become ingestion jobs answered with 202.",
        default=32,
        parse=parse_positive_int,
        positive=True,
    )
    job_workers: int = setting(
        "TENANTVEC_JOB_WORKERS",
        "Ingestion jobs one API process runs at once; 0 runs none there (for API "
        "processes that only serve, beside others that work through the jobs).",
        default=2,
        parse=parse_non_negative_int,
    )
    job_lease_seconds: float = setting(
        "TENANTVEC_JOB_LEASE_SECONDS",
        "An API process holding an ingestion job renews its claim this often x3; a job "
        "whose holder died is taken over after this long.",
        default=30.0,
        parse=parse_positive_float,
        positive=True,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.job_workers < 0:
            raise ConfigurationError("TENANTVEC_JOB_WORKERS must be 0 or more")
