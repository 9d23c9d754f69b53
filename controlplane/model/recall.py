"""A tenant's recall target, and what tenantvec measured and chose to meet it.

An approximate index (HNSW, IVFFlat) trades recall for speed through one search-time
setting: HNSW's ``ef_search`` (candidates kept while walking the graph), IVFFlat's
``probes`` (lists scanned). How much recall a value buys depends on the data: on
clustered real embeddings pgvector's default ef_search 40 finds ~95 % of the true ten
nearest, on random vectors ~15 % (docs/benchmarks.md). So each tenant has a target
(``target``, default 0.95) and tenantvec measures the tenant's own recall on samples of
its own chunks, exact search against the index (lifecycle/recall.py), and keeps the
smallest setting that meets the target; its searches use it unless a request says
otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from controlplane.errors import InvalidRequest

__all__ = ["DEFAULT_RECALL_TARGET", "RECALL_TARGET_RANGE", "RecallTuning"]

DEFAULT_RECALL_TARGET = 0.95
RECALL_TARGET_RANGE = (0.5, 1.0)


@dataclass(frozen=True)
class RecallTuning:
    target: float = DEFAULT_RECALL_TARGET
    # The last measurement: recall@k at the setting chosen, on ``sample`` chunks of the
    # ``chunks`` the tenant held then. None: not measured since the index was built.
    measured: float | None = None
    ef_search: int | None = None  # HNSW: what its searches use (None: pgvector's 40)
    probes: int | None = None  # IVFFlat: what its searches use (None: pgvector's 1)
    chunks: int | None = None
    sample: int | None = None
    measured_at: datetime | None = None

    def __post_init__(self) -> None:
        low, high = RECALL_TARGET_RANGE
        if not isinstance(self.target, int | float) or not low <= self.target <= high:
            raise InvalidRequest(f"the recall target must be between {low} and {high}")

    @property
    def reached(self) -> bool | None:
        return None if self.measured is None else self.measured >= self.target

    def retargeted(self, target: float | None) -> RecallTuning:
        """The same tuning with another target (None: unchanged), to be measured again."""
        if target is None or target == self.target:
            return self
        return RecallTuning(target=target)

    def reset(self) -> RecallTuning:
        """What a new index starts from: the target, nothing measured or chosen."""
        return RecallTuning(target=self.target)

    def measured_as(
        self,
        recall: float,
        *,
        ef_search: int | None,
        probes: int | None,
        chunks: int,
        sample: int,
        at: datetime,
    ) -> RecallTuning:
        return replace(
            self,
            measured=recall,
            ef_search=ef_search,
            probes=probes,
            chunks=chunks,
            sample=sample,
            measured_at=at,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "measured": self.measured,
            "ef_search": self.ef_search,
            "probes": self.probes,
            "chunks": self.chunks,
            "sample": self.sample,
            "measured_at": self.measured_at.isoformat() if self.measured_at else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RecallTuning:
        """The tuning the catalog recorded ({} on tenants made before targets: the
        default, not measured)."""
        if not data:
            return cls()
        at = data.get("measured_at")

        def _int(name: str) -> int | None:
            value = data.get(name)
            return None if value is None else int(value)

        measured = data.get("measured")
        return cls(
            target=float(data.get("target", DEFAULT_RECALL_TARGET)),
            measured=None if measured is None else float(measured),
            ef_search=_int("ef_search"),
            probes=_int("probes"),
            chunks=_int("chunks"),
            sample=_int("sample"),
            measured_at=datetime.fromisoformat(at) if at else None,
        )
