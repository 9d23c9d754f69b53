"""What every embedder promises, and the checks every answer goes through."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from controlplane.errors import EmbeddingFailed

__all__ = ["Embedder", "Embeddings", "Purpose", "check_embeddings"]


class Purpose(StrEnum):
    """Some providers (Voyage) embed queries and documents differently."""

    DOCUMENT = "document"
    QUERY = "query"


@dataclass(frozen=True)
class Embeddings:
    vectors: list[list[float]]
    # provider:model that made the vectors -- a fallback's, when the primary failed.
    identity: str


class Embedder(Protocol):
    @property
    def identity(self) -> str: ...

    async def embed(self, texts: Sequence[str], *, dims: int, purpose: Purpose) -> Embeddings:
        """One vector of ``dims`` finite numbers per text, in order; raises
        EmbeddingFailed (refused, wrong answer) or EmbedderUnavailable (transient)."""
        ...


def check_embeddings(vectors: list[list[float]], *, count: int, dims: int, identity: str) -> None:
    """Refuse an answer that cannot be stored as asked: nothing is stored from it."""
    if len(vectors) != count:
        raise EmbeddingFailed(f"{identity} returned {len(vectors)} embeddings for {count} texts")
    for i, vector in enumerate(vectors):
        if len(vector) != dims:
            raise EmbeddingFailed(
                f"{identity} returned {len(vector)} dimensions, the tenant expects {dims}; "
                "pick a model (or a dimensions setting) that matches the tenant's dims"
            )
        if not math.isfinite(sum(vector)) and not all(math.isfinite(v) for v in vector):
            raise EmbeddingFailed(f"{identity} returned a non-finite value in embedding {i}")
