"""Process endpoints: liveness, readiness, metrics. No authentication."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.response import Response as LitestarResponse
from prometheus_client import CONTENT_TYPE_LATEST

from controlplane.api import examples as ex
from controlplane.api.state import ApiState
from controlplane.errors import TenantvecError

__all__ = ["healthz", "metrics", "readyz"]


@get(
    "/healthz",
    operation_id="healthz",
    summary="The process is up",
    tags=["system"],
    responses=ex.ok(dict[str, Any], {"status": "ok"}, "Always, while the process runs.", errors=()),
)
async def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@get(
    "/readyz",
    operation_id="readyz",
    summary="The catalog is reachable (or was, within the grace)",
    description="200 `ready` while the catalog answers; 200 `degraded` while it does not but "
    "routes and keys verified before still serve (TENANTVEC_CATALOG_GRACE_SECONDS); 503 after.",
    tags=["system"],
    responses=ex.ok(dict[str, Any], {"status": "ready"}, "Ready to route requests.", errors=()),
)
async def readyz(api: ApiState) -> Response[dict[str, Any]]:
    grace = api.router.grace
    try:
        await api.plane.catalog.ping()
    except TenantvecError as exc:
        grace.failed()
        if grace.serving():
            # Tenants verified before the outage are still served: stay in rotation.
            return LitestarResponse({"status": "degraded", "detail": str(exc)})
        return LitestarResponse(
            {"status": "unavailable", "detail": str(exc)},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    grace.answered()
    return LitestarResponse({"status": "ready"})


@get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics",
    tags=["system"],
    media_type=CONTENT_TYPE_LATEST,
    responses=ex.ok(str, "tenantvec_open_pools 3.0\n", "Prometheus text format.", errors=()),
)
async def metrics(api: ApiState) -> Response[bytes]:
    return LitestarResponse(api.metrics.render(), media_type=CONTENT_TYPE_LATEST)
