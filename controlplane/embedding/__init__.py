"""Turning text into vectors: the tenant's embedder, by provider, with fallbacks."""

from controlplane.embedding._base import Embedder, Embeddings, Purpose
from controlplane.embedding._hashing import HashEmbedder, hash_embedding
from controlplane.embedding.registry import Embedders, FallbackEmbedder
from controlplane.model.embedder import PROVIDERS, EmbedderSpec

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
