"""The caller of one API request, as the authentication guard (``api.auth``) found it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from litestar.di import NamedDependency

__all__ = ["CALLER", "Caller", "CallerDep"]

# Where the guard leaves the caller in the request's scope (the metrics read it too).
CALLER = "tenantvec.caller"


@dataclass(frozen=True)
class Caller:
    tenant_id: str | None  # None: the admin
    # The tenant uid the key was issued for; None for the admin token.
    incarnation: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.tenant_id is None

    @property
    def actor(self) -> str:
        return "api:admin" if self.is_admin else f"api:tenant:{self.tenant_id}"


# How a handler asks for it (by name: the app provides "caller").
CallerDep: TypeAlias = NamedDependency[Caller]
