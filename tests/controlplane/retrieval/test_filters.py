"""The search filter, property-based: through the real search, a filter returns exactly
the chunks whose metadata contains it (JSON containment, as a model in Python says) --
or, for a filter the checks refuse, InvalidRequest and nothing else."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.errors import InvalidRequest
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.plane import ControlPlane
from controlplane.retrieval import ChunkIn, DocumentIn, SearchRequest, UpsertRequest
from controlplane.retrieval.documents import upsert_documents
from controlplane.retrieval.search import search
from controlplane.routing import TenantRouter
from controlplane.settings import Settings
from tenant_schema.spec import IndexKind, IndexSpec

# Small vocabularies, so that random filters match some chunks and miss others.
KEYS = ["lang", "team", "tags", "n", "meta"]
SCALARS = st.sampled_from(["en", "de", "x", 1, 2, 2.0, True, False, None, ""])
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=2)
    ),
    max_leaves=6,
)
FILTERS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3)
CHUNKS = 40


def contains(have: Any, want: Any) -> bool:
    """Postgres's ``have @> want`` below the top level (jsonb containment)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(
            key in have and contains(have[key], value) for key, value in want.items()
        )
    if isinstance(want, list):
        return isinstance(have, list) and all(any(contains(h, w) for h in have) for w in want)
    if isinstance(want, bool) or isinstance(have, bool) or want is None or have is None:
        return type(have) is type(want) and have == want
    if isinstance(want, int | float):
        return isinstance(have, int | float) and float(have) == float(want)
    return bool(have == want)


class Corpus:
    """A tenant holding CHUNKS chunks with varied metadata, searched through a router;
    one event loop for the module, driven from the (synchronous) property tests."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.settings = settings
        self.tenant = f"filters-{uuid.uuid4().hex[:8]}"
        self.metadata: dict[str, dict[str, Any]] = {}

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def open(self) -> None:
        self._plane_cm = ControlPlane.open(self.settings)
        self.plane = await self._plane_cm.__aenter__()
        self._router_cm = TenantRouter.open(self.plane)
        self.router = await self._router_cm.__aenter__()
        # Exact search: every chunk is a candidate, so the filter alone decides.
        request = TenantRequest(id=self.tenant, dims=3, index=IndexSpec(kind=IndexKind.NONE))
        await create_tenant(self.plane, request, actor="test")
        rng = random.Random(11)
        documents = []
        for n in range(CHUNKS):
            meta: dict[str, Any] = {}
            for key in rng.sample(KEYS, rng.randint(0, len(KEYS))):
                meta[key] = rng.choice(
                    ["en", "de", "", 1, 2.0, True, False, None, ["en", "x"], [1, 2, [2]],
                     {"n": 1, "lang": "en"}, {"tags": ["x", {"n": 2}]}, []]
                )  # fmt: skip
            self.metadata[f"d{n}"] = meta
            chunk = ChunkIn(content=f"chunk {n}", embedding=[1.0, n / CHUNKS, 0.5])
            documents.append(DocumentIn(id=f"d{n}", chunks=[chunk], metadata=meta))
        await upsert_documents(self.router, self.tenant, UpsertRequest(documents=documents))

    async def close(self) -> None:
        await delete_tenant(self.plane, self.tenant, actor="test")
        await self._router_cm.__aexit__(None, None, None)
        await self._plane_cm.__aexit__(None, None, None)

    def found(self, flt: dict[str, Any]) -> set[str]:
        request = SearchRequest(vector=[1.0, 0.0, 0.0], k=100, filter=flt, include_content=False)
        answer = self.run(search(self.router, self.tenant, request))
        return {hit.document_id for hit in answer.results}


@pytest.fixture(scope="module")
def corpus(pg_settings: Settings) -> Iterator[Corpus]:
    corpus = Corpus(pg_settings)
    corpus.run(corpus.open())
    try:
        yield corpus
    finally:
        corpus.run(corpus.close())
        corpus.loop.close()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(FILTERS)
def test_a_filter_finds_exactly_the_chunks_that_contain_it(
    corpus: Corpus, flt: dict[str, Any]
) -> None:
    expected = {doc for doc, meta in corpus.metadata.items() if contains(meta, flt)}
    assert corpus.found(flt) == expected, flt


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers(), max_size=3))
def test_any_filter_is_answered_or_refused_cleanly(corpus: Corpus, flt: dict[str, Any]) -> None:
    try:
        found = corpus.found(flt)
    except InvalidRequest:
        return
    expected = {doc for doc, meta in corpus.metadata.items() if contains(meta, flt)}
    assert found == expected, flt
