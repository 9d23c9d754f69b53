"""The Python client against the real API server: every endpoint, both flavours, the
library's own errors, and retries the caller bounds."""

from __future__ import annotations

import inspect
import socket
import threading
import time

import httpx
import psycopg
import pytest

from controlplane.client import AsyncClient, Client, calls
from controlplane.client._calls import OPERATIONS
from controlplane.errors import (
    AuthenticationFailed,
    BackendUnavailable,
    DocumentNotFound,
    InvalidRequest,
    KeyNotFound,
    TenantExists,
    TenantNotFound,
    TenantUnavailable,
)
from controlplane.model.views import Identity, IssuedKeyView, TenantDetail, TenantView
from controlplane.retrieval import ChunkIn, DocumentIn, SearchRequest, UpsertRequest
from controlplane.retrieval.models import UpsertResponse
from tests.fixtures.api import RunningApi
from tests.fixtures.postgres import TenantNames


def _docs() -> UpsertRequest:
    return UpsertRequest(
        documents=[
            DocumentIn(id="a/b?c#d", chunks=[ChunkIn(content="alpha text", embedding=[1, 0, 0])]),
            DocumentIn(id="plain", chunks=[ChunkIn(content="beta text", embedding=[0, 1, 0])]),
        ]
    )


def test_every_operation_of_the_api_has_a_call_and_both_clients_send_it(api: RunningApi) -> None:
    with httpx.Client(base_url=api.url) as raw:
        spec = raw.get("/schema/openapi.json").json()
    operation_ids = {
        op["operationId"]
        for item in spec["paths"].values()
        for method, op in item.items()
        if method in ("get", "post", "put", "delete", "patch")
    }
    assert operation_ids == set(OPERATIONS)
    for name in OPERATIONS.values():
        build = getattr(calls, name)
        for client in (Client, AsyncClient):
            method = getattr(client, name)
            assert method.__doc__ == build.__doc__
            # the call's own signature (what help() and editors show)
            assert inspect.signature(method) == inspect.signature(build), (client, name)
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name))


def test_the_sync_client_from_create_to_delete(api: RunningApi, tenant_id: str) -> None:
    with Client(api.url, api.admin_token) as admin:
        created = admin.create_tenant(id=tenant_id, dims=3, labels={"team": "search"})
        assert isinstance(created, TenantView) and created.state == "ready"
        with pytest.raises(TenantExists):
            admin.create_tenant(id=tenant_id, dims=3)
        shown = admin.get_tenant(tenant_id)
        assert isinstance(shown, TenantDetail) and shown.labels == {"team": "search"}
        assert tenant_id in [t.id for t in admin.list_tenants()]
        issued = admin.create_key(tenant_id, name="app")
        assert isinstance(issued, IssuedKeyView) and issued.key.startswith("tvk_")
        assert [k.id for k in admin.list_keys(tenant_id)] == [issued.id]
        limited = admin.set_limits(tenant_id, connection_limit=7)
        assert limited.id == tenant_id
        tuned = admin.tune_recall(tenant_id, target=0.9)
        assert tuned.recall["target"] == 0.9
        assert admin.whoami() == Identity(admin=True, tenant=None)
        with Client(api.url, issued.key) as app:
            assert app.whoami() == Identity(admin=False, tenant=tenant_id)
            upserted = app.upsert(tenant_id, _docs())
            assert isinstance(upserted, UpsertResponse)
            assert [d.status for d in upserted.documents] == ["created", "created"]
            document = app.get_document(tenant_id, "a/b?c#d", include_embeddings=True)
            assert document.id == "a/b?c#d" and document.chunks[0].embedding == [1, 0, 0]
            hits = app.search(tenant_id, SearchRequest(vector=[1, 0, 0], k=1)).results
            assert hits[0].document_id == "a/b?c#d" and hits[0].embedding is None
            for mode in ("vector", "keyword", "hybrid"):
                with_vectors = SearchRequest(
                    text="beta", vector=[0, 1, 0], mode=mode, k=1, include_embeddings=True
                )
                (hit,) = app.search(tenant_id, with_vectors).results
                assert (hit.document_id, hit.embedding) == ("plain", [0.0, 1.0, 0.0]), mode
            assert app.stats(tenant_id).documents == 2
            app.delete_document(tenant_id, "plain")
            with pytest.raises(DocumentNotFound):
                app.delete_document(tenant_id, "plain")
            assert app.list_jobs(tenant_id) == []
            with pytest.raises(TenantNotFound):  # another tenant's name: no such tenant here
                app.search("no-such-tenant", SearchRequest(vector=[1, 0, 0]))
        admin.revoke_key(tenant_id, issued.id)
        with pytest.raises(KeyNotFound):
            admin.revoke_key(tenant_id, "nosuchkey000")
        assert admin.suspend_tenant(tenant_id).state == "suspended"
        assert admin.resume_tenant(tenant_id).state == "ready"
        ops = admin.list_operations(tenant=tenant_id, limit=10)
        assert {"create", "suspend", "resume"} <= {op.action for op in ops}
        gone = admin.delete_tenant(tenant_id)
        assert gone.state == "deleted" and gone.placement["erasure"]["immediate"] is True
        with pytest.raises(TenantNotFound) as missing:
            admin.get_tenant(tenant_id)
        assert tenant_id in str(missing.value) and missing.value.tenant_id == tenant_id
        assert admin.healthz()["status"] == "ok"
        assert admin.readyz()["status"] in ("ready", "degraded")
        assert "tenantvec_requests_total" in admin.metrics()


async def test_the_async_client_speaks_the_same_api(api: RunningApi, tenant_id: str) -> None:
    async with AsyncClient(api.url, api.admin_token) as admin:
        await admin.create_tenant(id=tenant_id, dims=3)
        key = (await admin.create_key(tenant_id)).key
        async with AsyncClient(api.url, key) as app:
            await app.upsert(tenant_id, _docs())
            found = await app.search(tenant_id, SearchRequest(vector=[0, 1, 0], k=1))
            assert found.results[0].document_id == "plain"
            with pytest.raises(AuthenticationFailed):
                async with AsyncClient(api.url, "tvk_wrong") as wrong:
                    await wrong.stats(tenant_id)
        await admin.delete_tenant(tenant_id)


def test_bad_input_fails_before_a_request_or_as_the_servers_invalid_request(
    api: RunningApi,
) -> None:
    with Client(api.url, api.admin_token) as admin:
        with pytest.raises(Exception, match="dims"):  # checked here, nothing sent
            admin.create_tenant(id="okay-name", dims="many")
        with pytest.raises(InvalidRequest, match="invalid tenant id"):
            admin.create_tenant(id="Bad_Name", dims=3)
    with pytest.raises(ValueError, match="base_url"):
        Client("127.0.0.1:8000")


def _refusing(superuser_dsn: str, database: str, refuse: bool) -> None:
    verb = "false" if refuse else "true"
    with psycopg.connect(superuser_dsn, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {verb}')
        if refuse:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )


def test_a_503_is_sent_again_after_retry_after_within_the_callers_bound(
    api: RunningApi, superuser_dsn: str, tenant_names: TenantNames, tenant_id: str
) -> None:
    # A real 503: the tenant's database refuses connections, so the API answers 503 with
    # Retry-After for a moment; the client waits and asks again.
    key = api.new_tenant(tenant_id)
    database = tenant_names(tenant_id)[0]
    query = SearchRequest(vector=[1, 0, 0], k=1)
    with Client(api.url, key, retry_seconds=0) as impatient:
        impatient.upsert(tenant_id, _docs())  # the pool is open
        _refusing(superuser_dsn, database, refuse=True)
        try:
            with pytest.raises(TenantUnavailable) as refused:
                impatient.search(tenant_id, query)  # 0: never sent again
            assert refused.value.retry_after and refused.value.tenant_id == tenant_id
            with Client(api.url, key, retry_seconds=0.5) as bounded:
                started = time.monotonic()
                with pytest.raises(TenantUnavailable):
                    bounded.search(tenant_id, query)  # Retry-After is past the bound
                assert time.monotonic() - started < 1.5
            threading.Timer(1.0, _refusing, (superuser_dsn, database, False)).start()
            with Client(api.url, key, retry_seconds=15) as patient:
                started = time.monotonic()
                assert patient.search(tenant_id, query).results  # waited, then answered
                assert time.monotonic() - started >= 1.0
        finally:
            _refusing(superuser_dsn, database, refuse=False)


def test_an_answer_that_never_comes_resends_reads_but_not_a_create() -> None:
    # A peer that takes each connection and hangs up at once: no answer ever comes.
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def hang_up() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with Client(url, "t", retry_seconds=1.0) as client:
            with pytest.raises(BackendUnavailable, match="unreachable"):
                client.create_tenant(id="acme-app", dims=3)
            assert len(accepted) == 1  # a create that may have landed is not sent again
            with pytest.raises(BackendUnavailable, match="unreachable"):
                client.get_tenant("acme-app")
            assert len(accepted) >= 3  # a read is, until the bound
    finally:
        listener.close()


def test_the_collection_operations_page_count_fetch_and_delete_many(
    api: RunningApi, tenant_id: str
) -> None:
    key = api.new_tenant(tenant_id)
    documents = [
        DocumentIn(
            id=f"d{i:02d}",
            metadata={"lang": "de" if i % 5 == 0 else "en", "year": i},
            chunks=[ChunkIn(content=f"c{i}", embedding=[1, i, 0]) for _ in range(i % 3 + 1)],
        )
        for i in range(25)
    ]
    with Client(api.url, key) as app:
        app.upsert(tenant_id, UpsertRequest(documents=documents))
        pages, cursor = [], None
        while True:
            page = app.list_document_ids(tenant_id, cursor=cursor, limit=10)
            pages.append(page.ids)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert [len(p) for p in pages] == [10, 10, 5]
        assert sum(pages, []) == [f"d{i:02d}" for i in range(25)]
        with pytest.raises(InvalidRequest, match="cursor"):
            app.list_document_ids(tenant_id, cursor="not-a-cursor!")

        every = app.count_documents(tenant_id)
        assert (every.documents, every.chunks) == (25, sum(i % 3 + 1 for i in range(25)))
        assert app.count_documents(tenant_id, {"lang": "de"}).documents == 5
        assert app.count_documents(tenant_id, {"year": {"$gte": 20}}).documents == 5

        fetched = app.fetch_documents(tenant_id, ["d03", "nope", "d01", "d03"])
        assert [d.id for d in fetched.documents] == ["d03", "d01"] and fetched.missing == ["nope"]
        assert len(fetched.documents[0].chunks) == 1 and fetched.documents[0].metadata["year"] == 3

        removed = app.delete_documents(tenant_id, ids=["d01", "nope"])
        assert (removed.deleted, removed.missing) == (1, ["nope"])
        by_filter = app.delete_documents(tenant_id, filter={"year": {"$lt": 5}})
        assert by_filter.deleted == 4  # d00, d02, d03, d04 (d01 is gone)
        assert app.count_documents(tenant_id).documents == 20
        with pytest.raises(InvalidRequest, match="not both"):
            app.delete_documents(tenant_id, ids=["d10"], filter={"lang": "en"})
        with pytest.raises(InvalidRequest, match="empty filter"):
            app.delete_documents(tenant_id, filter={})
        with pytest.raises(InvalidRequest, match="unknown operator"):
            app.count_documents(tenant_id, {"year": {"$between": [1, 2]}})
        assert app.count_documents(tenant_id).documents == 20  # nothing half done
