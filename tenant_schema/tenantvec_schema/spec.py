"""What a tenant's schema is rendered from: dimensions, metric, vector index, text search."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from controlplane.errors import InvalidRequest

__all__ = [
    "HALF_PRECISION_FROM_DIMS",
    "HNSW_EF_CONSTRUCTION",
    "HNSW_M",
    "IVFFLAT_LISTS",
    "MAX_DIMS",
    "MANAGED_TABLES",
    "MAX_HALF_INDEXED_DIMS",
    "MAX_INDEXED_DIMS",
    "ROW_TABLES",
    "TEXT_CONFIGS",
    "IndexKind",
    "IndexSpec",
    "Metric",
    "Precision",
    "SchemaSpec",
    "default_precision",
]

# The tables tenantvec's migrations make, all in schema ``public`` (their indexes and
# sequences go with them); and those whose rows are the tenant's data -- what a backup
# carries (the migration ledger is rebuilt by the restore's own migrations).
ROW_TABLES = ("documents", "chunks", "ingestion_jobs")
MANAGED_TABLES = (*ROW_TABLES, "schema_migrations")

# pgvector limits: a vector column holds at most 16,000 dimensions; HNSW and IVFFlat
# index at most 2,000 of them as vectors, 4,000 as half-precision vectors (halfvec).
MAX_DIMS = 16_000
MAX_INDEXED_DIMS = 2_000
MAX_HALF_INDEXED_DIMS = 4_000
# From this size on an index is half precision unless the tenant says otherwise
# (docs/benchmarks.md, "Index precision": at 1,024 dims a third of the size, built
# faster, searched as fast or faster at the same recall once candidates are re-ranked
# with the stored full-precision vectors).
HALF_PRECISION_FROM_DIMS = 256
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


class Precision(StrEnum):
    """What the vector index holds. The vectors themselves are always stored as given
    (``vector``, 4 bytes a dimension): results, re-ranking and backups keep full
    precision whatever the index holds.

    - ``full``: the index holds ``vector`` values (4 bytes a dimension, up to 2,000).
    - ``half``: the index holds ``halfvec`` values (2 bytes a dimension, up to 4,000):
      half the index size or less, so more tenants' indexes stay in memory; a search
      takes twice ``k`` candidates from it and orders them by their exact distance.
    """

    FULL = "full"
    HALF = "half"

    @property
    def type_name(self) -> str:
        return "halfvec" if self is Precision.HALF else "vector"

    @property
    def max_dims(self) -> int:
        return MAX_HALF_INDEXED_DIMS if self is Precision.HALF else MAX_INDEXED_DIMS


def default_precision(dims: int) -> Precision:
    """The precision of a tenant's index when nobody chose one."""
    if dims >= HALF_PRECISION_FROM_DIMS:
        return Precision.HALF
    return Precision.FULL


class Metric(StrEnum):
    COSINE = "cosine"
    L2 = "l2"
    IP = "ip"

    def opclass(self, precision: Precision = Precision.FULL) -> str:
        """The operator class an index of this metric and precision is built with."""
        return f"{precision.type_name}_{self.value}_ops"

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
    """A vector index and its build parameters (pgvector's defaults unless given).

    ``precision`` None: not chosen -- :meth:`for_dims` (and a SchemaSpec) decide it by
    the tenant's dimensions (``default_precision``).
    """

    kind: IndexKind = IndexKind.HNSW
    m: int = 16
    ef_construction: int = 64
    lists: int = 100
    precision: Precision | None = None

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

    def build_params(self) -> dict[str, int]:
        """The build parameters that apply to this kind (an index's ``WITH`` clause)."""
        if self.kind is IndexKind.HNSW:
            return {"m": self.m, "ef_construction": self.ef_construction}
        if self.kind is IndexKind.IVFFLAT:
            return {"lists": self.lists}
        return {}

    def params(self) -> dict[str, int | str]:
        """Everything that applies to this kind, as the catalog and a backup keep it."""
        params: dict[str, int | str] = dict(self.build_params())
        if self.kind is not IndexKind.NONE and self.precision is not None:
            params["precision"] = self.precision.value
        return params

    def to_json(self) -> dict[str, int | str]:
        return {"kind": self.kind.value, **self.params()}

    @property
    def half(self) -> bool:
        return self.kind is not IndexKind.NONE and self.precision is Precision.HALF

    def for_dims(self, dims: int) -> IndexSpec:
        """This index with its precision decided for vectors of ``dims``."""
        if self.precision is not None:
            return self
        return replace(self, precision=default_precision(dims))

    @classmethod
    def from_params(cls, kind: str, params: dict[str, Any]) -> IndexSpec:
        """The spec the catalog or a backup recorded. An index recorded before
        precisions existed is a full-precision one."""
        try:
            values = dict(params)
            precision = Precision(values.pop("precision", Precision.FULL))
            return cls(
                kind=IndexKind(kind),
                precision=precision,
                **{k: int(v) for k, v in values.items()},
            )
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"invalid index settings: {exc}") from None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IndexSpec:
        values = dict(data)
        return cls.from_params(str(values.pop("kind", "")), values)


@dataclass(frozen=True)
class SchemaSpec:
    dims: int
    metric: Metric = Metric.COSINE
    index: IndexSpec = field(default_factory=IndexSpec)
    text_config: str = "english"

    def __post_init__(self) -> None:
        if not 1 <= self.dims <= MAX_DIMS:
            raise InvalidRequest(f"dims must be between 1 and {MAX_DIMS}")
        # A schema's index always has its precision decided.
        object.__setattr__(self, "index", self.index.for_dims(self.dims))
        precision = self.index.precision
        assert precision is not None
        if self.index.kind is not IndexKind.NONE and self.dims > precision.max_dims:
            if precision is Precision.FULL and self.dims <= MAX_HALF_INDEXED_DIMS:
                hint = "use --precision half (a halfvec index covers up to 4000)"
            else:
                hint = "use fewer dims or --index none (exact search)"
            raise InvalidRequest(
                f"pgvector's {self.index.kind} index covers at most {precision.max_dims} "
                f"dimensions at {precision} precision; {hint}"
            )
        if not isinstance(self.text_config, str) or self.text_config not in TEXT_CONFIGS:
            shown = repr(self.text_config)[:80]
            raise InvalidRequest(
                f"unknown text search configuration {shown}; use one of Postgres's: "
                + ", ".join(sorted(TEXT_CONFIGS))
            )
