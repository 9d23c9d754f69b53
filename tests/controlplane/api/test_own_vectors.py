"""A tenant for the caller's own vectors through the API: made with dims alone, it stores
and searches vectors, refuses text with a 409 that says what to do (and writes nothing),
and takes an embedder later (``PUT /v1/tenants/{id}/embedder``, the client's
``set_embedder``)."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.client import Client
from controlplane.errors import PermissionDenied, TenantHasNoEmbedder
from controlplane.retrieval import SearchRequest
from tests.fixtures.api import RunningApi

VECTORS = {
    "documents": [
        {
            "id": "refunds",
            "metadata": {"lang": "en"},
            "chunks": [{"content": "Refunds within 14 days.", "embedding": [0.9, 0.1, 0.0]}],
        }
    ]
}


def _refused_as_no_embedder(answer: Any, tenant_id: str) -> None:
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["code"] == "tenant_has_no_embedder"
    assert f"tenantctl tenants set-embedder {tenant_id} PROVIDER:MODEL" in problem["detail"]
    assert f"PUT /v1/tenants/{tenant_id}/embedder" in problem["detail"]


@pytest.mark.parametrize("dims", [3, 768, 1536])
def test_dims_alone_make_a_tenant_of_the_callers_vectors(
    api: RunningApi, tenant_id: str, dims: int
) -> None:
    key = api.new_tenant(tenant_id, dims=dims)  # POST /v1/tenants {"id": ..., "dims": ...}
    with api.admin() as admin:
        assert admin.get(f"/v1/tenants/{tenant_id}").json()["embedder"] is None
    with api.client(key) as client:
        vector = [1.0] + [0.0] * (dims - 1)
        body = {"documents": [{"id": "a", "chunks": [{"content": "x", "embedding": vector}]}]}
        assert client.put(f"/v1/tenants/{tenant_id}/documents", json=body).status_code == 200
        found = client.post(f"/v1/tenants/{tenant_id}/search", json={"vector": vector, "k": 1})
        assert found.json()["results"][0]["document_id"] == "a"


def test_text_is_refused_with_the_way_out_and_nothing_is_written(
    api: RunningApi, tenant_id: str
) -> None:
    key = api.new_tenant(tenant_id, dims=3)
    base = f"/v1/tenants/{tenant_id}"
    with api.client(key) as client:
        assert client.put(f"{base}/documents", json=VECTORS).status_code == 200
        as_text = {"documents": [{"id": "new", "text": "Shipping takes three days."}]}
        mixed = {
            "documents": [
                {"id": "ok", "chunks": [{"content": "a", "embedding": [1, 0, 0]}]},
                {"id": "no-vector", "chunks": [{"content": "b"}]},
            ]
        }
        for body in (as_text, mixed):
            _refused_as_no_embedder(client.put(f"{base}/documents", json=body), tenant_id)
            _refused_as_no_embedder(
                client.put(f"{base}/documents?async=true", json=body), tenant_id
            )
        chunk = {"chunks": [{"id": "c1", "document_id": "refunds", "content": "no vector"}]}
        _refused_as_no_embedder(client.put(f"{base}/chunks", json=chunk), tenant_id)
        for query in ({"text": "refunds"}, {"text": "refunds", "hybrid": True}):
            _refused_as_no_embedder(client.post(f"{base}/search", json=query), tenant_id)
        # Nothing of the refused batches was written; keyword search needs no embedder.
        assert client.post(f"{base}/count", json={}).json() == {"documents": 1, "chunks": 1}
        keyword = client.post(f"{base}/search", json={"text": "refunds", "mode": "keyword"})
        assert keyword.status_code == 200, keyword.text
        assert keyword.json()["results"][0]["document_id"] == "refunds"
        assert client.get(f"{base}/jobs").json() == []


def test_an_embedder_is_given_and_taken_away(api: RunningApi, tenant_id: str) -> None:
    key = api.new_tenant(tenant_id, dims=3)
    with Client(api.url, api.admin_token) as admin, Client(api.url, key) as app:
        with pytest.raises(TenantHasNoEmbedder, match="set-embedder"):
            app.search(tenant_id, _text("refunds"))
        given = admin.set_embedder(tenant_id, "hash")
        assert given.embedder == {"provider": "hash", "model": "v1"} and given.dims == 3
        assert app.search(tenant_id, _text("refunds")).results == []
        taken = admin.set_embedder(tenant_id, "none")
        assert taken.embedder is None
        with pytest.raises(TenantHasNoEmbedder):
            app.search(tenant_id, _text("refunds"))
        with pytest.raises(PermissionDenied):  # a tenant key cannot change its embedder
            app.set_embedder(tenant_id, "hash")
    with api.admin() as admin:
        wrong = admin.put(f"/v1/tenants/{tenant_id}/embedder", json={"embedder": "wordllama"})
        assert wrong.status_code == 400 and "not 3: use dims 256" in wrong.json()["detail"]
        bad = admin.put(
            f"/v1/tenants/{tenant_id}/embedder", json={"embedder": "none", "fallbacks": ["hash"]}
        )
        assert bad.status_code == 400 and "fallbacks need an embedder" in bad.json()["detail"]


def _text(query: str) -> SearchRequest:
    return SearchRequest(text=query)
