"""Settings of the neon backend (a Neon project or branch per tenant)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from controlplane.envparse import (
    parse_bool,
    parse_positive_float,
    parse_positive_int,
)
from controlplane.errors import ConfigurationError
from controlplane.settings._fields import SettingsGroup, setting

__all__ = ["NeonSettings"]

_PREFIX_RE = re.compile(r"[a-z][a-z0-9-]{0,19}")  # whole string


@dataclass(frozen=True, kw_only=True)
class NeonSettings(SettingsGroup):
    concern = "the neon backend"

    api_key: str | None = setting(
        "TENANTVEC_NEON_API_KEY",
        "Neon API key for the neon backend (NEON_API_KEY, the name Neon's own tools read, "
        "is used when this is unset). An organization key can only manage that org.",
        secret=True,
        aliases=("NEON_API_KEY",),
    )
    api_url: str = setting(
        "TENANTVEC_NEON_API_URL",
        "Base URL of the Neon API v2 (a trailing '/' is added when missing).",
        default="https://console.neon.tech/api/v2/",
        url=True,
    )
    org_id: str | None = setting(
        "TENANTVEC_NEON_ORG_ID",
        "Neon organization that owns tenant projects (project mode). Required by Neon when "
        "the API key is a personal key with access to several organizations.",
    )
    mode: str = setting(
        "TENANTVEC_NEON_MODE",
        "How the neon backend gives each tenant its Postgres: 'project' (a Neon project "
        "per tenant, in the tenant's region) or 'branch' (a branch with its own compute in "
        "TENANTVEC_NEON_TEMPLATE_PROJECT).",
        default="project",
    )
    region: str = setting(
        "TENANTVEC_NEON_REGION",
        "Neon region of tenants created without --region (project mode).",
        default="aws-us-east-2",
    )
    pg_version: int = setting(
        "TENANTVEC_NEON_PG_VERSION",
        "Postgres major version of tenant projects (project mode).",
        default=17,
        parse=parse_positive_int,
        positive=True,
    )
    template_project: str | None = setting(
        "TENANTVEC_NEON_TEMPLATE_PROJECT",
        "Project id whose branches are tenants (branch mode).",
    )
    template_branch: str | None = setting(
        "TENANTVEC_NEON_TEMPLATE_BRANCH",
        "Branch id tenant branches are cut from (branch mode). Default: the template "
        "project's default branch.",
    )
    name_prefix: str = setting(
        "TENANTVEC_NEON_NAME_PREFIX",
        "Prefix of the Neon projects and branches this control plane makes, followed by "
        "the tenant id. Reconcile reports prefixed ones the catalog does not know, so give "
        "each control plane sharing a Neon account its own prefix.",
        default="tenantvec-",
    )
    pooled: bool = setting(
        "TENANTVEC_NEON_POOLED",
        "Route Neon tenants through Neon's PgBouncer (the -pooler host) instead of direct "
        "connections.",
        default=False,
        parse=parse_bool,
    )
    requests_per_minute: int = setting(
        "TENANTVEC_NEON_REQUESTS_PER_MINUTE",
        "Most Neon API requests this process sends in any 60 s (Neon allows 700 per "
        "account; lower it when several processes share the key).",
        default=700,
        parse=parse_positive_int,
        positive=True,
    )
    route_requests_per_second: int = setting(
        "TENANTVEC_NEON_ROUTE_REQUESTS_PER_SECOND",
        "Most requests to one Neon API route in any second (Neon allows bursts of 40).",
        default=40,
        parse=parse_positive_int,
        positive=True,
    )
    request_timeout: float = setting(
        "TENANTVEC_NEON_REQUEST_TIMEOUT",
        "Seconds one Neon API request may take before it counts as failed (the step is "
        "then retried).",
        default=30.0,
        parse=parse_positive_float,
        positive=True,
    )
    retry_seconds: float = setting(
        "TENANTVEC_NEON_RETRY_SECONDS",
        "How long a step of a Neon tenant (create, delete, suspend...) is retried while Neon "
        "refuses for now (423 Locked, 429, 503) or cannot be reached; waits on Neon's "
        "operations end then too.",
        default=120.0,
        parse=parse_positive_float,
        positive=True,
    )
    operation_timeout: float = setting(
        "TENANTVEC_NEON_OPERATION_TIMEOUT",
        "How long to wait for Neon's operations (create, start, suspend...) to finish.",
        default=300.0,
        parse=parse_positive_float,
        positive=True,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in ("project", "branch"):
            raise ConfigurationError("TENANTVEC_NEON_MODE must be 'project' or 'branch'")
        if not _PREFIX_RE.fullmatch(self.name_prefix):
            raise ConfigurationError(
                "TENANTVEC_NEON_NAME_PREFIX must be 1-20 lowercase letters, digits or '-', "
                "starting with a letter"
            )
