"""What a tenant's schema is rendered from: dimensions, metric, vector index, text search."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from controlplane.errors import InvalidRequest

__all__ = ["TEXT_CONFIGS", "IndexKind", "IndexSpec", "Metric", "SchemaSpec"]

# pgvector limits: a vector column holds at most 16,000 dimensions; HNSW and IVFFlat
# index at most 2,000 of them.
MAX_DIMS = 16_000
MAX_INDEXED_DIMS = 2_000
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
        if not 2 <= self.m <= 100:
            raise InvalidRequest("hnsw m must be between 2 and 100")
        if not 4 <= self.ef_construction <= 1000:
            raise InvalidRequest("hnsw ef_construction must be between 4 and 1000")
        if self.ef_construction < 2 * self.m:
            raise InvalidRequest("hnsw ef_construction must be at least twice m")
        if not 1 <= self.lists <= 32_768:
            raise InvalidRequest("ivfflat lists must be between 1 and 32768")

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
