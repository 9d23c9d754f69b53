"""Embedders against a real HTTP server speaking the OpenAI / Voyage wire formats."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.embedding import (
    Embedders,
    EmbedderSpec,
    Purpose,
    hash_embedding,
)
from controlplane.errors import (
    EmbedderUnavailable,
    EmbeddingFailed,
    InvalidRequest,
    NotConfigured,
)
from controlplane.settings import EmbeddingSettings, Settings
from tests.fakes.embeddings import FakeEmbeddings, Fault, fake_vector


def settings_for(fake: FakeEmbeddings, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings whose providers are ``fake``; ``overrides``: other embedding settings."""
    embedding = EmbeddingSettings(
        openai_base_url=fake.url,
        openai_api_key=fake.api_key,
        voyage_base_url=fake.url,
        voyage_api_key=fake.api_key,
        timeout_seconds=0.5,
        retry_seconds=4.0,
    )
    return Settings(home=tmp_path, embedding=embedding.replace(**overrides))


@pytest.fixture
async def embedders(fake_openai: FakeEmbeddings, tmp_path: Path) -> AsyncIterator[Embedders]:
    registry = Embedders(settings_for(fake_openai, tmp_path))
    try:
        yield registry
    finally:
        await registry.aclose()


OPENAI_SMALL = EmbedderSpec.parse("openai:text-embedding-3-small")


def test_specs_parse_and_refuse() -> None:
    assert EmbedderSpec.parse("hash").identity == "hash:v1"
    spec = EmbedderSpec.parse("voyage:voyage-3.5", ["openai:text-embedding-3-small"])
    assert str(spec) == "voyage:voyage-3.5 -> openai:text-embedding-3-small"
    assert EmbedderSpec.from_json(spec.to_json()) == spec
    for bad in ("cohere:embed-v3", "openai", "openai:", "openai:bad model"):
        with pytest.raises(InvalidRequest):
            EmbedderSpec.parse(bad)


def test_hash_embeddings_are_deterministic_unit_vectors_and_lexical() -> None:
    a = hash_embedding("Postgres stores the embeddings of every tenant", 256)
    assert a == hash_embedding("Postgres stores the embeddings of every tenant", 256)
    assert len(a) == 256
    assert math.isclose(sum(v * v for v in a), 1.0, rel_tol=1e-9)
    near = hash_embedding("every tenant stores embeddings in Postgres", 256)
    far = hash_embedding("a recipe for lemon cake with sugar", 256)

    def cos(x: list[float], y: list[float]) -> float:
        return sum(p * q for p, q in zip(x, y, strict=True))

    assert cos(a, near) > 0.4 > cos(a, far)
    blank = hash_embedding("  ?! ", 16)  # no words: still a direction, for cosine
    assert math.isclose(sum(v * v for v in blank), 1.0)


async def test_openai_wire_format_and_dimensions(
    embedders: Embedders, fake_openai: FakeEmbeddings
) -> None:
    result = await embedders.for_spec(OPENAI_SMALL).embed(
        ["alpha", "beta"], dims=12, purpose=Purpose.DOCUMENT
    )
    assert result.identity == "openai:text-embedding-3-small"
    assert result.vectors[1] == pytest.approx(fake_vector("text-embedding-3-small", "beta", 12))
    call = fake_openai.calls[-1]
    assert call.path == "/v1/embeddings"
    assert call.authorization == f"Bearer {fake_openai.api_key}"
    assert call.body["dimensions"] == 12 and call.body["input"] == ["alpha", "beta"]
    # A self-hosted model (Ollama, vLLM) is not sent 'dimensions', which it would refuse.
    other = await embedders.for_spec(EmbedderSpec.parse("openai:nomic-embed-text")).embed(
        ["alpha"], dims=fake_openai.native_dims, purpose=Purpose.QUERY
    )
    assert len(other.vectors[0]) == fake_openai.native_dims
    assert "dimensions" not in fake_openai.calls[-1].body


async def test_batches_stay_under_the_provider_limit(
    embedders: Embedders, fake_openai: FakeEmbeddings
) -> None:
    texts = [f"text {i}" for i in range(2050)]
    result = await embedders.for_spec(OPENAI_SMALL).embed(texts, dims=4, purpose=Purpose.DOCUMENT)
    assert sorted(len(c.body["input"]) for c in fake_openai.calls) == [2, 2048]
    assert result.vectors[2049] == pytest.approx(
        fake_vector("text-embedding-3-small", "text 2049", 4)
    )


async def test_429_is_retried_after_what_retry_after_says(
    embedders: Embedders, fake_openai: FakeEmbeddings
) -> None:
    fake_openai.fail_next(Fault(status=429, retry_after="1"))
    started = time.monotonic()
    result = await embedders.for_spec(OPENAI_SMALL).embed(["x"], dims=4, purpose=Purpose.QUERY)
    assert time.monotonic() - started >= 0.95  # it waited the second it was told to
    assert len(fake_openai.calls) == 2 and len(result.vectors) == 1


async def test_500_and_timeouts_are_retried(
    embedders: Embedders, fake_openai: FakeEmbeddings
) -> None:
    fake_openai.fail_next(Fault(status=500), Fault(status=503), Fault(delay=1.0))
    result = await embedders.for_spec(OPENAI_SMALL).embed(["x"], dims=4, purpose=Purpose.QUERY)
    assert len(result.vectors) == 1
    assert len(fake_openai.calls) == 4


async def test_a_provider_that_stays_down_is_unavailable_in_bounded_time(
    fake_openai: FakeEmbeddings, tmp_path: Path
) -> None:
    fake_openai.fail_next(*[Fault(status=500)] * 100)
    registry = Embedders(settings_for(fake_openai, tmp_path, retry_seconds=1.5))
    try:
        started = time.monotonic()
        with pytest.raises(EmbedderUnavailable, match="kept failing.*HTTP 500"):
            await registry.for_spec(OPENAI_SMALL).embed(["x"], dims=4, purpose=Purpose.QUERY)
        assert time.monotonic() - started < 10
    finally:
        await registry.aclose()


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault(dims=5), "returned 5 dimensions, the tenant expects 4"),
        (Fault(nan=True), "non-finite value"),
        (Fault(status=400), "refused the request \\(HTTP 400\\)"),
    ],
)
async def test_wrong_answers_fail_without_retrying(
    embedders: Embedders, fake_openai: FakeEmbeddings, fault: Fault, message: str
) -> None:
    fake_openai.fail_next(fault)
    with pytest.raises(EmbeddingFailed, match=message):
        await embedders.for_spec(OPENAI_SMALL).embed(["x", "y"], dims=4, purpose=Purpose.QUERY)
    assert len(fake_openai.calls) == 1


async def test_a_refused_key_never_reaches_the_error(
    fake_openai: FakeEmbeddings, tmp_path: Path
) -> None:
    wrong = "sk-wrong-key-abcdefghijklmnop"
    registry = Embedders(settings_for(fake_openai, tmp_path, openai_api_key=wrong))
    try:
        with pytest.raises(EmbeddingFailed, match="HTTP 401") as caught:
            await registry.for_spec(OPENAI_SMALL).embed(["x"], dims=4, purpose=Purpose.QUERY)
    finally:
        await registry.aclose()
    message = str(caught.value)
    assert "Incorrect API key" in message
    assert wrong not in message and wrong[:3] + "*****" not in message and wrong[-4:] not in message


async def test_voyage_wire_format(embedders: Embedders, fake_openai: FakeEmbeddings) -> None:
    spec = EmbedderSpec.parse("voyage:voyage-3.5")
    await embedders.for_spec(spec).embed(["q"], dims=6, purpose=Purpose.QUERY)
    body = fake_openai.calls[-1].body
    assert body["input_type"] == "query" and body["output_dimension"] == 6


async def test_voyage_needs_a_key(fake_openai: FakeEmbeddings, tmp_path: Path) -> None:
    registry = Embedders(settings_for(fake_openai, tmp_path, voyage_api_key=None))
    with pytest.raises(NotConfigured, match="TENANTVEC_VOYAGE_API_KEY"):
        registry.for_spec(EmbedderSpec.parse("voyage:voyage-3.5"))


async def test_fallback_takes_over_and_names_itself(
    embedders: Embedders, fake_openai: FakeEmbeddings
) -> None:
    spec = EmbedderSpec.parse("voyage:voyage-3.5", ["openai:text-embedding-3-small"])
    fake_openai.fail_next(Fault(status=400))  # voyage refuses
    result = await embedders.for_spec(spec).embed(["x"], dims=6, purpose=Purpose.DOCUMENT)
    assert result.identity == "openai:text-embedding-3-small"
    assert fake_openai.calls[-1].body["dimensions"] == 6
    fake_openai.fail_next(Fault(status=400), Fault(dims=3))  # both fail: nothing to store
    with pytest.raises(EmbeddingFailed, match="every embedder failed"):
        await embedders.for_spec(spec).embed(["x"], dims=6, purpose=Purpose.DOCUMENT)
