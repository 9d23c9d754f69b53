"""The HTTP API: ``create_app(settings)`` builds the ASGI application: the Litestar app
behind the search lane (api/_lane.py), which answers searches on the hot path itself.

The app owns its resources through its lifespan: on start it opens the control plane
(catalog, embedded server if that is where the catalog lives), the tenant router, the
ingestion job runner and the compute keeper (scale to zero, supervision); on shutdown
it hands back the jobs it holds, closes every tenant pool, then the catalog. Handlers
get them through the ``api`` dependency and the caller through ``caller``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from controlplane.api._auth import provide_caller
from controlplane.api._backups import BackupsController
from controlplane.api._chunks import ChunksController
from controlplane.api._data import DataController
from controlplane.api._identity import whoami
from controlplane.api._lane import SearchLane
from controlplane.api._metrics import ApiMetrics, metrics_middleware
from controlplane.api._moves import MovesController
from controlplane.api._problems import exception_handlers
from controlplane.api._state import ApiState
from controlplane.api._system import healthz, metrics, readyz
from controlplane.api._tenants import (
    KeyCreate,
    LimitsChange,
    RecallTune,
    TenantCreate,
    TenantsController,
)
from controlplane.keys import KeyVerifier, load_admin_token
from controlplane.lifecycle.keeper import ComputeKeeper
from controlplane.model.embedder import EmbedderSpec, parse_embedder
from controlplane.plane import ControlPlane
from controlplane.retrieval import ChunkIn, DocumentIn, SearchRequest, UpsertRequest
from controlplane.retrieval.jobs import JobRunner
from controlplane.retrieval.recall import RecallKeeper
from controlplane.routing import TenantRouter
from controlplane.settings import Settings

__all__ = ["create_app", "create_app_from_env", "create_litestar"]

logger = logging.getLogger(__name__)

API_VERSION = "1"

# The bodies the API decodes, by their OpenAPI component names.
REQUEST_STRUCTS: dict[str, type[msgspec.Struct]] = {
    struct.__name__: struct
    for struct in (
        TenantCreate,
        KeyCreate,
        LimitsChange,
        RecallTune,
        UpsertRequest,
        DocumentIn,
        ChunkIn,
        SearchRequest,
    )
}


def create_app(settings: Settings) -> SearchLane:
    """The API as served; its Litestar app (every route, the lifespan, the OpenAPI
    document) is ``.litestar``."""
    return SearchLane(create_litestar(settings), max_body_bytes=settings.api.max_body_bytes)


def create_litestar(settings: Settings) -> Litestar:
    """The Litestar app alone: every route answered by its handler, searches included."""
    admin_token = load_admin_token(settings)  # fail at build time, not first request
    api_metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with ControlPlane.open(settings) as plane, TenantRouter.open(plane) as router:
            api_metrics.watch(router)
            app.state.api = ApiState(
                plane=plane,
                router=router,
                verifier=KeyVerifier(router, ttl=settings.routing.route_ttl_seconds),
                admin_token=admin_token,
                metrics=api_metrics,
            )
            default = parse_embedder(settings.embedding.default)
            await plane.embedders.warm(default if isinstance(default, EmbedderSpec) else None)
            logger.info(
                "API ready: budget %d connections per server, at most %d pools",
                settings.routing.worker_connection_budget,
                settings.routing.max_pools,
            )
            # Ingestion jobs queued by any process (and left by one that died) run here.
            jobs: asyncio.Task[None] | None = None
            if settings.api.job_workers:
                runner = JobRunner(
                    router,
                    lease_seconds=settings.api.job_lease_seconds,
                    concurrency=settings.api.job_workers,
                )
                jobs = asyncio.create_task(runner.run(), name="ingestion-jobs")
            # Idle tenants are suspended and dead tenant servers restarted from here.
            keeper = asyncio.create_task(ComputeKeeper(plane, router).run(), name="compute-keeper")
            # Each tenant's recall measured on its own data, its ef_search set to meet
            # its target (retrieval/recall.py).
            recall = asyncio.create_task(RecallKeeper(plane).run(), name="recall-keeper")
            try:
                yield
            finally:
                for task in (keeper, recall, jobs):
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task

    def provide_api(state: State) -> ApiState:
        api: ApiState = state.api
        return api

    app = Litestar(
        route_handlers=[
            TenantsController,
            BackupsController,
            MovesController,
            DataController,
            ChunksController,
            whoami,
            healthz,
            readyz,
            metrics,
        ],
        lifespan=[lifespan],
        dependencies={
            "api": Provide(provide_api, sync_to_thread=False),
            "caller": Provide(provide_caller, sync_to_thread=False),
        },
        exception_handlers=exception_handlers,
        middleware=[metrics_middleware],
        request_max_body_size=settings.api.max_body_bytes,
        state=State({"metrics": api_metrics}),
        openapi_config=OpenAPIConfig(
            title="tenantvec",
            version=API_VERSION,
            description="Database-per-tenant retrieval on PostgreSQL + pgvector. Admin "
            "endpoints take the admin token; data endpoints take the tenant's key (or the "
            "admin token) as 'Authorization: Bearer <token>'. Errors are "
            "application/problem+json.",
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        ),
        debug=False,
        # Logging belongs to the process (the CLI, uvicorn), not to the app: Litestar's
        # default config would reset levels and print every httpx request.
        logging_config=None,
    )
    _close_request_objects(app)
    return app


def _close_request_objects(app: Litestar) -> None:
    """Describe request bodies exactly as they are decoded: with msgspec's own JSON
    Schema of each (closed objects, every bound kept), not Litestar's rendering of it,
    which loses ``additionalProperties: false`` and zero minimums."""
    _, exact = msgspec.json.schema_components(
        list(REQUEST_STRUCTS.values()), ref_template="#/components/schemas/{name}"
    )
    components = app.openapi_schema.components
    schemas: dict[str, Any] = components.schemas
    schemas.update(exact)


def create_app_from_env() -> SearchLane:
    """The uvicorn factory (``tenantctl serve``): settings from the environment."""
    return create_app(Settings.from_env())
