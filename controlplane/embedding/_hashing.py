"""The offline ``hash`` embedder: feature hashing of words and word pairs.

Each text becomes the counts of its lowercase word unigrams and bigrams, hashed into
``dims`` buckets with a sign (the "hashing trick"), log-scaled and L2-normalised. It is
deterministic, needs no model and no network, and is *lexical*: texts sharing words are
near, synonyms are not. Good for tests, demos, CI and keyword-heavy corpora; use a real
model for semantic search.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from controlplane.embedding._base import Embeddings, Purpose

__all__ = ["HashEmbedder", "hash_embedding"]

_WORD_RE = re.compile(r"\w+")
# Stands in for a text with no words at all, so that it still has a direction.
_EMPTY = "\x00empty"
_INLINE_CHARS = 20_000


@lru_cache(maxsize=200_000)
def _feature_hash(feature: str) -> int:
    digest = hashlib.blake2b(feature.encode(), digest_size=8, person=b"tenantvec-v1").digest()
    return int.from_bytes(digest, "little")


def hash_embedding(text: str, dims: int) -> list[float]:
    words = _WORD_RE.findall(text.lower())
    features: Counter[str] = Counter(words)
    features.update(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))
    if not features:
        features[_EMPTY] = 1
    vector = [0.0] * dims
    for feature, count in features.items():
        h = _feature_hash(feature)
        weight = 1.0 + math.log(count)
        vector[h % dims] += weight if h >> 63 else -weight
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0:  # every feature cancelled out in its bucket: rare, but keep a direction
        vector[_feature_hash(_EMPTY) % dims] = 1.0
        return vector
    return [v / norm for v in vector]


class HashEmbedder:
    def __init__(self, model: str = "v1") -> None:
        self.identity = f"hash:{model}"

    async def embed(self, texts: Sequence[str], *, dims: int, purpose: Purpose) -> Embeddings:
        if sum(len(t) for t in texts) < _INLINE_CHARS:
            return Embeddings([hash_embedding(t, dims) for t in texts], self.identity)
        # Hashing a large batch takes a while: keep the event loop serving requests.
        vectors = await asyncio.to_thread(lambda: [hash_embedding(t, dims) for t in texts])
        return Embeddings(vectors, self.identity)
