"""The search lane (api/_lane.py) answers exactly as Litestar's documented handler does.

Two servers on the same catalog and settings: ``tenantctl serve`` (searches answered by
the lane) and uvicorn serving ``create_litestar`` alone (searches answered by the
handler in api/_data.py). Every request below -- good, unauthenticated, another
tenant's key, malformed, oversized, sent in chunks -- gets the same status, content
type, problem headers and body from both.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from controlplane.api import create_litestar
from controlplane.settings import Settings
from tests.fixtures.api import RunningApi, launch
from tests.fixtures.postgres import free_port

MAX_BODY = 20_000


@dataclasses.dataclass(frozen=True)
class Pair:
    lane: RunningApi
    handler_url: str
    tenant: str
    key: str
    other_key: str  # a key of another tenant


def _serve_in_thread(settings: Settings) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_litestar(settings), port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if server.started:
                break
            if not thread.is_alive():
                raise RuntimeError("the Litestar-only server did not start")
            threading.Event().wait(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture(scope="module")
def pair(pg_settings: Settings) -> Iterator[Pair]:
    env = {"TENANTVEC_MAX_BODY_BYTES": str(MAX_BODY), "TENANTVEC_JOB_WORKERS": "0"}
    lane = launch(pg_settings, env)
    settings = pg_settings.replace(
        api=pg_settings.api.replace(
            admin_token=lane.admin_token, max_body_bytes=MAX_BODY, job_workers=0
        )
    )
    try:
        tenant, other = f"lane-{uuid.uuid4().hex[:8]}", f"lane-{uuid.uuid4().hex[:8]}"
        key, other_key = lane.new_tenant(tenant), lane.new_tenant(other)
        with lane.client(key) as client:
            client.put(
                f"/v1/tenants/{tenant}/documents",
                json={
                    "documents": [
                        {
                            "id": f"doc-{n}",
                            "metadata": {"n": n},
                            "chunks": [{"content": f"chunk {n}", "embedding": [1, n, 0]}],
                        }
                        for n in range(5)
                    ]
                },
            ).raise_for_status()
        for handler_url in _serve_in_thread(settings):
            yield Pair(lane, handler_url, tenant, key, other_key)
    finally:
        lane.stop()


def _answers(pair: Pair, method: str, path: str, **request: Any) -> list[httpx.Response]:
    answers = []
    for url in (pair.lane.url, pair.handler_url):
        with httpx.Client(base_url=url, timeout=30) as client:
            answers.append(client.request(method, path, **request))
    return answers


def _same(lane: httpx.Response, handler: httpx.Response) -> None:
    assert (lane.status_code, lane.content) == (handler.status_code, handler.content)
    for header in ("content-type", "www-authenticate", "retry-after"):
        assert lane.headers.get(header) == handler.headers.get(header), header


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_good_searches_are_answered_alike(pair: Pair) -> None:
    path = f"/v1/tenants/{pair.tenant}/search"
    for body in (
        {"vector": [1, 2, 0], "k": 3},
        {"vector": [1, 0, 0], "k": 5, "ef_search": 200, "include_embeddings": True},
        {"vector": [1, 1, 0], "filter": {"n": 3}},
        {"vector": [1, 1, 0], "min_similarity": 0.999},  # nothing that close: []
    ):
        lane, handler = _answers(pair, "POST", path, json=body, headers=_bearer(pair.key))
        assert lane.status_code == 200, lane.text
        _same(lane, handler)
    # The admin token searches any tenant.
    admin = _bearer(pair.lane.admin_token)
    _same(*_answers(pair, "POST", path, json={"vector": [1, 0, 0]}, headers=admin))


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"Authorization": "Bearer"}, 401),
        ({"Authorization": "Bearer not-a-key"}, 401),
    ],
)
def test_refused_callers_are_answered_alike(
    pair: Pair, headers: dict[str, str], status: int
) -> None:
    path = f"/v1/tenants/{pair.tenant}/search"
    lane, handler = _answers(pair, "POST", path, json={"vector": [1, 0, 0]}, headers=headers)
    assert lane.status_code == status
    _same(lane, handler)


def test_other_tenants_and_bad_ids_are_answered_alike(pair: Pair) -> None:
    body = {"vector": [1, 0, 0]}
    admin = _bearer(pair.lane.admin_token)
    for path, headers, status in (
        (f"/v1/tenants/{pair.tenant}/search", _bearer(pair.other_key), 404),
        ("/v1/tenants/no-such-tenant/search", admin, 404),
        ("/v1/tenants/Not_An_Id/search", admin, 400),
        ("/v1/tenants/nul%00id/search", admin, 400),
    ):
        lane, handler = _answers(pair, "POST", path, json=body, headers=headers)
        assert lane.status_code == status, (path, lane.text)
        _same(lane, handler)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"vector": [1, 0',  # not JSON
        b'{"vector": [1, 0, 0]} trailing',
        b'{"vector": "\xff\xfe"}',  # not UTF-8
        b'{"vector": [1, 0, 0], "k": "5"}',  # a string for an int
        b'{"vector": [1, 0, 0], "bogus": 1}',  # an unknown field
        b'{"vector": [1, 0]}',  # the wrong dimensions
        b'{"vector": [0, 0, 0]}',  # no direction for cosine
        b'{"vector": [1, 0, 0], "k": 1001}',  # k past TENANTVEC_MAX_K
        b'{"vector": [1, 0, 0], "k": 10001}',  # k past any setting's reach
        b'{"text": "needs an embedder"}',  # the tenant stores its callers' vectors
        b'{"vector": [1, 0, 0], "filter": ' + b'{"a": ' * 600 + b"1" + b"}" * 600 + b"}",
        b"",  # no body at all: Litestar's own answer
        b'{"vector": [' + b"1, " * 10_000 + b"1]}",  # over TENANTVEC_MAX_BODY_BYTES
    ],
)
def test_bad_bodies_are_answered_alike(pair: Pair, raw: bytes) -> None:
    path = f"/v1/tenants/{pair.tenant}/search"
    headers = {**_bearer(pair.key), "Content-Type": "application/json"}
    lane, handler = _answers(pair, "POST", path, content=raw, headers=headers)
    assert 400 <= lane.status_code < 500, lane.text
    assert lane.headers["content-type"] == "application/problem+json"
    _same(lane, handler)


def test_bodies_sent_in_chunks_are_answered_alike(pair: Pair) -> None:
    """No Content-Length: a chunked body, read to its end -- or to the size limit."""
    path = f"/v1/tenants/{pair.tenant}/search"
    for raw, status in (
        (b'{"vector": [1, 2, 0], "k": 2}', 200),
        (b'{"vector": [' + b"1, " * 10_000 + b"1]}", 413),
    ):

        def chunks(raw: bytes = raw) -> Iterator[bytes]:
            for start in range(0, len(raw), 1000):
                yield raw[start : start + 1000]

        lanes = []
        for url in (pair.lane.url, pair.handler_url):
            with httpx.Client(base_url=url, timeout=30) as client:
                lanes.append(client.post(path, content=chunks(), headers=_bearer(pair.key)))
        assert lanes[0].status_code == status, lanes[0].text
        _same(*lanes)


def test_searches_are_counted_under_their_tenant(pair: Pair) -> None:
    path = f"/v1/tenants/{pair.tenant}/search"
    with pair.lane.client(pair.key) as client:
        assert client.post(path, json={"vector": [1, 0, 0]}).status_code == 200
        assert client.post(path, json={"vector": [1, 0]}).status_code == 400
    with pair.lane.client() as anonymous:
        assert anonymous.post(path, json={"vector": [1, 0, 0]}).status_code == 401
        metrics = anonymous.get("/metrics").text
    label = f'route="search",status="200",tenant="{pair.tenant}"'
    assert any(label in line and not line.endswith(" 0.0") for line in metrics.splitlines())
    assert f'route="search",status="400",tenant="{pair.tenant}"' in metrics
    unauthenticated = next(
        line for line in metrics.splitlines() if line.startswith("tenantvec_unauthenticated")
    )
    assert float(unauthenticated.split()[-1]) >= 1
