"""The data plane through a real server: upsert, read, search, delete, stats, bad input."""

from __future__ import annotations

import math
from collections.abc import Callable

import psycopg
import pytest

from tests.fixtures.api import RunningApi

PROBLEM = "application/problem+json"


def doc(doc_id: str, *vectors: list[float], **metadata: object) -> dict[str, object]:
    return {
        "id": doc_id,
        "title": f"title of {doc_id}",
        "metadata": dict(metadata),
        "chunks": [
            {"content": f"{doc_id} chunk {i}", "embedding": v, "metadata": {"i": i}}
            for i, v in enumerate(vectors)
        ],
    }


@pytest.fixture
def tenant(api: RunningApi, tenant_id: str) -> tuple[str, str]:
    return tenant_id, api.new_tenant(tenant_id, dims=3)


def test_upsert_search_get_delete_roundtrip(api: RunningApi, tenant: tuple[str, str]) -> None:
    tid, key = tenant
    with api.client(key) as client:
        put = client.put(
            f"/v1/tenants/{tid}/documents",
            json={
                "documents": [
                    doc("doc-1", [1, 0, 0], [0.9, 0.1, 0], lang="en"),
                    doc("doc-2", [0, 1, 0], lang="de"),
                ]
            },
        )
        assert put.status_code == 200, put.text
        assert [d["status"] for d in put.json()["documents"]] == ["created", "created"]

        found = client.post(f"/v1/tenants/{tid}/search", json={"vector": [1, 0, 0], "k": 2})
        assert found.status_code == 200, found.text
        hits = found.json()["results"]
        assert [(h["document_id"], h["chunk"]) for h in hits] == [("doc-1", 0), ("doc-1", 1)]
        assert hits[0]["score"] == pytest.approx(1.0)
        assert hits[0]["content"] == "doc-1 chunk 0"
        # chunks carry their document's metadata, their own keys added
        assert hits[0]["metadata"] == {"lang": "en", "i": 0}

        filtered = client.post(
            f"/v1/tenants/{tid}/search",
            json={"vector": [1, 0, 0], "k": 10, "filter": {"lang": "de"}},
        ).json()["results"]
        assert [h["document_id"] for h in filtered] == ["doc-2"]

        floor = client.post(
            f"/v1/tenants/{tid}/search",
            json={"vector": [1, 0, 0], "k": 10, "min_similarity": 0.5, "include_content": False},
        ).json()["results"]
        assert {h["document_id"] for h in floor} == {"doc-1"}
        assert all("content" not in h for h in floor)

        again = client.put(
            f"/v1/tenants/{tid}/documents",
            json={"documents": [doc("doc-1", [1, 0, 0], [0.9, 0.1, 0], lang="en")]},
        )
        assert again.json()["documents"][0]["status"] == "unchanged"
        changed = client.put(
            f"/v1/tenants/{tid}/documents", json={"documents": [doc("doc-1", [0, 0, 1])]}
        )
        assert changed.json()["documents"][0] == {"id": "doc-1", "status": "updated", "chunks": 1}

        got = client.get(f"/v1/tenants/{tid}/documents/doc-1", params={"include_embeddings": True})
        assert got.status_code == 200
        assert [c["embedding"] for c in got.json()["chunks"]] == [[0, 0, 1]]

        stats = client.get(f"/v1/tenants/{tid}/stats").json()
        assert stats["documents"] == 2 and stats["chunks"] == 2
        assert stats["schema_version"] >= 1 and stats["index_bytes"] > 0

        assert client.delete(f"/v1/tenants/{tid}/documents/doc-1").status_code == 204
        gone = client.get(f"/v1/tenants/{tid}/documents/doc-1")
        assert gone.status_code == 404
        assert gone.headers["content-type"].startswith(PROBLEM)
        assert gone.json()["detail"] == f"document 'doc-1' not found in tenant '{tid}'"
        assert client.delete(f"/v1/tenants/{tid}/documents/doc-1").status_code == 404


def _count_rows(api: RunningApi, tid: str, key: str) -> tuple[int, int]:
    with api.client(key) as client:
        stats = client.get(f"/v1/tenants/{tid}/stats").json()
    return stats["documents"], stats["chunks"]


BAD_UPSERTS = [
    # (body, status, words the detail must contain)
    ({"documents": [doc("a", [1, 0])]}, 400, "expects 3 dimensions, got 2"),
    ({"documents": [doc("a", [1, 0, 0]), doc("a", [0, 1, 0])]}, 400, "appears twice"),
    ({"documents": [doc("a", [1e39, 0, 0])]}, 400, "float4"),
    ({"documents": [doc("a", [0, 0, 0])]}, 400, "all zeros"),
    ({"documents": [{**doc("a", [1, 0, 0]), "colour": "red"}]}, 400, "unknown field"),
    ({"documents": []}, 400, "length >= 1"),
    ({"docs": []}, 400, "unknown field"),
    ({"documents": [{"id": "", "chunks": []}]}, 400, "length >= 1"),
]


@pytest.mark.parametrize(("body", "status", "words"), BAD_UPSERTS)
def test_bad_upserts_are_refused_and_write_nothing(
    api: RunningApi, tenant: tuple[str, str], body: dict[str, object], status: int, words: str
) -> None:
    tid, key = tenant
    with api.client(key) as client:
        ok = client.put(
            f"/v1/tenants/{tid}/documents", json={"documents": [doc("keep", [1, 0, 0])]}
        )
        assert ok.status_code == 200
        # A good document first in the batch: it must not be written either.
        if "documents" in body and body["documents"]:
            body = {"documents": [doc("good", [0, 1, 0]), *body["documents"]]}  # type: ignore[list-item]
        bad = client.put(f"/v1/tenants/{tid}/documents", json=body)
    assert bad.status_code == status, bad.text
    assert bad.headers["content-type"].startswith(PROBLEM)
    assert words in bad.json()["detail"]
    assert _count_rows(api, tid, key) == (1, 1)


def test_non_finite_numbers_are_refused(api: RunningApi, tenant: tuple[str, str]) -> None:
    tid, key = tenant
    with api.client(key) as client:
        for literal in ("NaN", "Infinity", "1e999"):
            body = (
                '{"documents": [{"id": "x", "chunks": '
                '[{"content": "c", "embedding": [%s, 0, 1]}]}]}'
            )
            bad = client.put(
                f"/v1/tenants/{tid}/documents",
                content=body % literal,
                headers={"content-type": "application/json"},
            )
            assert bad.status_code == 400, (literal, bad.text)
            assert bad.headers["content-type"].startswith(PROBLEM)
        search = client.post(
            f"/v1/tenants/{tid}/search",
            content='{"vector": [1e999, 0, 1]}',
            headers={"content-type": "application/json"},
        )
        assert search.status_code == 400
        assert "out of range" in search.json()["detail"]
    assert _count_rows(api, tid, key) == (0, 0)


def test_a_failure_inside_the_database_rolls_back_the_whole_batch(
    api: RunningApi, tenant: tuple[str, str], tenant_admin_dsn: Callable[[str], str]
) -> None:
    """A constraint the database enforces (not our validation) fails the last document."""
    tid, key = tenant
    with psycopg.connect(tenant_admin_dsn(tid), autocommit=True) as conn:
        conn.execute("ALTER TABLE chunks ADD CONSTRAINT no_poison CHECK (content <> 'poison')")
    batch = {"documents": [doc("a", [1, 0, 0]), doc("b", [0, 1, 0])]}
    batch["documents"][1]["chunks"][0]["content"] = "poison"  # type: ignore[index]
    with api.client(key) as client:
        failed = client.put(f"/v1/tenants/{tid}/documents", json=batch)
    assert failed.status_code >= 400
    assert _count_rows(api, tid, key) == (0, 0)


BAD_SEARCHES = [
    ({"vector": [1, 0, 0], "k": 0}, ">= 1"),
    ({"vector": [1, 0, 0], "k": 1001}, "k: at most 1000 hits per search here (TENANTVEC_MAX_K)"),
    ({"vector": [1, 0, 0], "k": 10_001}, "<= 10000"),
    ({"vector": [1, 0]}, "expects 3 dimensions, got 2"),
    ({"vector": [1, 0, 0], "filter": ["lang", "en"]}, "Expected `object"),
    ({"vector": [1, 0, 0], "filter": "lang=en"}, "Expected `object"),
    ({"vector": [1, 0, 0], "ef_search": 5000}, "<= 1000"),
    ({"vector": [1, 0, 0], "min_similarity": 2}, "between -1 and 1"),
    ({"vector": [1, 0, 0], "limit": 3}, "unknown field"),
    ({}, "give a query: text, or a vector"),
]


@pytest.mark.parametrize(("body", "words"), BAD_SEARCHES)
def test_bad_searches_get_400_with_a_reason(
    api: RunningApi, tenant: tuple[str, str], body: dict[str, object], words: str
) -> None:
    tid, key = tenant
    with api.client(key) as client:
        bad = client.post(f"/v1/tenants/{tid}/search", json=body)
    assert bad.status_code == 400, bad.text
    assert bad.headers["content-type"].startswith(PROBLEM)
    assert words in bad.json()["detail"]


def test_a_search_returns_up_to_1000_hits_over_http(
    api: RunningApi, tenant: tuple[str, str]
) -> None:
    """k up to TENANTVEC_MAX_K (1000 by default), in one answer: what a rerank
    pipeline fetches."""
    tid, key = tenant
    with api.client(key) as client:
        for start in (0, 600):
            batch = [
                doc(f"d{i}", [math.cos(i / 100), math.sin(i / 100), 0.5], n=i)
                for i in range(start, start + 600)
            ]
            put = client.put(f"/v1/tenants/{tid}/documents", json={"documents": batch})
            assert put.status_code == 200, put.text
        for body in (
            {"vector": [1, 0, 0.5], "k": 1000},
            {"vector": [1, 0, 0.5], "k": 1000, "filter": {"i": {"$gte": 0}}},
        ):
            found = client.post(f"/v1/tenants/{tid}/search", json=body)
            assert found.status_code == 200, found.text
            assert len(found.json()["results"]) == 1000, body


def test_a_body_over_the_limit_gets_413(start_api, tenant_id: str) -> None:  # type: ignore[no-untyped-def]
    small = start_api({"TENANTVEC_MAX_BODY_BYTES": "2000"})
    key = small.new_tenant(tenant_id, dims=3)
    big = {"documents": [doc(f"d{i}", [1, 0, 0]) for i in range(50)]}
    with small.client(key) as client:
        refused = client.put(f"/v1/tenants/{tenant_id}/documents", json=big)
        assert refused.status_code == 413
        assert refused.headers["content-type"].startswith(PROBLEM)
        assert "TENANTVEC_MAX_BODY_BYTES" in refused.json()["detail"]
        assert client.get(f"/v1/tenants/{tenant_id}/stats").json()["documents"] == 0


def test_ef_search_and_probes_apply(api: RunningApi, tenant_id: str) -> None:
    key = api.new_tenant(tenant_id, dims=3, index="ivfflat", lists=1)
    with api.client(key) as client:
        vectors = [[math.cos(a / 10), math.sin(a / 10), 0.5] for a in range(20)]
        client.put(
            f"/v1/tenants/{tenant_id}/documents",
            json={"documents": [doc(f"d{i}", v) for i, v in enumerate(vectors)]},
        ).raise_for_status()
        hits = client.post(
            f"/v1/tenants/{tenant_id}/search",
            json={"vector": vectors[3], "k": 3, "probes": 1, "filter": {}},
        ).json()["results"]
    assert hits[0]["document_id"] == "d3"
    assert len(hits) == 3
