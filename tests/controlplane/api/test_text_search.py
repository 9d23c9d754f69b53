"""Documents as text, kept in sync, and text / keyword / hybrid search through the API."""

from __future__ import annotations

import threading
import time

import pytest

from tests.fixtures.api import RunningApi

PROBLEM = "application/problem+json"

REFUNDS = (
    "# Refunds\n\nRefunds are issued within fourteen days of a return. The money goes back "
    "to the card that paid.\n\n## Exceptions\n\nGift cards are never refunded. Sale items "
    "can be exchanged but not refunded.\n\n```\nrefund --order 1234 --reason damaged\n```\n\n"
    "Ask the support desk about anything else."
)
SHIPPING = (
    "Shipping takes three to five working days inside the country. Express shipping arrives "
    "the next day when ordered before noon. Parcels abroad take two weeks."
)
PRIVACY = "We keep personal data for as long as the account exists, and delete it on request."


@pytest.fixture
def tenant(api: RunningApi, tenant_id: str) -> tuple[str, str]:
    key = api.new_tenant(tenant_id, dims=256, embedder="hash", chunk_tokens=24, chunk_overlap=6)
    return tenant_id, key


def put_texts(client, tid: str, **texts: str):  # type: ignore[no-untyped-def]
    docs = [{"id": i, "text": t, "metadata": {"topic": i}} for i, t in texts.items()]
    return client.put(f"/v1/tenants/{tid}/documents", json={"documents": docs})


def search(client, tid: str, **body: object) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    answer = client.post(f"/v1/tenants/{tid}/search", json=body)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["results"])


def test_text_is_chunked_embedded_and_found_in_every_mode(
    api: RunningApi, tenant: tuple[str, str]
) -> None:
    tid, key = tenant
    with api.client(key) as client:
        put = put_texts(client, tid, refunds=REFUNDS, shipping=SHIPPING, privacy=PRIVACY)
        assert put.status_code == 200, put.text
        results = {d["id"]: d for d in put.json()["documents"]}
        assert {d["status"] for d in results.values()} == {"created"}
        assert results["refunds"]["chunks"] > 2 and results["privacy"]["chunks"] == 1

        stored = client.get(f"/v1/tenants/{tid}/documents/refunds").json()
        for chunk in stored["chunks"]:  # offsets point into the text sent
            assert REFUNDS[chunk["start_offset"] : chunk["end_offset"]] == chunk["content"]
            assert chunk["metadata"] == {"topic": "refunds"}
        assert any("refund --order 1234" in c["content"] for c in stored["chunks"])

        query = "how many days until refunds are issued"
        for mode in ("vector", "keyword", "hybrid"):
            hits = search(client, tid, text=query, mode=mode, k=3)
            assert hits, mode
            assert hits[0]["document_id"] == "refunds", (mode, hits)
            assert set(hits[0]) >= {"document_id", "chunk", "content", "metadata", "score"}
        hybrid = search(client, tid, text="express shipping next day", hybrid=True, k=2)
        assert hybrid[0]["document_id"] == "shipping"
        assert hybrid[0]["similarity"] > 0 and hybrid[0]["score"] > 0
        assert (
            search(client, tid, text="shipping", mode="keyword", filter={"topic": "privacy"}) == []
        )


def test_nothing_under_the_threshold_and_nothing_from_elsewhere(
    api: RunningApi, tenant: tuple[str, str], tenant_id: str
) -> None:
    tid, key = tenant
    with api.client(key) as client:
        assert put_texts(client, tid, shipping=SHIPPING).status_code == 200
        assert search(client, tid, text="zebra xylophone quartz", min_similarity=0.5) == []
        assert search(client, tid, text="zebra xylophone", mode="keyword") == []
        assert search(client, tid, text="shipping", hybrid=True, min_similarity=0.99) == []
    other = f"{tenant_id}-b"
    other_key = api.new_tenant(other, dims=256, embedder="hash")
    with api.client(other_key) as client:  # an empty tenant finds nothing, not its neighbour's
        for mode in ("vector", "keyword", "hybrid"):
            assert search(client, other, text="shipping", mode=mode) == []


def test_unchanged_is_skipped_changed_is_replaced_deleted_is_gone(
    api: RunningApi, tenant: tuple[str, str]
) -> None:
    tid, key = tenant
    with api.client(key) as client:
        assert put_texts(client, tid, refunds=REFUNDS).status_code == 200
        again = put_texts(client, tid, refunds=REFUNDS).json()["documents"][0]
        assert again["status"] == "unchanged" and again["chunks"] > 2
        changed = put_texts(client, tid, refunds="Refunds now take thirty days.").json()
        assert changed["documents"][0] == {"id": "refunds", "status": "updated", "chunks": 1}
        assert search(client, tid, text="gift cards", mode="keyword") == []
        assert search(client, tid, text="thirty", mode="keyword")[0]["document_id"] == "refunds"
        assert client.delete(f"/v1/tenants/{tid}/documents/refunds").status_code == 204
        assert search(client, tid, text="thirty days refunds", hybrid=True) == []


def test_a_search_sees_old_chunks_or_new_never_a_mix(
    api: RunningApi, tenant: tuple[str, str]
) -> None:
    tid, key = tenant
    versions = {
        name: "\n\n".join(f"Paragraph {i} of the policy, version {name}." for i in range(12))
        for name in ("alpha", "beta")
    }
    stop = threading.Event()
    writes = 0

    def writer() -> None:
        nonlocal writes
        with api.client(key) as client:
            while not stop.is_set():
                for name in ("alpha", "beta"):
                    assert put_texts(client, tid, policy=versions[name]).status_code == 200
                    writes += 1

    with api.client(key) as client:
        assert put_texts(client, tid, policy=versions["alpha"]).status_code == 200
        chunks = len(search(client, tid, text="policy paragraph", mode="keyword", k=100))
        assert chunks > 3
        thread = threading.Thread(target=writer)
        thread.start()
        try:
            deadline = time.monotonic() + 3
            seen = set()
            while time.monotonic() < deadline:
                hits = search(client, tid, text="policy paragraph", mode="keyword", k=100)
                kinds = {"alpha" if "alpha" in str(h["content"]) else "beta" for h in hits}
                assert len(kinds) == 1, "a search saw chunks of two versions at once"
                assert len(hits) == chunks  # all of one version, none missing
                seen |= kinds
        finally:
            stop.set()
            thread.join()
    assert writes > 4 and seen == {"alpha", "beta"}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"text": "x", "mode": "vector", "hybrid": True}, "contradicts"),
        ({"vector": [1.0] * 256, "mode": "keyword"}, "keyword search needs the query as text"),
        ({"text": "x", "keyword_weight": 1.5}, "keyword_weight"),
        ({"text": "x", "mode": "fuzzy"}, "mode"),
    ],
)
def test_bad_text_searches_get_400(
    api: RunningApi, tenant: tuple[str, str], body: dict[str, object], words: str
) -> None:
    tid, key = tenant
    with api.client(key) as client:
        bad = client.post(f"/v1/tenants/{tid}/search", json=body)
    assert bad.status_code == 400 and bad.headers["content-type"].startswith(PROBLEM)
    assert words in bad.json()["detail"]


def test_a_document_is_text_or_chunks_not_both(api: RunningApi, tenant: tuple[str, str]) -> None:
    tid, key = tenant
    both = {"id": "d", "text": "hello", "chunks": [{"content": "hello"}]}
    with api.client(key) as client:
        for doc in (both, {"id": "d"}):
            bad = client.put(f"/v1/tenants/{tid}/documents", json={"documents": [doc]})
            assert bad.status_code == 400, bad.text
            assert "give either text or chunks" in bad.json()["detail"]
        # Chunks without vectors are embedded by the tenant's embedder.
        ok = client.put(
            f"/v1/tenants/{tid}/documents",
            json={"documents": [{"id": "d", "chunks": [{"content": "hello world"}]}]},
        )
        assert ok.status_code == 200, ok.text
        assert search(client, tid, text="hello")[0]["document_id"] == "d"
