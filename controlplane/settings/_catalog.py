"""Settings of the catalog database: where it is, and how long routes outlive its outage."""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.dsn import redact
from controlplane.envparse import (
    parse_non_negative_float,
)
from controlplane.settings._fields import SettingsGroup, setting

__all__ = ["CatalogSettings"]


@dataclass(frozen=True, kw_only=True)
class CatalogSettings(SettingsGroup):
    concern = "the catalog database"

    url: str | None = setting(
        "TENANTVEC_CATALOG_URL",
        "Postgres URL of the catalog database. Default: database tenantvec_catalog on the "
        "embedded server.",
        repr=False,
        show=redact,
    )
    grace_seconds: float = setting(
        "TENANTVEC_CATALOG_GRACE_SECONDS",
        "While the catalog database is unreachable, how long tenant routes and API keys "
        "verified before keep serving (0: none). A key revoked just before the outage may "
        "work this long in processes that had not yet seen the revocation.",
        default=300.0,
        parse=parse_non_negative_float,
    )
