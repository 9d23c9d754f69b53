"""What a caller may say about a new tenant, declared once.

:class:`TenantOptions` is the flat form -- every option with its default, its bounds and
what it means: the API's request body (and its OpenAPI schema), and what ``tenantctl
tenants create`` fills from its flags. :class:`TenantRequest` is the typed form the
lifecycle takes (``create_tenant``), validated on construction; ``to_request`` turns
one into the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Annotated, Any

from msgspec import Meta, Struct

from controlplane.durations import parse_duration
from controlplane.errors import InvalidRequest
from controlplane.inputs import check_identifier
from controlplane.model.backends import BackendKind
from controlplane.model.chunking import MAX_CHUNK_TOKENS, MIN_CHUNK_TOKENS, ChunkingSpec
from controlplane.model.compute import ComputeSpec
from controlplane.model.embedder import NO_EMBEDDER, EmbedderChoice, EmbedderSpec, parse_embedder
from controlplane.model.labels import validate_labels
from controlplane.model.limits import RoleLimits
from controlplane.model.recall import DEFAULT_RECALL_TARGET, RECALL_TARGET_RANGE, RecallTuning
from controlplane.model.records import validate_server_name, validate_tenant_id
from controlplane.tiers import Tier
from tenantvec_schema.spec import (
    HALF_PRECISION_FROM_DIMS,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    IVFFLAT_LISTS,
    MAX_DIMS,
    IndexKind,
    IndexSpec,
    Metric,
    Precision,
    SchemaSpec,
)

__all__ = [
    "DEFAULTS",
    "DEFAULT_DIMS",
    "DEFAULT_TEXT_CONFIG",
    "LimitValue",
    "TenantOptions",
    "TenantRequest",
]

# The size of a tenant whose embedder does not fix one (OpenAI's text-embedding-3-small).
DEFAULT_DIMS = 1536
DEFAULT_TEXT_CONFIG = "english"
_INDEX = IndexSpec()
_CHUNKING = ChunkingSpec()

_REGION_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # whole string


@dataclass(frozen=True)
class TenantRequest:
    """Everything a caller may say about a new tenant. Validated on construction."""

    id: str
    # None: the embedder's own size (wordllama: 256), or DEFAULT_DIMS; see resolve().
    # Required for a tenant without an embedder: the size of the vectors it is sent.
    dims: int | None = None
    metric: Metric = Metric.COSINE
    index: IndexSpec = field(default_factory=IndexSpec)
    text_config: str = DEFAULT_TEXT_CONFIG
    backend: str = BackendKind.POSTGRES
    server: str | None = None
    # Where the tenant's data must live (neon backend: a Neon region id).
    region: str | None = None
    # The tenant's tier (None: TENANTVEC_TIER): its role's connection limit and
    # timeouts, and for a server of its own (instance, docker) that server's size.
    tier: str | None = None
    # Explicit server settings overriding the tier's (instance and docker backends).
    resources: dict[str, Any] = field(default_factory=dict)
    # Explicit role limits overriding the tier's (every backend): connection_limit,
    # statement_timeout, idle_in_transaction_timeout.
    limits: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    ttl: timedelta | None = None
    # A model, or NO_EMBEDDER (the tenant stores the vectors its callers send). None:
    # not said -- no embedder when dims are given (the caller brings vectors of that
    # size), else the control plane's default (TENANTVEC_EMBEDDER); see resolve().
    embedder: EmbedderChoice | None = None
    chunking: ChunkingSpec = field(default_factory=ChunkingSpec)
    # The share of the true nearest chunks its searches must find (model/recall.py).
    recall: RecallTuning = field(default_factory=RecallTuning)

    def __post_init__(self) -> None:
        validate_tenant_id(self.id)
        if self.server is not None:
            validate_server_name(self.server)
        if self.region is not None:
            check_identifier(self.region, _REGION_RE, "region", "e.g. aws-eu-central-1")
        # Validates dims, metric, index and text config together; with dims still to
        # come from the embedder (resolve()), all but the size, which 1 always passes.
        self._schema(1 if self.dims is None else self.dims)
        if self.dims is not None and isinstance(self.embedder, EmbedderSpec):
            self.embedder.check_dims(self.dims)
        if self.embedder is NO_EMBEDDER and self.dims is None:
            raise InvalidRequest(
                "a tenant without an embedder needs dims: the size of the vectors you will "
                "send (e.g. 1536 for OpenAI's text-embedding-3-small)"
            )
        validate_labels(self.labels)
        ComputeSpec.resolve(self.tier or Tier.SMALL, self.resources)  # validates both
        RoleLimits.resolve(self.tier or Tier.SMALL, self.limits)
        if self.ttl is not None and self.ttl <= timedelta(0):
            raise InvalidRequest("ttl must be positive")

    def compute(self, default_tier: str) -> ComputeSpec:
        """The size of a server of its own (instance, docker): its tier's (default:
        ``default_tier``), with its resource settings on top."""
        return ComputeSpec.resolve(self.tier or default_tier, self.resources)

    def resolve(self, default_embedder: EmbedderChoice) -> TenantRequest:
        """The request with its embedder and dimensions decided and checked.

        An embedder named is used (``none``: the tenant has none). Said nothing of it,
        a request that gives ``dims`` is for the caller's own vectors and gets none
        (text embedded by some default model would not match them); one that gives
        neither gets ``default_embedder`` and that embedder's own size.
        """
        choice = self.embedder
        if choice is None:
            choice = NO_EMBEDDER if self.dims is not None else default_embedder
        embedder = choice if isinstance(choice, EmbedderSpec) else None
        if self.dims is not None:
            dims = self.dims
        elif embedder is not None:
            dims = embedder.native_dims or DEFAULT_DIMS
        else:
            raise InvalidRequest(
                "a tenant without an embedder needs dims: the size of the vectors you will "
                "send (TENANTVEC_EMBEDDER is none here)"
            )
        if embedder is not None:
            embedder.check_dims(dims)
        return replace(self, embedder=choice, dims=dims, index=self.index.for_dims(dims))

    @property
    def resolved_embedder(self) -> EmbedderSpec | None:
        """The embedder of a resolved request: None for a tenant without one."""
        if self.embedder is None:
            raise ValueError("the request's embedder is not decided before resolve()")
        return self.embedder if isinstance(self.embedder, EmbedderSpec) else None

    @property
    def schema(self) -> SchemaSpec:
        if self.dims is None:
            raise ValueError("the request's dimensions are not known before resolve()")
        return self._schema(self.dims)

    def _schema(self, dims: int) -> SchemaSpec:
        return SchemaSpec(
            dims=dims, metric=self.metric, index=self.index, text_config=self.text_config
        )


# A setting's value: a size or duration as text ("64MB", "30s"), or a number.
LimitValue = Annotated[str, Meta(max_length=32)] | Annotated[int, Meta(ge=0, le=2**31)]


class TenantOptions(Struct, forbid_unknown_fields=True):
    """The options of a new tenant (``POST /v1/tenants``, ``tenantctl tenants create``)."""

    id: Annotated[str, Meta(min_length=3, max_length=63, description="Tenant id.")]
    dims: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=MAX_DIMS,
                description="Vector dimensions, fixed for the tenant. Given without an "
                "embedder: a tenant for your own vectors of this size (no server-side "
                "embedder). Left out: what the embedder makes (wordllama: 256), else "
                f"{DEFAULT_DIMS}.",
            ),
        ]
        | None
    ) = None
    metric: Metric = Metric.COSINE
    index: IndexKind = _INDEX.kind
    m: Annotated[int, Meta(ge=HNSW_M[0], le=HNSW_M[1], description="HNSW: links per node.")] = (
        _INDEX.m
    )
    ef_construction: Annotated[
        int,
        Meta(
            ge=HNSW_EF_CONSTRUCTION[0],
            le=HNSW_EF_CONSTRUCTION[1],
            description="HNSW: build-time candidates (>= 2 m).",
        ),
    ] = _INDEX.ef_construction
    lists: Annotated[
        int, Meta(ge=IVFFLAT_LISTS[0], le=IVFFLAT_LISTS[1], description="IVFFlat: lists.")
    ] = _INDEX.lists
    precision: Annotated[
        Precision | None,
        Meta(
            description="What the vector index holds: full (vector, up to 2000 dims) or "
            "half (halfvec, up to 4000 dims; a third of the size). The vectors are stored "
            f"as given either way. Default: half from {HALF_PRECISION_FROM_DIMS} dims."
        ),
    ] = None
    text_config: Annotated[
        str,
        Meta(
            max_length=63,
            description="Postgres text search configuration: english, simple, german, ...",
        ),
    ] = DEFAULT_TEXT_CONFIG
    backend: Annotated[
        BackendKind,
        Meta(
            description="postgres: a database on a registered server; instance: a Postgres "
            "server of its own on the control plane's machine; docker: a container of its "
            "own; neon: a Neon project or branch (TENANTVEC_NEON_MODE)."
        ),
    ] = BackendKind.POSTGRES
    server: Annotated[str, Meta(description="postgres backend: the server.")] | None = None
    region: (
        Annotated[str, Meta(description="neon backend: Neon region, e.g. aws-eu-central-1.")] | None
    ) = None
    tier: (
        Annotated[
            Tier,
            Meta(
                description="The tenant's role limits (connections of its own clients, "
                "statement timeouts) and, for instance/docker, its server's size. Default: "
                "the server's TENANTVEC_TIER."
            ),
        ]
        | None
    ) = None
    resources: Annotated[
        dict[str, LimitValue],
        Meta(
            description="instance/docker: settings overriding the tier's: shared_buffers, "
            "work_mem, maintenance_work_mem (e.g. '64MB'), max_connections."
        ),
    ] = {}
    limits: Annotated[
        dict[str, LimitValue],
        Meta(
            description="Limits overriding the tier's: connection_limit (the tenant's own "
            "clients), statement_timeout, idle_in_transaction_timeout (e.g. '30s')."
        ),
    ] = {}
    labels: dict[str, str] = {}
    ttl: (
        Annotated[str, Meta(description="e.g. 30m, 2h, 7d: 'tenantctl gc' deletes after.")] | None
    ) = None
    embedder: (
        Annotated[
            str,
            Meta(
                description="provider:model, e.g. openai:text-embedding-3-small, "
                "voyage:voyage-3.5, wordllama, hash; or none (the tenant stores the vectors "
                "its callers send). Default: none when dims are given, else the server's "
                "TENANTVEC_EMBEDDER."
            ),
        ]
        | None
    ) = None
    fallbacks: Annotated[
        list[str], Meta(max_length=3, description="Embedders tried in order if it fails.")
    ] = []
    chunk_tokens: Annotated[
        int,
        Meta(ge=MIN_CHUNK_TOKENS, le=MAX_CHUNK_TOKENS, description="Token budget of a chunk."),
    ] = _CHUNKING.max_tokens
    chunk_overlap: Annotated[
        int, Meta(ge=0, description="Tokens a chunk repeats from the one before.")
    ] = _CHUNKING.overlap
    recall_target: Annotated[
        float,
        Meta(
            ge=RECALL_TARGET_RANGE[0],
            le=RECALL_TARGET_RANGE[1],
            description="The share of the true 10 nearest chunks its searches must find: "
            "tenantvec measures the tenant's recall on its own data and sets ef_search "
            "(HNSW) or probes (IVFFlat) to meet it.",
        ),
    ] = DEFAULT_RECALL_TARGET

    def to_request(self) -> TenantRequest:
        if self.fallbacks and not self.embedder:
            raise InvalidRequest("fallbacks need an embedder to fall back from")
        return TenantRequest(
            id=self.id,
            dims=self.dims,
            metric=self.metric,
            index=IndexSpec(
                kind=self.index,
                m=self.m,
                ef_construction=self.ef_construction,
                lists=self.lists,
                precision=self.precision,
            ),
            text_config=self.text_config,
            backend=self.backend,
            server=self.server,
            region=self.region,
            tier=self.tier,
            resources=dict(self.resources),
            limits=dict(self.limits),
            labels=self.labels,
            ttl=parse_duration(self.ttl) if self.ttl else None,
            embedder=parse_embedder(self.embedder, self.fallbacks) if self.embedder else None,
            chunking=ChunkingSpec(max_tokens=self.chunk_tokens, overlap=self.chunk_overlap),
            recall=RecallTuning(target=self.recall_target),
        )


# Every option's default, for front ends that declare their own flags (the CLI).
DEFAULTS = TenantOptions(id="")
