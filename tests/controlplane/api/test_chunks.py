"""Chunks by id through the real API: stable ids, one chunk written, read and deleted
without touching its siblings, ids unique in the tenant, batches all or nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from controlplane.client import Client
from controlplane.errors import ChunkIdTaken, InvalidRequest
from controlplane.retrieval import ChunkIn, ChunkWrite, DocumentIn, SearchRequest, UpsertRequest
from controlplane.retrieval._chunkids import chunk_id_sql
from controlplane.settings import Settings
from tests.fixtures.api import RunningApi, tenant_dsn


@pytest.fixture
def key(api: RunningApi, tenant_id: str) -> str:
    return api.new_tenant(tenant_id, dims=3, embedder="hash")


@pytest.fixture
def app(api: RunningApi, key: str) -> Iterator[Client]:
    with Client(api.url, key) as client:
        yield client


def _write(
    chunk_id: str, document_id: str, content: str, vector: list[float], **kw: Any
) -> ChunkWrite:
    return ChunkWrite(id=chunk_id, document_id=document_id, content=content, embedding=vector, **kw)


def test_whole_documents_get_stable_made_up_ids_and_keep_the_callers(
    app: Client, tenant_id: str
) -> None:
    doc = DocumentIn(
        id="guide",
        chunks=[
            ChunkIn(content="one", embedding=[1, 0, 0]),
            ChunkIn(content="two", embedding=[0, 1, 0], id="node-two"),
        ],
    )
    app.upsert(tenant_id, UpsertRequest(documents=[doc]))
    stored = app.get_document(tenant_id, "guide")
    assert [(c.id, c.ordinal) for c in stored.chunks] == [("guide#0", 0), ("node-two", 1)]
    hits = app.search(tenant_id, SearchRequest(vector=[0, 1, 0], k=1)).results
    assert (hits[0].chunk_id, hits[0].chunk) == ("node-two", 1)
    # A changed document re-upserted keeps the ids of the positions it keeps.
    doc.chunks[0].content = "one, changed"  # type: ignore[index]
    app.upsert(tenant_id, UpsertRequest(documents=[doc]))
    assert [c.id for c in app.get_document(tenant_id, "guide").chunks] == ["guide#0", "node-two"]


def test_chunks_added_in_two_calls_are_all_kept_and_one_is_replaced_alone(
    app: Client, tenant_id: str
) -> None:
    app.upsert(
        tenant_id,
        UpsertRequest(
            documents=[
                DocumentIn(
                    id="doc",
                    metadata={"lang": "en", "team": "a"},
                    chunks=[ChunkIn(content="first", embedding=[1, 0, 0])],
                )
            ]
        ),
    )
    first = app.upsert_chunks(tenant_id, [_write("n1", "doc", "node one", [0, 1, 0])])
    second = app.upsert_chunks(
        tenant_id,
        [
            _write("n2", "doc", "node two", [0, 0, 1], metadata={"team": "b"}),
            _write("n3", "new-doc", "elsewhere", [1, 1, 0]),
        ],
    )
    assert [(r.id, r.ordinal, r.status) for r in first.chunks] == [("n1", 1, "created")]
    assert [(r.id, r.document_id, r.ordinal) for r in second.chunks] == [
        ("n2", "doc", 2),
        ("n3", "new-doc", 0),
    ]
    chunks = app.get_document(tenant_id, "doc").chunks
    assert [c.id for c in chunks] == ["doc#0", "n1", "n2"]
    # Chunks carry their document's metadata under their own.
    assert chunks[2].metadata == {"lang": "en", "team": "b"}
    made = app.get_document(tenant_id, "new-doc")
    assert (made.title, made.metadata, [c.id for c in made.chunks]) == (None, {}, ["n3"])

    # Replace n1 in place: its ordinal stays, its siblings are untouched.
    replaced = app.upsert_chunks(tenant_id, [_write("n1", "doc", "node one, v2", [0, 1, 1])])
    assert [(r.ordinal, r.status) for r in replaced.chunks] == [(1, "updated")]
    fetched = app.fetch_chunks(tenant_id, ["n1", "doc#0", "nope"], include_embeddings=True)
    assert [(c.id, c.content) for c in fetched.chunks] == [
        ("n1", "node one, v2"),
        ("doc#0", "first"),
    ]
    assert fetched.chunks[0].embedding == pytest.approx([0, 1, 1])
    assert fetched.missing == ["nope"]
    hits = app.search(tenant_id, SearchRequest(vector=[0, 1, 1], k=1)).results
    assert (hits[0].chunk_id, hits[0].content) == ("n1", "node one, v2")


def test_deleting_a_chunk_leaves_its_siblings_and_its_document(app: Client, tenant_id: str) -> None:
    app.upsert_chunks(
        tenant_id,
        [_write(f"c{i}", "doc", f"chunk {i}", [1, i, 0]) for i in range(3)],
    )
    gone = app.delete_chunks(tenant_id, ["c1", "never"])
    assert (gone.deleted, gone.missing) == (1, ["never"])
    assert [c.id for c in app.get_document(tenant_id, "doc").chunks] == ["c0", "c2"]
    assert app.fetch_chunks(tenant_id, ["c1"]).missing == ["c1"]
    # A chunk added afterwards goes after the last one, not into the gap.
    added = app.upsert_chunks(tenant_id, [_write("c3", "doc", "chunk 3", [1, 3, 0])])
    assert added.chunks[0].ordinal == 3


def test_a_chunk_id_is_unique_in_the_tenant_and_a_clash_writes_nothing(
    app: Client, tenant_id: str
) -> None:
    app.upsert_chunks(tenant_id, [_write("shared", "a", "in a", [1, 0, 0])])
    with pytest.raises(ChunkIdTaken) as taken:
        app.upsert_chunks(
            tenant_id,
            [_write("fresh", "b", "in b", [0, 1, 0]), _write("shared", "b", "also b", [0, 0, 1])],
        )
    assert taken.value.status == 409 and "'shared'" in str(taken.value)
    assert app.fetch_chunks(tenant_id, ["fresh"]).missing == ["fresh"]
    # The same clash through a whole-document upsert, and with a made-up id.
    with pytest.raises(ChunkIdTaken):
        app.upsert(
            tenant_id,
            UpsertRequest(
                documents=[
                    DocumentIn(
                        id="c", chunks=[ChunkIn(content="c", embedding=[1, 0, 0], id="shared")]
                    )
                ]
            ),
        )
    app.upsert_chunks(tenant_id, [_write("d#0", "a", "an odd id", [1, 0, 0])])
    with pytest.raises(ChunkIdTaken):
        app.upsert(
            tenant_id,
            UpsertRequest(documents=[DocumentIn(id="d", chunks=[ChunkIn(content="d")])]),
        )
    assert app.count_documents(tenant_id).documents == 1  # "a" alone
    with pytest.raises(InvalidRequest, match="appears twice"):
        app.upsert_chunks(
            tenant_id, [_write("x", "a", "x", [1, 0, 0]), _write("x", "b", "x", [1, 0, 0])]
        )


def test_a_whole_document_upsert_after_chunk_writes_is_never_taken_for_unchanged(
    app: Client, tenant_id: str
) -> None:
    doc = DocumentIn(id="doc", chunks=[ChunkIn(content="base", embedding=[1, 0, 0])])
    app.upsert(tenant_id, UpsertRequest(documents=[doc]))
    app.upsert_chunks(tenant_id, [_write("extra", "doc", "added", [0, 1, 0])])
    again = app.upsert(tenant_id, UpsertRequest(documents=[doc]))
    assert again.documents[0].status == "updated"  # type: ignore[union-attr]
    assert [c.id for c in app.get_document(tenant_id, "doc").chunks] == ["doc#0"]
    app.delete_chunks(tenant_id, ["doc#0"])
    assert app.upsert(tenant_id, UpsertRequest(documents=[doc])).documents[0].status == "updated"  # type: ignore[union-attr]


def test_concurrent_writers_to_one_document_get_distinct_ordinals(
    api: RunningApi, app: Client, key: str, tenant_id: str
) -> None:
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            with Client(api.url, key) as own:
                for i in range(15):
                    own.upsert_chunks(
                        tenant_id, [_write(f"{name}-{i}", "busy", f"{name} {i}", [1, i, 0])]
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("w1", "w2", "w3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ordinals = [c.ordinal for c in app.get_document(tenant_id, "busy").chunks]
    assert ordinals == list(range(45))


def test_a_lookup_by_chunk_id_uses_the_tenants_index(
    app: Client, tenant_id: str, pg_settings: Settings
) -> None:
    app.upsert_chunks(tenant_id, [_write(f"c{i}", f"d{i % 7}", "x", [1, i, 0]) for i in range(200)])
    with psycopg.connect(tenant_dsn(pg_settings, tenant_id)) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            str(row[0])
            for row in conn.execute(
                f"EXPLAIN SELECT 1 FROM chunks WHERE {chunk_id_sql()} = ANY(%s)",
                (["c5", "c9"],),
            )
        )
    assert "chunks_chunk_id_idx" in plan, plan
