"""The synthetic corpus: tenants of Zipf-skewed sizes whose embeddings overlap like real ones.

Real tenants of one SaaS product write about the same things -- every customer of a
help-desk tool has documents on billing, login and exports -- so their embeddings share
regions of the space. We model that with a pool of global *topics*: each tenant draws
a few of them and places its own clusters near them (a mixture of Gaussians per
tenant, L2-normalised). A query is a fresh draw from one of its tenant's clusters, and
its true neighbours are found by brute force over that tenant's vectors only.

Everything is regenerated from a seed; nothing is committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["Dataset", "Query", "Scale"]

K = 10


@dataclass(frozen=True)
class Scale:
    tenants: int = 200
    vectors: int = 200_000
    dims: int = 768
    queries: int = 100  # per size class (small / large tenants)
    zipf: float = 1.0  # tenant i (from 1) holds a share proportional to 1 / i**zipf
    min_vectors: int = 20  # the smallest tenant still has two full result pages
    topics: int = 64
    clusters: int = 8  # per tenant
    topic_spread: float = 0.6  # how far a tenant's cluster sits from its global topic
    cluster_spread: float = 1.0  # noise norm around a cluster centre
    seed: int = 42

    def __post_init__(self) -> None:
        if self.tenants < 2:
            raise ValueError("--tenants must be at least 2")
        if self.vectors < self.tenants * self.min_vectors:
            raise ValueError(
                f"--vectors must be at least {self.min_vectors} per tenant "
                f"({self.tenants * self.min_vectors:,})"
            )
        if not 2 <= self.dims <= 2000:
            raise ValueError("--dims must be between 2 and 2000 (pgvector's HNSW limit)")


@dataclass(frozen=True)
class Query:
    tenant: int  # index into Dataset.sizes
    size_class: str  # "small" or "large"
    vector: np.ndarray
    truth: frozenset[int]  # ids of the exact 10 nearest vectors of the tenant


class Dataset:
    """Vectors with global ids; tenant ``t`` owns ids ``offsets[t] .. offsets[t+1]-1``."""

    def __init__(self, scale: Scale) -> None:
        self.scale = scale
        self.sizes = zipf_sizes(scale)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        rng = np.random.default_rng(scale.seed)
        topics = _unit(rng.standard_normal((scale.topics, scale.dims), dtype=np.float32))
        self.centres: list[np.ndarray] = []
        self.vectors = np.empty((scale.vectors, scale.dims), dtype=np.float32)
        for t, size in enumerate(self.sizes):
            picked = topics[rng.choice(scale.topics, size=scale.clusters, replace=False)]
            centres = _unit(picked + _noise(rng, picked.shape, scale.topic_spread))
            self.centres.append(centres)
            which = rng.integers(0, scale.clusters, size=int(size))
            block = centres[which] + _noise(rng, (int(size), scale.dims), scale.cluster_spread)
            self.vectors[self.offsets[t] : self.offsets[t + 1]] = _unit(block)
        self._topics = topics

    def newcomer(self, size: int, seed: int) -> np.ndarray:
        """Vectors of a tenant who signs up after the load, drawn like the others."""
        rng = np.random.default_rng(seed)
        topics = self._topics[rng.choice(self.scale.topics, size=self.scale.clusters)]
        centres = _unit(topics + _noise(rng, topics.shape, self.scale.topic_spread))
        which = rng.integers(0, self.scale.clusters, size=size)
        return _unit(
            centres[which] + _noise(rng, (size, self.scale.dims), self.scale.cluster_spread)
        )

    def tenant_vectors(self, tenant: int) -> np.ndarray:
        return self.vectors[self.offsets[tenant] : self.offsets[tenant + 1]]

    @cached_property
    def size_classes(self) -> dict[str, list[int]]:
        """Large: the biggest tenth of the tenants. Small: the smaller half."""
        by_size = list(np.argsort(-self.sizes, kind="stable"))
        large = max(1, round(len(by_size) * 0.1))
        return {
            "small": sorted(int(t) for t in by_size[len(by_size) // 2 :]),
            "large": sorted(int(t) for t in by_size[:large]),
        }

    @cached_property
    def queries(self) -> list[Query]:
        """The same queries for every layout: per size class, tenants drawn uniformly."""
        rng = np.random.default_rng(self.scale.seed + 1)
        queries = []
        for size_class, tenants in self.size_classes.items():
            for _ in range(self.scale.queries):
                t = int(rng.choice(tenants))
                centre = self.centres[t][rng.integers(0, self.scale.clusters)]
                noise = _noise(rng, (1, self.scale.dims), self.scale.cluster_spread)
                vector = _unit(centre + noise)[0]
                queries.append(Query(t, size_class, vector, self.exact_top(t, vector)))
        return queries

    def exact_top(self, tenant: int, vector: np.ndarray, k: int = K) -> frozenset[int]:
        """Brute force: the ids of the ``k`` most cosine-similar vectors of the tenant."""
        similarity = self.tenant_vectors(tenant) @ vector
        top = np.argpartition(-similarity, k - 1)[:k]
        return frozenset(int(i) + int(self.offsets[tenant]) for i in top)

    def own_share(self, queries: list[Query], top: int = 100) -> float:
        """How distinct tenants are: of a query's ``top`` nearest vectors over *all*
        tenants, the share that belong to its own tenant (mean over the queries)."""
        shares = []
        for q in queries:
            nearest = np.argpartition(-(self.vectors @ q.vector), top - 1)[:top]
            lo, hi = self.offsets[q.tenant], self.offsets[q.tenant + 1]
            shares.append(float(((nearest >= lo) & (nearest < hi)).mean()))
        return float(np.mean(shares))


def zipf_sizes(scale: Scale) -> np.ndarray:
    """Tenant sizes summing to ``scale.vectors``: a few large tenants, a long tail."""
    weights = 1.0 / np.arange(1, scale.tenants + 1) ** scale.zipf
    spare = scale.vectors - scale.tenants * scale.min_vectors
    sizes = scale.min_vectors + np.floor(weights / weights.sum() * spare).astype(np.int64)
    sizes[0] += scale.vectors - int(sizes.sum())  # rounding leftovers to the largest
    return sizes


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _noise(rng: np.random.Generator, shape: tuple[int, ...], norm: float) -> np.ndarray:
    """Gaussian noise whose rows have about ``norm`` length, whatever the dimensions."""
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(norm / np.sqrt(shape[-1]))
