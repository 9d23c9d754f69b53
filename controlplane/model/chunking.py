"""A tenant's chunking: the token budget per chunk and the overlap between neighbours
(the splitter that applies it is ``retrieval.chunking``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.errors import InvalidRequest

__all__ = ["MAX_CHUNK_TOKENS", "MIN_CHUNK_TOKENS", "ChunkingSpec"]

MIN_CHUNK_TOKENS = 16
MAX_CHUNK_TOKENS = 8_192  # what the common embedding models take per input


@dataclass(frozen=True)
class ChunkingSpec:
    """A tenant's chunking: token budget per chunk and overlap between neighbours."""

    max_tokens: int = 800
    overlap: int = 200

    def __post_init__(self) -> None:
        if not MIN_CHUNK_TOKENS <= self.max_tokens <= MAX_CHUNK_TOKENS:
            raise InvalidRequest(
                f"chunk tokens must be between {MIN_CHUNK_TOKENS} and {MAX_CHUNK_TOKENS}"
            )
        if not 0 <= self.overlap < self.max_tokens:
            raise InvalidRequest("chunk overlap must be at least 0 and less than chunk tokens")

    def to_json(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens, "overlap": self.overlap}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChunkingSpec:
        return cls(**{k: int(v) for k, v in data.items() if k in ("max_tokens", "overlap")})
