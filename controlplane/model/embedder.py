"""Which embedding model a tenant uses: ``provider:model``, with optional fallbacks -- or
none at all.

Recorded in the catalog per tenant. The spec says *which* model; where a provider lives
and its API key are settings of the control plane (``TENANTVEC_OPENAI_*``,
``TENANTVEC_VOYAGE_*``), so no secret is ever stored with a tenant.

A tenant without an embedder (``none``) stores the vectors its callers send -- OpenAI or
Voyage embeddings computed in the application, a Chroma collection's -- and searches by
the vectors they send; text alone is refused with a way out (``set-embedder``), since
tenantvec cannot know which model made the stored vectors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from controlplane.errors import InvalidRequest
from controlplane.inputs import check_identifier

__all__ = [
    "NO_EMBEDDER",
    "PROVIDERS",
    "EmbedderChoice",
    "EmbedderSpec",
    "NoEmbedder",
    "describe_embedder",
    "embedder_from_json",
    "embedder_json",
    "parse_embedder",
]

# wordllama: offline static embeddings bundled with the wordllama package (semantic);
# hash: offline feature hashing (lexical); openai: the OpenAI embeddings wire format
# (OpenAI, Azure-style gateways, Ollama, vLLM, TEI, LiteLLM); voyage: Voyage AI.
PROVIDERS = ("wordllama", "hash", "openai", "voyage")
_DEFAULT_MODELS = {"wordllama": "l2_supercat", "hash": "v1"}
# Models that make vectors of fixed sizes, the natural size first. WordLlama is trained
# with Matryoshka loss: the leading 64 or 128 of its 256 dimensions work on their own.
# Only l2_supercat's weights ship inside the wordllama wheel, so only it works offline.
_FIXED_DIMS = {("wordllama", "l2_supercat"): (256, 128, 64)}
_MODEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}")  # whole string
_MAX_FALLBACKS = 3


@dataclass(frozen=True)
class EmbedderSpec:
    provider: str
    model: str
    # Tried in order when the provider before them fails; see docs/ingestion.md.
    fallbacks: tuple[EmbedderSpec, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise InvalidRequest(
                f"unknown embedding provider {self.provider!r}; use one of {', '.join(PROVIDERS)}"
            )
        check_identifier(
            self.model,
            _MODEL_RE,
            "embedding model name",
            "letters, digits and . _ : / @ + -, at most 200",
        )
        if self.provider == "wordllama" and (self.provider, self.model) not in _FIXED_DIMS:
            raise InvalidRequest(
                f"wordllama has no model {self.model!r} here: it ships l2_supercat "
                "(write wordllama or wordllama:l2_supercat)"
            )
        if len(self.fallbacks) > _MAX_FALLBACKS:
            raise InvalidRequest(f"at most {_MAX_FALLBACKS} fallback embedders")
        for fallback in self.fallbacks:
            if fallback.fallbacks:
                raise InvalidRequest("a fallback embedder cannot have fallbacks of its own")

    @classmethod
    def parse(cls, text: str, fallbacks: list[str] | tuple[str, ...] = ()) -> EmbedderSpec:
        """``provider:model`` (``wordllama`` or ``hash`` alone is enough), e.g.
        ``openai:text-embedding-3-small``."""
        provider, sep, model = text.strip().partition(":")
        if not sep:
            model = _DEFAULT_MODELS.get(provider, "")
            if not model:
                raise InvalidRequest(
                    f"embedder {text!r} needs a model: write it as provider:model, "
                    "e.g. openai:text-embedding-3-small"
                )
        return cls(
            provider=provider,
            model=model,
            fallbacks=tuple(cls.parse(f) for f in fallbacks),
        )

    @property
    def native_dims(self) -> int | None:
        """The dimensions this model makes when not told otherwise; None where any
        number works (hash) or tenantvec cannot know (a remote model)."""
        sizes = _FIXED_DIMS.get((self.provider, self.model))
        return sizes[0] if sizes else None

    def check_dims(self, dims: int) -> None:
        """Refuse a tenant size this embedder (or one of its fallbacks) cannot fill."""
        for spec in (self, *self.fallbacks):
            sizes = _FIXED_DIMS.get((spec.provider, spec.model))
            if sizes and dims not in sizes:
                raise InvalidRequest(
                    f"{spec.identity} makes vectors of {_or_list(sizes)} dimensions, not {dims}: "
                    f"use dims {sizes[0]} (or leave dims out to get it)"
                )

    @property
    def identity(self) -> str:
        """What a chunk records as the model that embedded it: ``provider:model``."""
        return f"{self.provider}:{self.model}"

    def __str__(self) -> str:
        chain = [self.identity, *(f.identity for f in self.fallbacks)]
        return " -> ".join(chain)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"provider": self.provider, "model": self.model}
        if self.fallbacks:
            data["fallbacks"] = [f.to_json() for f in self.fallbacks]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EmbedderSpec:
        return cls(
            provider=str(data["provider"]),
            model=str(data["model"]),
            fallbacks=tuple(cls.from_json(f) for f in data.get("fallbacks", ())),
        )


def _or_list(sizes: tuple[int, ...]) -> str:
    *head, last = (str(n) for n in sizes)
    return f"{', '.join(head)} or {last}" if head else last


class NoEmbedder(Enum):
    """The explicit choice of no embedder (``--embedder none``), as opposed to saying
    nothing (the control plane's default applies)."""

    NONE = "none"


NO_EMBEDDER = NoEmbedder.NONE
# What a caller may choose for a tenant: a model, or none.
EmbedderChoice = EmbedderSpec | Literal[NoEmbedder.NONE]


def parse_embedder(
    text: str, fallbacks: list[str] | tuple[str, ...] = ()
) -> EmbedderSpec | Literal[NoEmbedder.NONE]:
    """``none``, or what :meth:`EmbedderSpec.parse` takes."""
    if text.strip() == NO_EMBEDDER.value:
        if fallbacks:
            raise InvalidRequest("fallbacks need an embedder to fall back from, not none")
        return NO_EMBEDDER
    return EmbedderSpec.parse(text, fallbacks)


# How the catalog and backup files write "no embedder". An empty object is older
# catalogs' way of saying "the hash embedder" (rows from before tenants had one).
_NONE_JSON = {"provider": NO_EMBEDDER.value}


def embedder_json(spec: EmbedderSpec | None) -> dict[str, Any]:
    return spec.to_json() if spec is not None else dict(_NONE_JSON)


def embedder_from_json(data: dict[str, Any] | None) -> EmbedderSpec | None:
    if data is None or data == _NONE_JSON:
        return None
    if not data:
        return EmbedderSpec.parse("hash")
    return EmbedderSpec.from_json(data)


def describe_embedder(spec: EmbedderSpec | None) -> str:
    """For people: the chain of models, or what a tenant without one does."""
    return str(spec) if spec is not None else "none (vectors sent by callers)"
