"""The search filter, property-based: through the real search, a filter returns exactly
the chunks a model in Python says -- JSON containment for plain filters, the operator
language's meaning for the rest -- or, for a filter the checks refuse, InvalidRequest
naming what is wrong, and nothing else. A selective filter uses the metadata index."""

from __future__ import annotations

import asyncio
import random
import re
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
from controlplane.retrieval._filters import compile_filter
from controlplane.retrieval.documents import upsert_documents
from controlplane.retrieval.search import search
from controlplane.routing import TenantRouter
from controlplane.settings import Settings
from tenantvec_schema.spec import IndexKind, IndexSpec

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


# -- the operators ----------------------------------------------------------------------

OP_SCALARS = st.sampled_from(["en", "de", "x", "", 1, 2, 2.5, True, False, None])
ORDERED = st.sampled_from(["de", "en", "x", "", 0, 1, 2, 2.5])


def _field_ops() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda v: {"$eq": v}, OP_SCALARS),
        st.builds(lambda v: {"$ne": v}, OP_SCALARS),
        st.builds(lambda op, v: {op: v}, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), ORDERED),
        st.builds(lambda v: {"$in": v}, st.lists(OP_SCALARS, min_size=1, max_size=3)),
        st.builds(lambda v: {"$nin": v}, st.lists(OP_SCALARS, min_size=1, max_size=3)),
        st.builds(lambda v: {"$exists": v}, st.booleans()),
        st.builds(lambda a, b: {"$gte": a, "$lt": b}, ORDERED, ORDERED),
    )


CONDITIONS = st.recursive(
    st.dictionaries(
        st.sampled_from(KEYS), st.one_of(_field_ops(), OP_SCALARS), min_size=1, max_size=2
    ),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"$and": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"$or": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"$not": x}, inner),
    ),
    max_leaves=5,
)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _passes(item: Any, op: str, literal: Any) -> bool:
    """SQL/JSON path comparison: values of one type only."""
    if _kind(item) != _kind(literal):
        return False
    if op == "$eq":
        return bool(item == literal)
    if _kind(literal) in ("bool", "null"):
        return False
    return {"$gt": item > literal, "$gte": item >= literal, "$lt": item < literal,
            "$lte": item <= literal}[op]  # fmt: skip


def matches(meta: dict[str, Any], condition: dict[str, Any]) -> bool:
    """The filter language's meaning, in Python: the model the SQL is held to."""
    for key, want in condition.items():
        if key == "$and":
            ok = all(matches(meta, c) for c in want)
        elif key == "$or":
            ok = any(matches(meta, c) for c in want)
        elif key == "$not":
            ok = not matches(meta, want)
        else:
            have = meta.get(key)
            items = [] if key not in meta else have if isinstance(have, list) else [have]
            ops = want if isinstance(want, dict) else {"$eq": want}
            ok = True
            for op, value in ops.items():
                if op == "$exists":
                    ok = ok and (key in meta) == value
                elif op in ("$in", "$nin"):
                    some = any(_passes(i, "$eq", v) for i in items for v in value)
                    ok = ok and (some if op == "$in" else not some)
                elif op == "$ne":
                    ok = ok and not any(_passes(i, "$eq", value) for i in items)
                else:
                    ok = ok and any(_passes(i, op, value) for i in items)
        if not ok:
            return False
    return True


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(CONDITIONS)
def test_operator_filters_find_exactly_what_the_model_says(
    corpus: Corpus, flt: dict[str, Any]
) -> None:
    # Without any operator a filter is plain containment (as it was before operators).
    model = matches if compile_filter(flt).kind == "jsonpath" else contains
    expected = {doc for doc, meta in corpus.metadata.items() if model(meta, flt)}
    assert corpus.found(flt) == expected, flt


@pytest.mark.parametrize(
    ("flt", "named"),
    [
        ({"lang": {"$regex": "e.*"}}, "'$regex'"),
        ({"$nor": [{"lang": "en"}]}, "'$nor'"),
        ({"lang": {"$and": [{"$eq": "en"}]}}, "'$and'"),
        ({"lang": {"$in": "en"}}, "$in"),
        ({"lang": {"$exists": "yes"}}, "$exists"),
        ({"n": {"$gt": True}}, "$gt"),
        ({"n": {"$gt": float("nan")}}, "finite"),
        ({"$or": []}, "$or"),
        ({"meta": {"$eq": {"n": 1}}}, "$eq"),
        ({"lang": {"$eq": "a\x00b"}}, "NUL"),
    ],
)
def test_a_bad_filter_is_refused_naming_the_operator(
    corpus: Corpus, flt: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(named)):
        corpus.found(flt)


def test_keys_and_values_cannot_break_out_of_the_path(corpus: Corpus) -> None:
    # Quotes and operators inside a key or a value are data: they match nothing here.
    for flt in (
        {'lang" || true || "': {"$ne": "x"}},
        {"lang": {"$eq": 'en") || true || ("'}},
        {"lang": {"$in": ["\\u0000", "') OR 1=1 --"]}},
    ):
        expected = {doc for doc, meta in corpus.metadata.items() if matches(meta, flt)}
        assert corpus.found(flt) == expected, flt


async def test_a_selective_operator_filter_uses_the_metadata_index(
    plane: ControlPlane, tenant_id: str
) -> None:
    request = TenantRequest(id=tenant_id, dims=3, index=IndexSpec(kind=IndexKind.NONE))
    await create_tenant(plane, request, actor="test")
    try:
        async with TenantRouter.open(plane) as router:
            documents = [
                DocumentIn(
                    id=f"d{i}",
                    chunks=[ChunkIn(content=f"c{i}", embedding=[1.0, i / 3000, 0.0])],
                    metadata={"lang": "xx" if i % 300 == 0 else "en", "year": 2000 + i % 25},
                )
                for i in range(3000)
            ]
            for start in range(0, 3000, 1000):
                batch = UpsertRequest(documents=documents[start : start + 1000])
                await upsert_documents(router, tenant_id, batch)
            flt = {"lang": {"$eq": "xx"}, "year": {"$gte": 2000}}
            found = await search(
                router, tenant_id, SearchRequest(vector=[1, 0, 0], k=100, filter=flt)
            )
            assert {h.document_id for h in found.results} == {f"d{i}" for i in range(0, 3000, 300)}
            path = compile_filter(flt).value

            async def plan(tc: Any) -> str:
                await tc.conn.execute("ANALYZE chunks")
                async with tc.conn.transaction():
                    await tc.conn.execute("SET LOCAL enable_seqscan = off")
                    cur = await tc.conn.execute(
                        "EXPLAIN SELECT document_id FROM chunks WHERE metadata @@ %s::jsonpath",
                        (path,),
                    )
                    return "\n".join(row[0] for row in await cur.fetchall())

            # With the sequential scan priced out, the plan is a bitmap scan of the GIN
            # index: the compiled path is one the index can answer (on 3,000 tiny rows a
            # sequential scan is cheaper still; on a real tenant's table it is not).
            explained = await router.read(tenant_id, plan)
            assert "Bitmap Index Scan on chunks_metadata_idx" in explained, explained
    finally:
        await delete_tenant(plane, tenant_id, actor="test")
