"""Garbage collection of throwaway tenants: every live tenant whose ``--ttl`` has run
out is deleted, a few at a time (CI pipelines leave hundreds behind when runs die)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from controlplane.catalog.models import utcnow
from controlplane.context import PlaneContext
from controlplane.errors import InvalidRequest, TenantvecError
from controlplane.lifecycle._fleetwork import for_each_tenant
from controlplane.lifecycle.tenants import delete_tenant
from controlplane.model.records import MOVE_STATES, Tenant, TenantState
from controlplane.model.views import GcView

__all__ = ["GC_CONCURRENCY", "GcReport", "GcResult", "collect_expired", "expired_tenants"]

# Deletes at once: each is mostly waiting on the server (DROP DATABASE, a checkpoint's
# worth of file removal) or on Neon's API, ~160 ms apiece one at a time on 2 cores.
GC_CONCURRENCY = 4
# (A moving one too: its delete drops both copies.)
_EXPIRABLE = [
    TenantState.READY,
    TenantState.SUSPENDED,
    TenantState.FAILED,
    TenantState.PROVISIONING,
    *sorted(MOVE_STATES),
]


@dataclass(frozen=True)
class GcResult:
    tenant: str
    error: str | None  # None: deleted

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class GcReport:
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def view(self) -> GcView:
        return GcView(deleted=list(self.deleted), failed=dict(self.failed))


async def expired_tenants(plane: PlaneContext) -> list[Tenant]:
    """The live tenants whose TTL has run out, as of now."""
    return await plane.catalog.list_tenants(states=_EXPIRABLE, expired_before=utcnow())


async def collect_expired(
    plane: PlaneContext,
    *,
    actor: str,
    concurrency: int = GC_CONCURRENCY,
    on_result: Callable[[GcResult], None] | None = None,
) -> GcReport:
    """Delete every live tenant whose ``--ttl`` has run out, ``concurrency`` at once."""
    if not 1 <= concurrency <= 64:
        raise InvalidRequest("--concurrency must be between 1 and 64")

    async def one(tenant: Tenant) -> GcResult:
        try:
            await delete_tenant(plane, tenant.id, actor=actor)
            return GcResult(tenant.id, None)
        except TenantvecError as exc:
            return GcResult(tenant.id, str(exc))

    results = await for_each_tenant(
        await expired_tenants(plane), one, concurrency=concurrency, on_result=on_result
    )
    report = GcReport()
    for result in results:
        if result.error is None:
            report.deleted.append(result.tenant)
        else:
            report.failed[result.tenant] = result.error
    return report
