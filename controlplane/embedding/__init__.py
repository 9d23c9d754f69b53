"""Turning text into vectors: the tenant's embedder, by provider, with fallbacks."""

from controlplane.retrieval.embedding.base import Embedder, Embeddings, Purpose
from controlplane.retrieval.embedding.hashing import HashEmbedder, hash_embedding
from controlplane.retrieval.embedding.registry import Embedders, FallbackEmbedder
from controlplane.retrieval.embedding.spec import PROVIDERS, EmbedderSpec

__all__ = [
    "PROVIDERS",
    "Embedder",
    "EmbedderSpec",
    "Embedders",
    "Embeddings",
    "FallbackEmbedder",
    "HashEmbedder",
    "Purpose",
    "hash_embedding",
]
