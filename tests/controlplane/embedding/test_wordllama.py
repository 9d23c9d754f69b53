"""The offline ``wordllama`` embedder: faithful to WordLlama, semantic, the default."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from controlplane.embedding import Embedders, EmbedderSpec, Purpose, hash_embedding
from controlplane.embedding.wordllama import wordllama_embeddings
from controlplane.errors import InvalidRequest
from controlplane.model.request import DEFAULT_DIMS, TenantRequest
from controlplane.settings import Settings
from tests.fixtures.api import RunningApi

WORDLLAMA = EmbedderSpec.parse("wordllama")
MODEL = "l2_supercat"


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_wordllama_is_the_default_and_fixes_the_tenant_size(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)  # no TENANTVEC_* variables: the defaults
    default = EmbedderSpec.parse(settings.embedding.default)
    assert default == WORDLLAMA and default.identity == "wordllama:l2_supercat"
    assert default.native_dims == 256
    # A tenant that names neither embedder nor dims gets the default and its own size;
    # one that names a size-free embedder keeps the general default size.
    plain = TenantRequest(id="acme").resolve(default)
    assert plain.dims == 256 and plain.resolved_embedder == WORDLLAMA
    cut = TenantRequest(id="acme", dims=128, embedder=WORDLLAMA).resolve(default)
    assert cut.dims == 128 and cut.resolved_embedder == WORDLLAMA
    hashed = TenantRequest(id="acme", embedder=EmbedderSpec.parse("hash")).resolve(default)
    assert hashed.dims == DEFAULT_DIMS and hashed.embedder == EmbedderSpec.parse("hash")


def test_sizes_it_cannot_make_are_refused_up_front() -> None:
    with pytest.raises(InvalidRequest, match=r"256, 128 or 64 dimensions, not 3: use dims 256"):
        TenantRequest(id="acme", dims=3, embedder=WORDLLAMA)
    with pytest.raises(InvalidRequest, match="not 1536"):
        TenantRequest(id="acme", dims=1536, embedder=WORDLLAMA).resolve(WORDLLAMA)
    # A fallback must fit the tenant too.
    chained = EmbedderSpec.parse("hash", ["wordllama"])
    with pytest.raises(InvalidRequest, match="wordllama:l2_supercat makes"):
        chained.check_dims(1024)
    chained.check_dims(64)
    with pytest.raises(InvalidRequest, match="it ships l2_supercat"):
        EmbedderSpec.parse("wordllama:l3_supercat")


@pytest.mark.parametrize("dims", [256, 128, 64])
def test_vectors_are_wordllamas_own_pooling_cut_to_size(dims: int) -> None:
    """The same directions as the library's ``embed``, its Matryoshka truncations too."""
    import wordllama

    reference = wordllama.WordLlama.load(
        cache_dir=Path(wordllama.__file__).parent, disable_download=True
    )
    texts = ["hello world", "How do I import from ChromaDB?", "Ünïcödé — and emoji 🚀", "x" * 5000]
    theirs = reference.embed(texts)[:, :dims]
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)
    ours = np.array(wordllama_embeddings(texts, dims, MODEL))
    assert ours.shape == (len(texts), dims)
    assert np.allclose((ours * theirs).sum(axis=1), 1.0, atol=1e-5)


def test_texts_with_no_tokens_long_texts_and_nul_bytes() -> None:
    texts = ["", "   ", "\x00", "a\x00b", "word " * 200_000]  # the last: ~200k tokens
    vectors = wordllama_embeddings(texts, 256, MODEL)
    for vector in vectors:
        assert len(vector) == 256 and all(math.isfinite(v) for v in vector)
        assert math.isclose(math.fsum(v * v for v in vector), 1.0, rel_tol=1e-5)
    # No tokens at all: a fixed direction, so the text can be stored and compared.
    assert vectors[0] == [1.0] + [0.0] * 255
    # A long text is summed in slices: the same direction as a short one saying the same.
    assert cosine(vectors[4], wordllama_embeddings(["word"], 256, MODEL)[0]) > 0.999


def test_it_is_semantic_where_hash_is_lexical() -> None:
    """Pairs that share no word: wordllama places them near, hash cannot."""
    related = [
        ("How do I get my money back?", "Refund policy for returned purchases"),
        ("The physician prescribed medication", "A doctor gave the patient some pills"),
        ("automobile repair shop", "garage that fixes cars"),
    ]
    unrelated = [
        ("How do I get my money back?", "The physician prescribed medication"),
        ("automobile repair shop", "Refund policy for returned purchases"),
        ("A doctor gave the patient some pills", "garage that fixes cars"),
    ]

    def margin(embed: object) -> float:
        def sim(a: str, b: str) -> float:
            return cosine(*embed(a, b))  # type: ignore[operator]

        near = min(sim(a, b) for a, b in related)
        far = max(sim(a, b) for a, b in unrelated)
        return near - far

    def by_wordllama(a: str, b: str) -> list[list[float]]:
        return wordllama_embeddings([a, b], 256, MODEL)

    def by_hash(a: str, b: str) -> list[list[float]]:
        return [hash_embedding(a, 256), hash_embedding(b, 256)]

    assert margin(by_wordllama) > 0.1  # every related pair above every unrelated one
    assert margin(by_hash) < 0.05


async def test_the_registry_builds_and_warms_it(tmp_path: Path) -> None:
    registry = Embedders(Settings(home=tmp_path))
    try:
        await registry.warm(WORDLLAMA)
        embedder = registry.for_spec(WORDLLAMA)
        small = await embedder.embed(["refund"], dims=64, purpose=Purpose.QUERY)
        large = await embedder.embed(["refund policy"] * 500, dims=64, purpose=Purpose.DOCUMENT)
        assert small.identity == large.identity == "wordllama:l2_supercat"
        assert len(small.vectors[0]) == 64 and len(large.vectors) == 500
    finally:
        await registry.aclose()


def test_a_wordllama_tenant_searches_by_meaning(api: RunningApi, tenant_id: str) -> None:
    """Through the real API: created without dims, it gets 256; a query sharing no word
    with its answer finds it."""
    key = api.new_tenant(tenant_id, dims=None, embedder="wordllama")
    with api.client(key) as client:
        tenant = client.get("/v1/whoami").json()
        assert tenant["tenant"] == tenant_id
        documents = [
            {"id": "refunds", "text": "Refund policy: returned purchases are reimbursed."},
            {"id": "shipping", "text": "Parcels are dispatched by courier within two days."},
            {"id": "security", "text": "Passwords are stored hashed with a per-user salt."},
        ]
        put = client.put(f"/v1/tenants/{tenant_id}/documents", json={"documents": documents})
        assert put.status_code == 200, put.text
        found = client.post(
            f"/v1/tenants/{tenant_id}/search", json={"text": "How do I get my money back?", "k": 1}
        )
        assert found.status_code == 200, found.text
        assert found.json()["results"][0]["document_id"] == "refunds"
    with api.admin() as admin:
        shown = admin.get(f"/v1/tenants/{tenant_id}").json()
        assert shown["dims"] == 256 and shown["embedder"]["provider"] == "wordllama"
        refused = admin.post(
            "/v1/tenants", json={"id": f"{tenant_id}-x", "dims": 3, "embedder": "wordllama"}
        )
        assert refused.status_code == 400
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "use dims 256" in refused.json()["detail"]
