"""What the API's handlers share, opened in the app's lifespan and closed with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from litestar.di import NamedDependency

from controlplane.api._metrics import ApiMetrics
from controlplane.keys import KeyVerifier
from controlplane.plane import ControlPlane
from controlplane.routing import TenantRouter

__all__ = ["ApiDep", "ApiState"]


@dataclass(frozen=True)
class ApiState:
    plane: ControlPlane
    router: TenantRouter
    verifier: KeyVerifier
    admin_token: str
    metrics: ApiMetrics


# How a handler asks for it (by name: the app provides "api").
ApiDep: TypeAlias = NamedDependency[ApiState]
