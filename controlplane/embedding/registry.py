"""Embedders by spec, built from settings and sharing one HTTP client.

The control plane owns one :class:`Embedders` (``plane.embedders``) and closes it with
itself; ``for_spec`` hands out one embedder per distinct spec, fallbacks included.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from controlplane.embedding._base import Embedder, Embeddings, Purpose
from controlplane.embedding._hashing import HashEmbedder
from controlplane.errors import (
    ConfigurationError,
    EmbedderUnavailable,
    EmbeddingFailed,
    NotConfigured,
    TenantHasNoEmbedder,
)
from controlplane.model.embedder import EmbedderSpec
from controlplane.settings import Settings

if TYPE_CHECKING:
    import httpx

    from controlplane.embedding._http import ProviderEndpoint

__all__ = ["Embedders", "FallbackEmbedder"]

logger = logging.getLogger(__name__)


class FallbackEmbedder:
    """Try each embedder in turn; the answer names the one that made it."""

    def __init__(self, chain: list[Embedder]) -> None:
        self._chain = chain
        self.identity = chain[0].identity

    async def embed(self, texts: Sequence[str], *, dims: int, purpose: Purpose) -> Embeddings:
        failures: list[EmbeddingFailed | EmbedderUnavailable] = []
        for embedder in self._chain:
            try:
                return await embedder.embed(texts, dims=dims, purpose=purpose)
            except (EmbeddingFailed, EmbedderUnavailable) as exc:
                logger.warning("%s failed, trying the next embedder: %s", embedder.identity, exc)
                failures.append(exc)
        summary = "; ".join(str(f) for f in failures)
        if any(isinstance(f, EmbedderUnavailable) for f in failures):
            raise EmbedderUnavailable(f"every embedder failed: {summary}", retry_after=5)
        raise EmbeddingFailed(f"every embedder failed: {summary}")


class Embedders:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: httpx.AsyncClient | None = None
        self._cache: dict[EmbedderSpec, Embedder] = {}

    def for_tenant(self, tenant_id: str, spec: EmbedderSpec | None, what: str) -> Embedder:
        """The tenant's embedder, to embed ``what`` (for the error a tenant without one
        answers: "a text query", say)."""
        if spec is None:
            raise TenantHasNoEmbedder(tenant_id, what)
        return self.for_spec(spec)

    def for_spec(self, spec: EmbedderSpec) -> Embedder:
        embedder = self._cache.get(spec)
        if embedder is None:
            embedder = self._build(spec)
            if spec.fallbacks:
                embedder = FallbackEmbedder([embedder, *(self._build(f) for f in spec.fallbacks)])
            self._cache[spec] = embedder
        return embedder

    async def warm(self, spec: EmbedderSpec | None) -> None:
        """Load the local models of ``spec`` now (the API does for its default embedder at
        start), so that the first request does not wait for them."""
        for embedder in (spec, *spec.fallbacks) if spec is not None else ():
            if embedder.provider == "wordllama":
                from controlplane.embedding.wordllama import WordLlamaEmbedder

                await WordLlamaEmbedder(embedder.model).warm()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _build(self, spec: EmbedderSpec) -> Embedder:
        s = self._settings
        if spec.provider == "hash":
            return HashEmbedder(spec.model)
        if spec.provider == "wordllama":
            # numpy and tokenizers load when a tenant first needs them.
            from controlplane.embedding.wordllama import WordLlamaEmbedder

            return WordLlamaEmbedder(spec.model)
        # The HTTP providers (and httpx) load when a tenant first needs one.
        from controlplane.embedding._http import OpenAIEmbedder, VoyageEmbedder

        if spec.provider == "openai":
            return OpenAIEmbedder(
                spec,
                self._endpoint(s.embedding.openai_base_url, s.embedding.openai_api_key),
                self._http(),
            )
        if spec.provider == "voyage":
            if not s.embedding.voyage_api_key:
                raise NotConfigured(
                    f"{spec.identity} is not configured here: it needs TENANTVEC_VOYAGE_API_KEY"
                )
            return VoyageEmbedder(
                spec,
                self._endpoint(s.embedding.voyage_base_url, s.embedding.voyage_api_key),
                self._http(),
            )
        raise ConfigurationError(f"no embedder for provider {spec.provider!r}")

    def _endpoint(self, base_url: str, api_key: str | None) -> ProviderEndpoint:
        from controlplane.embedding._http import ProviderEndpoint

        s = self._settings
        return ProviderEndpoint(
            base_url=base_url,
            api_key=api_key,
            timeout=s.embedding.timeout_seconds,
            retry_seconds=s.embedding.retry_seconds,
            concurrency=s.embedding.concurrency,
        )

    def _http(self) -> httpx.AsyncClient:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
                follow_redirects=False,
            )
        return self._client
