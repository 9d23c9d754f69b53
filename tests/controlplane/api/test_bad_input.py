"""Input an attacker or a buggy client sends: every one a 4xx problem, nothing written.

Each case here once answered 500 (or worse, was accepted): NUL bytes, deep nesting,
invalid UTF-8, integers beyond 64 bits, numbers sent as strings, offsets beyond int4,
text too large for full-text indexing, unknown text search configurations, backends
that are not configured, ids with a trailing newline.
"""

from __future__ import annotations

import json
import random
import socket
import string
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.fixtures.api import RunningApi, StartApi

PROBLEM = "application/problem+json"


def doc(doc_id: str, vector: list[float] | None = None, **fields: Any) -> dict[str, Any]:
    chunk: dict[str, Any] = {"content": f"{doc_id} text", "embedding": vector or [1, 0, 0]}
    chunk.update(fields.pop("chunk", {}))
    return {"id": doc_id, "chunks": [chunk], **fields}


@pytest.fixture
def tenant(api: RunningApi, tenant_id: str) -> tuple[str, str]:
    return tenant_id, api.new_tenant(tenant_id, dims=3)


def _documents(api: RunningApi, tid: str, key: str) -> int:
    with api.client(key) as client:
        stats = client.get(f"/v1/tenants/{tid}/stats")
    assert stats.status_code == 200, stats.text
    return int(stats.json()["documents"])


def _assert_problem(response: httpx.Response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    detail = response.json()["detail"]
    for fragment in fragments:
        assert fragment in detail, detail


BAD_DOCUMENTS = [
    (doc("ok", title="a\x00b"), "documents[1].title contains a NUL"),
    (doc("ok", source="x\x00"), "documents[1].source contains a NUL"),
    (doc("ok", metadata={"k": "v\x00"}), "documents[1].metadata.k contains a NUL"),
    (doc("ok", metadata={"k\x00": 1}), "documents[1].metadata has a key containing a NUL"),
    (doc("ok", metadata={"n": 2**64}), "beyond 64 bits"),
    (doc("ok", metadata={"deep": json.loads("[" * 40 + "]" * 40)}), "nested more than 32"),
    (doc("ok", chunk={"metadata": {"x": ["\x00"]}}), "].chunks[0].metadata.x[0] contains a NUL"),
    (doc("ok", chunk={"content": "nul \x00 here"}), "].chunks[0].content contains a NUL"),
    (doc("ok\x00"), "documents[1].id contains a control character"),
    (doc("ok\nforged"), "documents[1].id contains a control character"),
    (doc("ok", chunk={"start_offset": 4294967301}), "Expected `int` <= 2147483647"),
    (doc("ok", chunk={"start_offset": "5"}), "Expected `int | null`, got `str`"),
    (doc("ok", vector=["1", 0, 0]), "Expected `float`, got `str`"),
    ({"id": "ok", "text": "x", "chunks": []}, "give either text or chunks"),
    (doc("ok", chunk={"id": "n\x00"}), "].chunks[0].id contains a control character"),
    (doc("ok", chunk={"id": ""}), "Expected `str` of length >= 1"),
    (doc("ok", chunk={"id": 7}), "Expected `str | null`, got `int`"),
    (doc("ok", chunk={"id": "good#0"}), "chunk id 'good#0' appears twice in the batch"),
]


@pytest.mark.parametrize(("document", "message"), BAD_DOCUMENTS)
def test_bad_documents_get_400_naming_the_field_and_write_nothing(
    api: RunningApi, tenant: tuple[str, str], document: dict[str, Any], message: str
) -> None:
    tid, key = tenant
    good = doc("good")
    with api.client(key) as client:
        for run_async in ("false", "true"):  # inline and as a job alike
            answer = client.put(
                f"/v1/tenants/{tid}/documents?async={run_async}",
                content=json.dumps({"documents": [good, document]}),
            )
            _assert_problem(answer, 400, message)
    assert _documents(api, tid, key) == 0


BAD_SEARCHES = [
    ({"vector": [1, 0, 0], "k": "5"}, "Expected `int`, got `str`"),
    ({"vector": [1, 0, 0], "k": 5.5}, "Expected `int`, got `float`"),
    ({"vector": [1, 0, 0], "include_content": "yes"}, "Expected `bool`, got `str`"),
    ({"text": "a\x00b", "mode": "keyword"}, "text contains a NUL"),
    ({"vector": [1, 0, 0], "filter": {"k": "\x00"}}, "filter.k contains a NUL"),
    ({"vector": [1, 0, 0], "filter": {"k": 10**30}}, "filter.k is an integer beyond 64 bits"),
    ({"vector": [1, 0, 0], "filter": json.loads('{"a":' * 40 + "1" + "}" * 40)}, "nested"),
    ({"vector": [1, 0, 0], "filter": {"lang": {"$regex": "^e"}}}, "unknown operator '$regex'"),
    ({"vector": [1, 0, 0], "filter": {"$or": {"lang": "en"}}}, "$or takes a non-empty list"),
    ({"vector": [1, 0, 0], "min_similarity": "0.5"}, "Expected `float | null`, got `str`"),
]


BAD_CHUNK_WRITES = [
    ({"id": "n\x00", "document_id": "d", "content": "x"}, "chunks[1].id contains a control"),
    ({"id": "n", "document_id": "d\n", "content": "x"}, "chunks[1].document_id contains"),
    ({"id": "n", "document_id": "d", "content": "x", "embedding": [1, 0]}, "3 dimensions"),
    ({"id": "n", "document_id": "d", "content": "x", "metadata": {"k": "\x00"}}, "NUL"),
    ({"id": "n", "document_id": "d", "content": "x", "ordinal": 3}, "Object contains unknown"),
    ({"id": "n", "document_id": "d"}, "missing required field `content`"),
    ({"id": "c1", "document_id": "d", "content": "x"}, "chunk id 'c1' appears twice"),
]


@pytest.mark.parametrize(("chunk", "message"), BAD_CHUNK_WRITES)
def test_bad_chunk_writes_get_400_and_write_nothing(
    api: RunningApi, tenant: tuple[str, str], chunk: dict[str, Any], message: str
) -> None:
    tid, key = tenant
    good = {"id": "c1", "document_id": "d0", "content": "fine", "embedding": [1, 0, 0]}
    with api.client(key) as client:
        answer = client.put(
            f"/v1/tenants/{tid}/chunks", content=json.dumps({"chunks": [good, chunk]})
        )
        _assert_problem(answer, 400, message)
        fetched = client.post(f"/v1/tenants/{tid}/chunks/fetch", json={"ids": ["c1"]})
        assert fetched.json()["missing"] == ["c1"]
    assert _documents(api, tid, key) == 0


@pytest.mark.parametrize(("body", "message"), BAD_SEARCHES)
def test_bad_searches_get_400(
    api: RunningApi, tenant: tuple[str, str], body: dict[str, Any], message: str
) -> None:
    tid, key = tenant
    with api.client(key) as client:
        _assert_problem(client.post(f"/v1/tenants/{tid}/search", json=body), 400, message)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            b'{"documents": [{"id": "a", "text": "x", "metadata": '
            + b'{"a": ' * 1000
            + b"1"
            + b"}" * 1000
            + b"}]}",
            "nested too deeply",
        ),
        (b'{"documents": [{"id": "\xff\xfe", "text": "x"}]}', "not valid UTF-8"),
        (b'{"documents": [', "not valid JSON"),
        (b"", "needs a JSON body"),
        (b'{"documents": [{"id": "a", "text": "x"}]} trailing', "not valid JSON"),
    ],
)
def test_bodies_that_are_not_json_get_400(
    api: RunningApi, tenant: tuple[str, str], raw: bytes, message: str
) -> None:
    tid, key = tenant
    with api.client(key) as client:
        answer = client.put(
            f"/v1/tenants/{tid}/documents",
            content=raw,
            headers={"content-type": "application/json"},
        )
    _assert_problem(answer, 400, message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"id": "nltest\n", "dims": 3}, "invalid tenant id 'nltest\\n'"),
        ({"id": "nul\x00id", "dims": 3}, "invalid tenant id"),
        ({"id": "fine-id", "dims": "3"}, "Expected `int | null`, got `str`"),
        ({"id": "fine-id", "dims": 3, "text_config": "klingon"}, "unknown text search config"),
        ({"id": "fine-id", "dims": 3, "labels": {"env": "a\x00"}}, "control character"),
        ({"id": "fine-id", "dims": 3, "labels": {"env\n": "x"}}, "invalid label key"),
        ({"id": "fine-id", "dims": 3, "backend": "neon"}, "not configured here"),
        ({"id": "fine-id", "dims": 3, "server": "lo\x00cal"}, "invalid server name"),
        ({"id": "fine-id", "dims": 3, "m": 2**70}, "Expected `int` <= 100 - at `$.m`"),
        ({"id": "fine-id", "dims": 3, "limits": {"connection_limit": 0}}, "out of range"),
        ({"id": "fine-id", "dims": 3, "limits": {"statement_timeout": 10}}, "between 1s"),
        ({"id": "fine-id", "dims": 3, "limits": {"bogus": 1}}, "unknown limit"),
        ({"id": "fine-id", "dims": 3, "embedder": "voyage:voyage-3.5"}, "not configured here"),
    ],
)
def test_bad_tenants_get_400_and_nothing_is_created(
    api: RunningApi, body: dict[str, Any], message: str
) -> None:
    with api.admin() as admin:
        _assert_problem(admin.post("/v1/tenants", content=json.dumps(body)), 400, message)
        listed = admin.get("/v1/tenants").json()
    assert not [t for t in listed if t["id"].startswith(("nltest", "fine-id", "nul"))]


def test_nul_bytes_in_paths_queries_and_key_names(api: RunningApi, tenant: tuple[str, str]) -> None:
    tid, key = tenant
    with api.admin() as admin:
        _assert_problem(admin.get("/v1/operations", params={"tenant": "\x00"}), 400, "tenant id")
        _assert_problem(admin.get("/v1/tenants/a%00b"), 400, "invalid tenant id")
        _assert_problem(admin.delete("/v1/tenants/acme%0A"), 400, "invalid tenant id")
        named = admin.post(f"/v1/tenants/{tid}/keys", json={"name": "ci\x00"})
        _assert_problem(named, 400, "key name contains a control character")
        _assert_problem(admin.delete(f"/v1/tenants/{tid}/keys/abc%00"), 404, "not found")
    with api.client(key) as client:
        _assert_problem(client.get(f"/v1/tenants/{tid}/documents/a%00b"), 400, "control character")
        _assert_problem(client.get(f"/v1/tenants/{tid}/jobs/%00"), 404, "not found")


def test_anonymous_junk_is_refused_before_its_body_is_read_and_adds_no_series(
    api: RunningApi, tenant: tuple[str, str]
) -> None:
    tid, _ = tenant
    before = _series(api)
    junk = [
        ("PUT", f"/v1/tenants/{tid}/documents", b"[" * 5000),
        ("POST", "/v1/tenants", b'{"id": "\xff"}'),
        ("POST", f"/v1/tenants/{tid}/search", b'{"vector": "x"}'),
        ("GET", "/v1/tenants/%00%0A", b""),
        ("GET", "/v1/operations?tenant=%00", b""),
    ]
    for n in range(4):  # different made-up tenant ids each round
        for method, path, body in junk:
            path = path.replace(tid, f"made-up-{n}")
            for auth in (None, "Bearer tvk_aaaaaaaaaaaa_" + "b" * 43, "Basic x", b"Bearer \xff"):
                headers = {"content-type": "application/json"}
                if auth:
                    headers["authorization"] = auth
                answer = httpx.request(method, f"{api.url}{path}", content=body, headers=headers)
                assert answer.status_code == 401, (path, auth, answer.text)
                assert answer.headers["content-type"].startswith(PROBLEM)
                assert answer.headers["www-authenticate"].startswith("Bearer")
    after = _series(api)
    assert after - before == set(), sorted(after - before)[:5]


def _series(api: RunningApi) -> set[str]:
    text = httpx.get(f"{api.url}/metrics").text
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line.startswith("tenantvec_")}


def test_documents_whose_ids_hold_slashes_and_any_text_are_read_and_deleted(
    api: RunningApi, tenant: tuple[str, str]
) -> None:
    tid, key = tenant
    ids = ["docs/intro.md", "a/b/c", "/leading", "a//b", "with space", "ünïcødé?&#%", "trailing/"]
    with api.client(key) as client:
        put = client.put(f"/v1/tenants/{tid}/documents", json={"documents": [doc(i) for i in ids]})
        assert put.status_code == 200, put.text
        for doc_id in ids:
            path = f"/v1/tenants/{tid}/documents/{quote(doc_id, safe='')}"
            got = client.get(path)
            assert got.status_code == 200, (doc_id, got.text)
            assert got.json()["id"] == doc_id
            assert client.delete(path).status_code == 204
            _assert_problem(client.get(path), 404, "not found")
    assert _documents(api, tid, key) == 0


def _unindexable_text() -> str:
    """Text whose tsvector exceeds Postgres's 1 MB limit: many distinct words."""
    rng = random.Random(7)
    words = ("".join(rng.choices(string.ascii_lowercase, k=7)) for _ in range(120_000))
    return " ".join(words)[:990_000]


def test_text_too_large_for_full_text_search_is_a_400_naming_the_document(
    api: RunningApi, tenant: tuple[str, str]
) -> None:
    tid, key = tenant
    batch = [doc("fine"), doc("huge", chunk={"content": _unindexable_text()})]
    with api.client(key) as client:
        answer = client.put(f"/v1/tenants/{tid}/documents", json={"documents": batch})
    _assert_problem(answer, 400, "document 'huge'", "too long for tsvector")
    assert _documents(api, tid, key) == 0  # atomic: the fine one is not written either


def test_an_async_job_writes_the_good_documents_and_reports_each_bad_one(
    start_api: StartApi, tenant_id: str
) -> None:
    api = start_api({"TENANTVEC_JOB_WORKERS": "1"})
    key = api.new_tenant(tenant_id, dims=3)
    batch = [doc(f"good-{n}") for n in range(5)]
    batch.insert(2, doc("huge", chunk={"content": _unindexable_text()}))
    with api.client(key) as client:
        queued = client.put(
            f"/v1/tenants/{tenant_id}/documents?async=true", json={"documents": batch}
        )
        assert queued.status_code == 202, queued.text
        deadline = time.monotonic() + 60
        while (job := client.get(queued.headers["Location"]).json())["state"] in (
            "pending",
            "running",
        ):
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
    assert job["state"] == "completed", job
    assert (job["created"], job["failed"]) == (5, 1)
    assert [e["document"] for e in job["errors"]] == ["huge"]
    assert "too long for tsvector" in job["errors"][0]["error"]
    assert _documents(api, tenant_id, key) == 5


def test_half_sent_requests_time_out_with_408(start_api: StartApi) -> None:
    api = start_api({"TENANTVEC_REQUEST_TIMEOUT_SECONDS": "1"})
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        # A whole header block, then half the body it announced.
        sock.sendall(
            b"PUT /v1/tenants/slow-client/documents HTTP/1.1\r\nhost: x\r\n"
            b"authorization: Bearer " + api.admin_token.encode() + b"\r\n"
            b'content-type: application/json\r\ncontent-length: 100\r\n\r\n{"docu'
        )
        started = time.monotonic()
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"application/problem+json" in answer
    assert 0.8 < time.monotonic() - started < 8
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")  # headers never finished
        started = time.monotonic()
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert time.monotonic() - started < 15
    assert httpx.get(f"{api.url}/healthz").status_code == 200  # it still serves


def test_a_long_upload_is_read_while_it_keeps_coming(start_api: StartApi) -> None:
    """A body that takes longer than the request timeout (a backup over a slow line) is
    read as long as it keeps coming at 64 kB/s or more; a pause longer than the timeout,
    or a trickle, is a 408."""
    api = start_api({"TENANTVEC_REQUEST_TIMEOUT_SECONDS": "1"})
    host, port = api.url.removeprefix("http://").split(":")
    body = b"not a backup, but 300 kB of one arriving over a slow line " * 5_200
    head = (
        b"POST /v1/restores?as=slow-upload HTTP/1.1\r\nhost: x\r\n"
        b"authorization: Bearer " + api.admin_token.encode() + b"\r\n"
        b"content-type: application/x-tar\r\ncontent-length: %d\r\n\r\n" % len(body)
    )

    def upload(piece: int, pause: float, stall_after: int | None = None) -> bytes:
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(head)
            try:
                for start in range(0, len(body), piece):
                    if stall_after is not None and start >= stall_after:
                        break
                    sock.sendall(body[start : start + piece])
                    time.sleep(pause)
            except OSError:  # the server gave up on it and closed the connection
                pass
            return _read_all(sock)

    started = time.monotonic()
    steady = upload(12_000, 0.1)  # ~120 kB/s: 2.6 s in all, never quiet for 1 s
    assert time.monotonic() - started > 2
    # Read whole and judged -- not a backup, 400 -- not cut off with a 408.
    assert steady.startswith(b"HTTP/1.1 400") and b"backup_invalid" in steady, steady[:300]
    stalled = upload(12_000, 0.1, stall_after=100_000)
    assert stalled.startswith(b"HTTP/1.1 408"), stalled[:200]
    trickle = upload(1_000, 0.05)  # ~20 kB/s: never 1 s quiet, but too slow on average
    assert trickle.startswith(b"HTTP/1.1 408"), trickle[:200]


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_newline_in_a_path_cannot_forge_a_log_line(start_api: StartApi) -> None:
    api = start_api({"TENANTVEC_DEBUG": "1"})  # debug: the access log is on too
    forged = "FORGED tenantvec.api: admin logged in"
    with api.admin() as admin:
        admin.get(f"/v1/tenants/x%0A{quote(forged)}/stats")
        admin.get(f"/v2/nothing%0D%0A{quote(forged)}")
    time.sleep(0.5)  # log records are flushed one by one
    lines = api.log_text().splitlines()
    assert [line for line in lines if "FORGED" in line], "the requests were logged"
    assert not [line for line in lines if line.startswith("FORGED")], lines[-20:]
