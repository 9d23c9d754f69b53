"""Ingestion through the API with an OpenAI-style provider (a real fake server) and jobs."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from controlplane.settings import Settings
from tests.fakes.embeddings import FakeEmbeddings, Fault
from tests.fixtures.api import RunningApi, StartApi, launch
from tests.fixtures.fakes import provider_env

SMALL = "openai:text-embedding-3-small"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeEmbeddings]:
    server = FakeEmbeddings().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def provider_api(pg_settings: Settings, fake: FakeEmbeddings) -> Iterator[RunningApi]:
    running = launch(pg_settings, provider_env(fake, TENANTVEC_INLINE_INGEST_DOCUMENTS="8"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def tenant(
    provider_api: RunningApi, fake: FakeEmbeddings, tenant_id: str
) -> Iterator[tuple[str, str]]:
    key = provider_api.new_tenant(tenant_id, dims=16, embedder=SMALL)
    fake.calls.clear()
    yield tenant_id, key
    fake.faults.clear()
    fake.api_key = "sk-test-0123456789abcdefghij"


def texts(n: int, version: str = "v1") -> list[dict[str, Any]]:
    return [{"id": f"doc-{i}", "text": f"Document {i} says {version}."} for i in range(n)]


def wait_for_job(client: httpx.Client, url: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(url).json()
        if job["state"] in ("completed", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {url} did not finish: {job}")


def count_documents(client: httpx.Client, tid: str) -> int:
    return int(client.get(f"/v1/tenants/{tid}/stats").json()["documents"])


def test_unchanged_documents_never_reach_the_embedder(
    provider_api: RunningApi, fake: FakeEmbeddings, tenant: tuple[str, str]
) -> None:
    tid, key = tenant
    with provider_api.client(key) as client:
        first = client.put(f"/v1/tenants/{tid}/documents", json={"documents": texts(3)})
        assert first.status_code == 200, first.text
        assert sorted(fake.texts_embedded()) == sorted(d["text"] for d in texts(3))
        assert fake.calls[0].body["dimensions"] == 16
        fake.calls.clear()
        again = client.put(f"/v1/tenants/{tid}/documents", json={"documents": texts(3)})
        assert {d["status"] for d in again.json()["documents"]} == {"unchanged"}
        assert fake.calls == []
        one_changed = [*texts(2), {"id": "doc-2", "text": "Document 2 changed."}]
        client.put(f"/v1/tenants/{tid}/documents", json={"documents": one_changed})
        assert fake.texts_embedded() == ["Document 2 changed."]
        fake.calls.clear()
        hits = client.post(f"/v1/tenants/{tid}/search", json={"text": "Document 2 changed."})
        assert hits.json()["results"][0]["document_id"] == "doc-2"
        assert fake.calls[0].body["input"] == ["Document 2 changed."]


@pytest.mark.parametrize(
    ("faults", "status", "code"),
    [
        ([Fault(dims=5)], 502, "embedding_failed"),
        ([Fault(nan=True)], 502, "embedding_failed"),
        ([Fault(status=500)] * 50, 503, "embedder_unavailable"),
        ([Fault(delay=1.5)] * 4, 503, "embedder_unavailable"),
    ],
)
def test_a_failing_provider_stores_nothing(
    provider_api: RunningApi,
    fake: FakeEmbeddings,
    tenant: tuple[str, str],
    faults: list[Fault],
    status: int,
    code: str,
) -> None:
    tid, key = tenant
    fake.fail_next(*faults)
    with provider_api.client(key) as client:
        failed = client.put(f"/v1/tenants/{tid}/documents", json={"documents": texts(2)})
        assert failed.status_code == status, failed.text
        assert failed.json()["code"] == code
        if status == 503:
            assert int(failed.headers["Retry-After"]) >= 1
        assert count_documents(client, tid) == 0


def test_a_refused_key_is_reported_without_the_key(
    provider_api: RunningApi, fake: FakeEmbeddings, tenant: tuple[str, str]
) -> None:
    tid, key = tenant
    configured = str(fake.api_key)
    fake.api_key = "sk-rotated-by-someone-else-000000"
    with provider_api.client(key) as client:
        refused = client.post(f"/v1/tenants/{tid}/search", json={"text": "anything"})
    assert refused.status_code == 502
    assert "HTTP 401" in refused.json()["detail"]
    for leak in (configured, configured[:3] + "*****", configured[-4:]):
        assert leak not in refused.text
        assert leak not in provider_api.log_text()


def test_large_batches_become_jobs_that_complete(
    provider_api: RunningApi, fake: FakeEmbeddings, tenant: tuple[str, str]
) -> None:
    tid, key = tenant
    with provider_api.client(key) as client:
        queued = client.put(f"/v1/tenants/{tid}/documents", json={"documents": texts(40)})
        assert queued.status_code == 202, queued.text
        job = queued.json()
        assert job["state"] in ("pending", "running") and job["total"] == 40
        assert queued.headers["Location"] == f"/v1/tenants/{tid}/jobs/{job['id']}"
        done = wait_for_job(client, queued.headers["Location"])
        assert done["state"] == "completed", done
        assert (done["processed"], done["created"], done["failed"]) == (40, 40, 0)
        assert done["started_at"] and done["finished_at"]
        assert count_documents(client, tid) == 40
        listed = client.get(f"/v1/tenants/{tid}/jobs").json()
        assert [j["id"] for j in listed] == [job["id"]]
        small = client.put(
            f"/v1/tenants/{tid}/documents?async=true", json={"documents": texts(1, "v2")}
        )
        assert small.status_code == 202
        assert wait_for_job(client, small.headers["Location"])["updated"] == 1
        missing = client.get(f"/v1/tenants/{tid}/jobs/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404 and missing.json()["code"] == "job_not_found"
        assert client.get(f"/v1/tenants/{tid}/jobs/not-a-uuid").status_code == 404


def test_a_job_records_the_documents_the_provider_refuses(
    provider_api: RunningApi, fake: FakeEmbeddings, tenant: tuple[str, str]
) -> None:
    tid, key = tenant
    # The batch is refused, then (tried one by one) its first document is; the rest pass.
    fake.fail_next(Fault(status=400), Fault(status=400))
    with provider_api.client(key) as client:
        queued = client.put(f"/v1/tenants/{tid}/documents?async=true", json={"documents": texts(4)})
        done = wait_for_job(client, queued.headers["Location"])
        assert done["state"] == "completed"
        assert (done["processed"], done["created"], done["failed"]) == (4, 3, 1)
        assert len(done["errors"]) == 1 and "HTTP 400" in done["errors"][0]["error"]
        assert count_documents(client, tid) == 3
        # A provider that refuses everything stops the job: the fault is not the documents'.
        fake.fail_next(*[Fault(status=400)] * 10)
        queued = client.put(
            f"/v1/tenants/{tid}/documents?async=true", json={"documents": texts(4, "v3")}
        )
        stopped = wait_for_job(client, queued.headers["Location"])
        assert stopped["state"] == "failed" and "HTTP 400" in stopped["error"]


def test_a_job_interrupted_by_a_crash_resumes_where_it_stopped(
    start_api: StartApi,
    fake: FakeEmbeddings,
    tenant_id: str,
    tenant_admin_dsn: Callable[[str], str],
) -> None:
    env = provider_env(fake, TENANTVEC_JOB_LEASE_SECONDS="2")
    first = start_api(env)
    key = first.new_tenant(tenant_id, dims=16, embedder=SMALL)
    # Every embedding request takes 0.4 s: the job takes a few seconds, batch by batch.
    fake.fail_next(*[Fault(delay=0.4)] * 200)
    try:
        with first.client(key) as client:
            queued = client.put(
                f"/v1/tenants/{tenant_id}/documents?async=true", json={"documents": texts(80)}
            )
            url = queued.headers["Location"]
            deadline = time.monotonic() + 30
            while client.get(url).json()["processed"] == 0:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        os.kill(first.process.pid, signal.SIGKILL)  # no goodbye: the lease must run out
        first.process.wait()
        with first.client(key) as dead, pytest.raises(httpx.TransportError):
            dead.get(url)
        with psycopg.connect(tenant_admin_dsn(tenant_id)) as conn:
            state, processed = conn.execute(
                "SELECT state, processed FROM ingestion_jobs"
            ).fetchone()
        assert state == "running" and 0 < processed < 80, "the crash must catch the job mid-way"
        second = start_api(env)
        with second.client(key) as client:
            done = wait_for_job(client, url)
            assert done["state"] == "completed", done
            # Exactly once: every document created once, none updated or skipped twice.
            assert (done["processed"], done["created"], done["updated"]) == (80, 80, 0)
            assert count_documents(client, tenant_id) == 80
    finally:
        fake.faults.clear()
