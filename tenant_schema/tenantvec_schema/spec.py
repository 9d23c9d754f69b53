"""What a tenant's schema is rendered from: dimensions, metric, vector index, text search."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from controlplane.errors import InvalidRequest

__all__ = [
    "HNSW_EF_CONSTRUCTION",
    "HNSW_M",
    "IVFFLAT_LISTS",
    "MAX_DIMS",
    "MANAGED_TABLES",
    "MAX_INDEXED_DIMS",
    "ROW_TABLES",
    "TEXT_CONFIGS",
    "IndexKind",
    "IndexSpec",
    "Metric",
    "SchemaSpec",
]

# The tables tenantvec's migrations make, all in schema ``public`` (their indexes and
# sequences go with them); and those whose rows are the tenant's data -- what a backup
# carries (the migration ledger is rebuilt by the restore's own migrations).
ROW_TABLES = ("documents", "chunks", "ingestion_jobs")
MANAGED_TABLES = (*ROW_TABLES, "schema_migrations")

# pgvector limits: a vector column holds at most 16,000 dimensions; HNSW and IVFFlat
# index at most 2,000 of them.
MAX_DIMS = 16_000
MAX_INDEXED_DIMS = 2_000
# Index build parameters: the ranges pgvector accepts (inclusive).
HNSW_M = (2, 100)
HNSW_EF_CONSTRUCTION = (4, 1000)
IVFFLAT_LISTS = (1, 32_768)
# The text search configurations every Postgres 18 ships (pg_ts_config). A name outside
# this set would only fail later, inside the tenant's first migration; older servers
# lack a few (armenian, basque, catalan, estonian, hindi, serbian, yiddish).
TEXT_CONFIGS = frozenset(
    [
        "arabic",
        "armenian",
        "basque",
        "catalan",
        "danish",
        "dutch",
        "english",
        "estonian",
        "finnish",
        "french",
        "german",
        "greek",
        "hindi",
        "hungarian",
        "indonesian",
        "irish",
        "italian",
        "lithuanian",
        "nepali",
        "norwegian",
        "portuguese",
        "romanian",
        "russian",
        "serbian",
        "simple",
        "spanish",
        "swedish",
        "tamil",
        "turkish",
        "yiddish",
    ]
)


class Metric(StrEnum):
    COSINE = "cosine"
    L2 = "l2"
    IP = "ip"

    @property
    def opclass(self) -> str:
        return f"vector_{self.value}_ops"

    @property
    def operator(self) -> str:
        """The pgvector distance operator an ORDER BY must use for the index to apply."""
        return {"cosine": "<=>", "l2": "<->", "ip": "<#>"}[self.value]


class IndexKind(StrEnum):
    HNSW = "hnsw"
    IVFFLAT = "ivfflat"
    NONE = "none"


@dataclass(frozen=True)
class IndexSpec:
    """A vector index and its build parameters (pgvector's defaults unless given)."""

    kind: IndexKind = IndexKind.HNSW
    m: int = 16
    ef_construction: int = 64
    lists: int = 100

    def __post_init__(self) -> None:
        for name, value, (low, high) in (
            ("hnsw m", self.m, HNSW_M),
            ("hnsw ef_construction", self.ef_construction, HNSW_EF_CONSTRUCTION),
            ("ivfflat lists", self.lists, IVFFLAT_LISTS),
        ):
            if not low <= value <= high:
                raise InvalidRequest(f"{name} must be between {low} and {high}")
        if self.ef_construction < 2 * self.m:
            raise InvalidRequest("hnsw ef_construction must be at least twice m")

    def params(self) -> dict[str, int]:
        """The parameters that apply to this kind (stored in the catalog)."""
        if self.kind is IndexKind.HNSW:
            return {"m": self.m, "ef_construction": self.ef_construction}
        if self.kind is IndexKind.IVFFLAT:
            return {"lists": self.lists}
        return {}

    @classmethod
    def from_params(cls, kind: str, params: dict[str, Any]) -> IndexSpec:
        try:
            return cls(kind=IndexKind(kind), **{k: int(v) for k, v in params.items()})
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"invalid index settings: {exc}") from None


@dataclass(frozen=True)
class SchemaSpec:
    dims: int
    metric: Metric = Metric.COSINE
    index: IndexSpec = field(default_factory=IndexSpec)
    text_config: str = "english"

    def __post_init__(self) -> None:
        if not 1 <= self.dims <= MAX_DIMS:
            raise InvalidRequest(f"dims must be between 1 and {MAX_DIMS}")
        if self.index.kind is not IndexKind.NONE and self.dims > MAX_INDEXED_DIMS:
            raise InvalidRequest(
                f"pgvector's {self.index.kind} index covers at most {MAX_INDEXED_DIMS} "
                f"dimensions; use fewer dims or --index none"
            )
        if not isinstance(self.text_config, str) or self.text_config not in TEXT_CONFIGS:
            shown = repr(self.text_config)[:80]
            raise InvalidRequest(
                f"unknown text search configuration {shown}; use one of Postgres's: "
                + ", ".join(sorted(TEXT_CONFIGS))
            )
