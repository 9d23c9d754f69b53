"""Process endpoints: liveness, readiness, metrics. No authentication."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.openapi import ResponseSpec
from litestar.response import Response as LitestarResponse

from controlplane.api import _examples as ex
from controlplane.api._state import ApiDep
from controlplane.errors import TenantvecError

__all__ = ["healthz", "metrics", "readyz"]

# Prometheus's text format; Litestar adds the charset.
_PROMETHEUS = "text/plain; version=0.0.4"


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
    responses={
        **ex.ok(dict[str, Any], {"status": "ready"}, "Ready to route requests.", errors=()),
        503: ResponseSpec(
            data_container=dict[str, Any],
            description="The catalog does not answer, and the grace is over (or off).",
            examples=ex.example({"status": "unavailable", "detail": "the catalog ..."}),
            generate_examples=False,
        ),
    },
)
async def readyz(api: ApiDep) -> Response[dict[str, Any]]:
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
    media_type=_PROMETHEUS,
    responses={
        200: ResponseSpec(
            data_container=str,
            description="Prometheus text format.",
            media_type=_PROMETHEUS,
            examples=ex.example("tenantvec_open_pools 3.0\n"),
            generate_examples=False,
        )
    },
)
async def metrics(api: ApiDep) -> Response[bytes]:
    return LitestarResponse(api.metrics.render(), media_type=_PROMETHEUS)
