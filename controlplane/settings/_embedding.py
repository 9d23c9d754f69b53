"""Settings of the embedders: the default one, and the HTTP providers' URLs and keys."""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.envparse import (
    parse_positive_float,
    parse_positive_int,
)
from controlplane.settings._fields import SettingsGroup, setting

__all__ = ["EmbeddingSettings"]


@dataclass(frozen=True, kw_only=True)
class EmbeddingSettings(SettingsGroup):
    concern = "the embedding providers"

    default: str = setting(
        "TENANTVEC_EMBEDDER",
        "Embedder of tenants created with neither an embedder nor dims (dims alone make "
        "a tenant for the caller's own vectors), as provider:model: wordllama (offline, "
        "semantic, 256 dims), hash (offline, lexical, any dims), openai:MODEL, "
        "voyage:MODEL; or none.",
        default="wordllama",
    )
    openai_base_url: str = setting(
        "TENANTVEC_OPENAI_BASE_URL",
        "Base URL of the OpenAI-compatible embeddings API (OpenAI, or an Ollama, vLLM, "
        "TEI or LiteLLM server: it must answer POST <url>/embeddings).",
        default="https://api.openai.com/v1",
        url=True,
    )
    openai_api_key: str | None = setting(
        "TENANTVEC_OPENAI_API_KEY",
        "Bearer key for TENANTVEC_OPENAI_BASE_URL (none for servers that take no key).",
        secret=True,
    )
    voyage_base_url: str = setting(
        "TENANTVEC_VOYAGE_BASE_URL",
        "Base URL of the Voyage AI API.",
        default="https://api.voyageai.com/v1",
        url=True,
    )
    voyage_api_key: str | None = setting(
        "TENANTVEC_VOYAGE_API_KEY",
        "API key for Voyage AI (required by voyage:* embedders).",
        secret=True,
    )
    timeout_seconds: float = setting(
        "TENANTVEC_EMBED_TIMEOUT_SECONDS",
        "How long one embedding request may take before it counts as failed (and is retried).",
        default=30.0,
        parse=parse_positive_float,
        positive=True,
    )
    retry_seconds: float = setting(
        "TENANTVEC_EMBED_RETRY_SECONDS",
        "How long an embedding request is retried on 429, 5xx and timeouts (honouring "
        "Retry-After) before the provider is called unavailable.",
        default=60.0,
        parse=parse_positive_float,
        positive=True,
    )
    concurrency: int = setting(
        "TENANTVEC_EMBED_CONCURRENCY",
        "Embedding requests one process sends to one provider model at once.",
        default=4,
        parse=parse_positive_int,
        positive=True,
    )
