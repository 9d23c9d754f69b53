"""Admin endpoints: tenants, their keys, the operation log. Admin token only."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post, put
from litestar.params import Body, PathParameter, QueryParameter
from msgspec import Meta, Struct

from controlplane.api import _examples as ex
from controlplane.api._auth import admin_only
from controlplane.api._body import StrictBody
from controlplane.api._caller import CallerDep
from controlplane.api._state import ApiDep
from controlplane.errors import InvalidRequest
from controlplane.keys import create_key, list_keys, revoke_key
from controlplane.lifecycle.embedder import set_embedder
from controlplane.lifecycle.limits import set_limits
from controlplane.lifecycle.suspend import resume_tenant, suspend_tenant
from controlplane.lifecycle.tenants import (
    create_tenant,
    delete_tenant,
    describe_tenant,
    list_tenants,
)
from controlplane.model.embedder import EmbedderSpec, parse_embedder
from controlplane.model.recall import RECALL_TARGET_RANGE
from controlplane.model.records import validate_tenant_id
from controlplane.model.request import LimitValue, TenantOptions
from controlplane.model.views import (
    ApiKeyView,
    IssuedKeyView,
    OperationView,
    TenantDetail,
    TenantView,
)
from controlplane.retrieval.recall import tune_recall
from controlplane.tiers import Tier
from tenantvec_schema.spec import MAX_DIMS

__all__ = ["TenantsController"]

TenantIdParam = Annotated[str, PathParameter(description="Tenant id.")]
KeyIdParam = Annotated[str, PathParameter(description="Key id.")]


class TenantCreate(TenantOptions, forbid_unknown_fields=True):
    """The options of a new tenant, as ``tenantctl tenants create`` takes them
    (declared once, in ``model.request``)."""


class LimitsChange(Struct, forbid_unknown_fields=True):
    """New limits for a tenant's role: a tier, and/or single values overriding it."""

    tier: Tier | None = None
    connection_limit: Annotated[int, Meta(ge=1, le=1000)] | None = None
    statement_timeout: LimitValue | None = None
    idle_in_transaction_timeout: LimitValue | None = None


class RecallTune(Struct, forbid_unknown_fields=True):
    """Measure a tenant's recall now, against a new target if one is given."""

    target: (
        Annotated[
            float,
            Meta(
                ge=RECALL_TARGET_RANGE[0],
                le=RECALL_TARGET_RANGE[1],
                description="A new recall target: the share of the true 10 nearest chunks "
                "a search must find. Left out: the tenant's own.",
            ),
        ]
        | None
    ) = None


class EmbedderChange(Struct, forbid_unknown_fields=True):
    """A tenant's new embedding model, or none."""

    embedder: Annotated[
        str,
        Meta(
            max_length=256,
            description="provider:model (e.g. openai:text-embedding-3-small, wordllama, "
            "hash), or none: the tenant then takes only the vectors its callers send.",
        ),
    ]
    fallbacks: Annotated[
        list[str], Meta(max_length=3, description="Embedders tried in order if it fails.")
    ] = []
    dims: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=MAX_DIMS,
                description="New dimensions, if the model's differ: every vector is emptied "
                "(then POST a backfill with 'tenantctl backfill').",
            ),
        ]
        | None
    ) = None


class KeyCreate(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=255)] | None = None


class TenantsController(Controller):
    path = "/v1"
    tags = ["admin"]
    guards = [admin_only]

    @post(
        "/tenants",
        operation_id="createTenant",
        dto=StrictBody[TenantCreate],
        return_dto=None,
        summary="Create a tenant",
        description="Provisions the tenant's database and role and applies the schema; "
        "answers when the tenant is ready.",
        responses=ex.ok_admin(TenantView, ex.TENANT, "The tenant, ready.", status=201, body=True),
    )
    async def create(
        self,
        api: ApiDep,
        caller: CallerDep,
        data: Annotated[
            TenantCreate,
            Body(
                examples=ex.example(
                    {"id": "acme", "dims": 1536, "metric": "cosine", "index": "hnsw"}
                )
            ),
        ],
    ) -> TenantView:
        tenant = await create_tenant(api.plane, data.to_request(), actor=caller.actor)
        return tenant.view()

    @get(
        "/tenants",
        operation_id="listTenants",
        summary="List tenants",
        responses=ex.ok_admin(list[TenantView], [ex.TENANT], "Live tenants, by id."),
    )
    async def list_(
        self,
        api: ApiDep,
        caller: CallerDep,
        include_deleted: Annotated[bool, QueryParameter(name="include_deleted")] = False,
    ) -> list[TenantView]:
        found = await list_tenants(api.plane, include_deleted=include_deleted)
        return [t.view() for t in found]

    @get(
        "/tenants/{tenant_id:str}",
        operation_id="getTenant",
        summary="Show a tenant",
        description="The catalog record, live facts from its server and recent operations.",
        responses=ex.ok_admin(TenantDetail, ex.TENANT, "The tenant."),
    )
    async def show(self, api: ApiDep, caller: CallerDep, tenant_id: TenantIdParam) -> TenantDetail:
        return await describe_tenant(api.plane, tenant_id)

    @delete(
        "/tenants/{tenant_id:str}",
        operation_id="deleteTenant",
        summary="Delete a tenant",
        description="Deletes its database and role (GDPR erasure); the catalog row stays as "
        "'deleted' for audit, and its placement.erasure says what became of the data: "
        "immediate (true on a Postgres server and for a Neon branch, deleted for good), or "
        "kept by the infrastructure until recoverable_until (a Neon project: 7 days).",
        status_code=200,
        responses=ex.ok_admin(TenantView, {**ex.TENANT, "state": "deleted"}, "The deleted tenant."),
    )
    async def delete_(self, api: ApiDep, caller: CallerDep, tenant_id: TenantIdParam) -> TenantView:
        tenant = await delete_tenant(api.plane, tenant_id, actor=caller.actor)
        return tenant.view()

    @post(
        "/tenants/{tenant_id:str}/suspend",
        operation_id="suspendTenant",
        summary="Suspend a tenant",
        description="Stops the tenant's compute (postgres: its database refuses connections; "
        "instance/docker: its server is stopped; neon: its endpoint is suspended). Data, DSN "
        "and keys stay; its next request resumes it transparently. A no-op for a suspended "
        "tenant.",
        status_code=200,
        responses=ex.ok_admin(
            TenantView, {**ex.TENANT, "state": "suspended"}, "The suspended tenant."
        ),
    )
    async def suspend(self, api: ApiDep, caller: CallerDep, tenant_id: TenantIdParam) -> TenantView:
        tenant = await suspend_tenant(api.plane, tenant_id, actor=caller.actor)
        return tenant.view()

    @post(
        "/tenants/{tenant_id:str}/resume",
        operation_id="resumeTenant",
        summary="Resume a tenant",
        description="Starts a suspended tenant's compute again (its first request would "
        "too). A no-op for a ready tenant.",
        status_code=200,
        responses=ex.ok_admin(TenantView, ex.TENANT, "The ready tenant."),
    )
    async def resume(self, api: ApiDep, caller: CallerDep, tenant_id: TenantIdParam) -> TenantView:
        tenant = await resume_tenant(api.plane, tenant_id, actor=caller.actor)
        return tenant.view()

    @put(
        "/tenants/{tenant_id:str}/limits",
        operation_id="setTenantLimits",
        dto=StrictBody[LimitsChange],
        return_dto=None,
        summary="Change a tenant's role limits",
        description="Connections its own clients (its DSN) may hold, and its role's default "
        "statement and idle-in-transaction timeouts (durations such as '30s', or "
        "milliseconds), from a tier with single values overriding it. Applied on its "
        "server at once; the API's connections take the new timeouts too.",
        responses=ex.ok_admin(TenantView, ex.TENANT, "The tenant.", body=True),
    )
    async def set_limits(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        data: Annotated[
            LimitsChange,
            Body(examples=ex.example({"connection_limit": 20, "statement_timeout": "60s"})),
        ],
    ) -> TenantView:
        overrides = {
            name: getattr(data, name)
            for name in ("connection_limit", "statement_timeout", "idle_in_transaction_timeout")
            if getattr(data, name) is not None
        }
        if data.tier is None and not overrides:
            raise InvalidRequest("say what to change: a tier or a limit")
        tenant = await set_limits(
            api.plane, tenant_id, overrides, tier=data.tier, actor=caller.actor
        )
        return tenant.view()

    @post(
        "/tenants/{tenant_id:str}/recall",
        operation_id="tuneTenantRecall",
        dto=StrictBody[RecallTune],
        return_dto=None,
        status_code=200,
        summary="Measure a tenant's recall and set what meets its target",
        description="Random chunks of the tenant are searched for exactly and through its "
        "index at rising ef_search (HNSW) or probes (IVFFlat); the smallest setting that "
        "finds `target` of the true 10 nearest becomes the tenant's (its `recall` in the "
        "answer). The API does this by itself in the background as tenants change "
        "(TENANTVEC_RECALL_SECONDS); this is for now, or for a new target.",
        responses=ex.ok_admin(TenantView, ex.TENANT, "The tenant, measured.", body=True),
    )
    async def tune_recall(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        data: Annotated[RecallTune, Body(examples=ex.example({"target": 0.98}))],
    ) -> TenantView:
        tenant = await tune_recall(api.plane, tenant_id, target=data.target, actor=caller.actor)
        return tenant.view()

    @put(
        "/tenants/{tenant_id:str}/embedder",
        operation_id="setTenantEmbedder",
        dto=StrictBody[EmbedderChange],
        return_dto=None,
        summary="Change a tenant's embedding model",
        description="The model that embeds its text chunks and text queries from now on, or "
        "none. For a tenant of your own vectors, name the model that made them: text "
        "queries then work. Chunks another model embedded keep serving until "
        "'tenantctl backfill' re-embeds them; new dims empty every vector.",
        responses=ex.ok_admin(TenantView, ex.TENANT, "The tenant.", body=True),
    )
    async def set_embedder(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        data: Annotated[
            EmbedderChange,
            Body(examples=ex.example({"embedder": "openai:text-embedding-3-small"})),
        ],
    ) -> TenantView:
        choice = parse_embedder(data.embedder, data.fallbacks)
        tenant = await set_embedder(
            api.plane,
            tenant_id,
            choice if isinstance(choice, EmbedderSpec) else None,
            dims=data.dims,
            actor=caller.actor,
        )
        return tenant.view()

    @post(
        "/tenants/{tenant_id:str}/keys",
        operation_id="createKey",
        dto=StrictBody[KeyCreate],
        return_dto=None,
        summary="Create a tenant API key",
        description="The key is in this response and nowhere else: only its hash is stored.",
        responses=ex.ok_admin(
            IssuedKeyView,
            {**ex.KEY, "key": "tvk_k3x9q2m7w1ab_<secret>"},
            "The key.",
            status=201,
            body=True,
        ),
    )
    async def create_key(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        data: Annotated[
            KeyCreate | None, Body(examples=ex.example({"name": "search-backend"}))
        ] = None,
    ) -> IssuedKeyView:
        name = data.name if data is not None else None
        issued = await create_key(api.plane, tenant_id, actor=caller.actor, name=name)
        return issued.view()

    @get(
        "/tenants/{tenant_id:str}/keys",
        operation_id="listKeys",
        summary="List a tenant's keys",
        responses=ex.ok_admin(list[ApiKeyView], [ex.KEY], "Keys (never their secrets)."),
    )
    async def list_keys(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant_id: TenantIdParam,
        include_revoked: Annotated[bool, QueryParameter(name="include_revoked")] = False,
    ) -> list[ApiKeyView]:
        keys = await list_keys(api.plane, tenant_id, include_revoked=include_revoked)
        return [k.view() for k in keys]

    @delete(
        "/tenants/{tenant_id:str}/keys/{key_id:str}",
        operation_id="revokeKey",
        responses=ex.problems(ex.ADMIN),
        summary="Revoke a tenant API key",
        description="Effective at once in this process, within TENANTVEC_ROUTE_TTL_SECONDS "
        "+ 1 s in other API processes.",
    )
    async def revoke_key(
        self, api: ApiDep, caller: CallerDep, tenant_id: TenantIdParam, key_id: KeyIdParam
    ) -> None:
        await revoke_key(api.plane, tenant_id, key_id, actor=caller.actor)

    @get(
        "/operations",
        operation_id="listOperations",
        summary="The operation log",
        description="Newest first: every lifecycle action with actor, outcome and error.",
        responses=ex.ok_admin(list[OperationView], [ex.OPERATION], "Operations."),
    )
    async def operations(
        self,
        api: ApiDep,
        caller: CallerDep,
        tenant: Annotated[str | None, QueryParameter(description="Only this tenant's.")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[OperationView]:
        if tenant is not None:
            validate_tenant_id(tenant)
        found = await api.plane.catalog.list_operations(tenant_id=tenant, limit=limit)
        return [op.view() for op in found]
