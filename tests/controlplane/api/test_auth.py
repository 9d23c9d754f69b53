"""Who may call what: the auth matrix over every route, and tenant isolation."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest

from tests.fixtures.api import RunningApi, StartApi


@dataclass(frozen=True)
class Tenants:
    a: str
    key_a: str
    b: str
    key_b: str
    revoked: str  # a revoked key of tenant a


@pytest.fixture(scope="module")
def tenants(api: RunningApi) -> Tenants:
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    key_a, key_b = api.new_tenant(a), api.new_tenant(b)
    with api.admin() as admin:
        made = admin.post(f"/v1/tenants/{a}/keys").json()
        assert admin.delete(f"/v1/tenants/{a}/keys/{made['id']}").status_code == 204
        for tenant, key, lang in ((a, key_a, "en"), (b, key_b, "en")):
            with api.client(key) as client:
                client.put(
                    f"/v1/tenants/{tenant}/documents",
                    json={
                        "documents": [
                            {
                                "id": f"{tenant}-doc",
                                "metadata": {"lang": lang, "owner": tenant},
                                "chunks": [
                                    {"content": f"secret of {tenant}", "embedding": [1, 0, 0]}
                                ],
                            }
                        ]
                    },
                ).raise_for_status()
    return Tenants(a, key_a, b, key_b, made["key"])


def data_routes(t: str) -> list[tuple[str, str, dict[str, object] | None]]:
    return [
        ("PUT", f"/v1/tenants/{t}/documents", {"documents": [{"id": "n", "chunks": []}]}),
        ("GET", f"/v1/tenants/{t}/documents/{t}-doc", None),
        ("POST", f"/v1/tenants/{t}/search", {"vector": [1, 0, 0]}),
        ("GET", f"/v1/tenants/{t}/stats", None),
        ("DELETE", f"/v1/tenants/{t}/documents/missing-doc", None),
    ]


def admin_routes(t: str) -> list[tuple[str, str, dict[str, object] | None]]:
    return [
        ("POST", "/v1/tenants", {"id": f"x-{uuid.uuid4().hex[:8]}", "dims": 3}),
        ("GET", "/v1/tenants", None),
        ("GET", f"/v1/tenants/{t}", None),
        ("POST", f"/v1/tenants/{t}/keys", None),
        ("GET", f"/v1/tenants/{t}/keys", None),
        ("DELETE", f"/v1/tenants/{t}/keys/aaaaaaaaaaaa", None),
        ("GET", "/v1/operations", None),
        ("DELETE", "/v1/tenants/no-such-tenant", None),
    ]


def call(
    api: RunningApi, headers: dict[str, str], route: tuple[str, str, object]
) -> httpx.Response:
    method, path, body = route
    with httpx.Client(base_url=api.url, headers=headers, timeout=60) as client:
        return client.request(method, path, json=body)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


BAD_CREDENTIALS = {
    "none": {},
    "bearer without token": {"Authorization": "Bearer"},
    "basic scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
    "malformed key": bearer("tvk_short_x"),
    "wrong secret": bearer("tvk_aaaaaaaaaaaa_" + "A" * 43),
}


@pytest.mark.parametrize("credential", list(BAD_CREDENTIALS))
def test_missing_or_malformed_credentials_get_401_everywhere(
    api: RunningApi, tenants: Tenants, credential: str
) -> None:
    for route in data_routes(tenants.a) + admin_routes(tenants.a):
        response = call(api, BAD_CREDENTIALS[credential], route)
        assert response.status_code == 401, (route, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_key_gets_401_everywhere(api: RunningApi, tenants: Tenants) -> None:
    for route in data_routes(tenants.a) + admin_routes(tenants.a):
        response = call(api, bearer(tenants.revoked), route)
        assert response.status_code == 401, (route, response.text)
        assert response.json()["detail"] == "invalid or revoked API key"


def test_a_key_for_another_tenant_gets_the_same_404_as_a_missing_tenant(
    api: RunningApi, tenants: Tenants
) -> None:
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    for other, missing in zip(data_routes(tenants.b), data_routes(ghost), strict=True):
        theirs = call(api, bearer(tenants.key_a), other)
        nobody = call(api, bearer(tenants.key_a), missing)
        assert theirs.status_code == nobody.status_code == 404, (other, theirs.text)
        assert theirs.json() == {
            **nobody.json(),
            "detail": nobody.json()["detail"].replace(ghost, tenants.b),
        }
    # and nothing of b was touched
    with api.client(tenants.key_b) as client:
        assert client.get(f"/v1/tenants/{tenants.b}/stats").json()["documents"] == 1


def test_tenant_keys_cannot_use_admin_endpoints(api: RunningApi, tenants: Tenants) -> None:
    for route in admin_routes(tenants.a):
        response = call(api, bearer(tenants.key_a), route)
        assert response.status_code == 403, (route, response.text)
        assert "admin token" in response.json()["detail"]


def test_own_key_and_admin_token_reach_the_data_plane(api: RunningApi, tenants: Tenants) -> None:
    expected = [200, 200, 200, 200, 404]  # the last deletes a document that is not there
    for token in (tenants.key_a, api.admin_token):
        got = [call(api, bearer(token), route).status_code for route in data_routes(tenants.a)]
        assert got == expected


def test_admin_token_reaches_every_admin_endpoint(api: RunningApi, tenants: Tenants) -> None:
    statuses = [call(api, bearer(api.admin_token), r).status_code for r in admin_routes(tenants.a)]
    #           create list show key+ keys revoke-unknown ops delete-unknown
    assert statuses == [201, 200, 200, 201, 200, 404, 200, 404]


def test_searches_never_cross_tenants(api: RunningApi, tenants: Tenants) -> None:
    filters: list[dict[str, object] | None] = [
        None,
        {},
        {"lang": "en"},
        {"owner": tenants.b},
        {"lang": "en' OR '1'='1"},
        {"owner": f'{tenants.b}"); SELECT * FROM chunks; --'},
    ]
    with api.client(tenants.key_a) as client:
        for flt in filters:
            body: dict[str, object] = {"vector": [1, 0, 0], "k": 100}
            if flt is not None:
                body["filter"] = flt
            hits = client.post(f"/v1/tenants/{tenants.a}/search", json=body).json()["results"]
            if flt in (None, {}, {"lang": "en"}):
                assert hits, flt  # its own document matches: the search did run
            assert all(h["document_id"] == f"{tenants.a}-doc" for h in hits), (flt, hits)
            assert all(tenants.b not in (h.get("content") or "") for h in hits)


PATH_TRICKS = [
    "/v1/tenants/{a}/../{b}/search",
    "/v1/tenants/{b}%2F..%2F{a}/search",
    "/v1/tenants/{a}%2F..%2F{b}/search",
    "/v1/tenants/{b}%00/search",
    "/v1/tenants/{A}/search",
    "/v1/tenants/{b}'--/search",
    "/v1/tenants/{a}/search/../../{b}/search",
]


@pytest.mark.parametrize("template", PATH_TRICKS)
def test_path_tricks_never_reach_another_tenant(
    api: RunningApi, tenants: Tenants, template: str
) -> None:
    path = template.format(a=tenants.a, b=tenants.b, A=tenants.a.upper())
    with httpx.Client(base_url=api.url, headers=bearer(tenants.key_a), timeout=60) as client:
        response = client.post(path, json={"vector": [1, 0, 0], "k": 100})
    if response.status_code == 200:
        hits = response.json()["results"]
        assert {h["document_id"] for h in hits} <= {f"{tenants.a}-doc"}, path
    else:
        assert response.status_code in (400, 404, 405), (path, response.text)
        assert f"{tenants.b}-doc" not in response.text
        assert "secret of" not in response.text


def test_document_ids_are_data_not_sql(api: RunningApi, tenants: Tenants) -> None:
    crafted = [
        "x'); DELETE FROM chunks; --",
        'quote"double',
        "../../etc/passwd",
        "semi;colon",
        "ünïcödé",
    ]
    with api.client(tenants.key_a) as client:
        before = client.get(f"/v1/tenants/{tenants.a}/stats").json()["documents"]
        put = client.put(
            f"/v1/tenants/{tenants.a}/documents",
            json={
                "documents": [
                    {"id": d, "chunks": [{"content": d, "embedding": [0, 1, 0]}]} for d in crafted
                ]
            },
        )
        assert put.status_code == 200, put.text
        for d in crafted:
            got = client.get(f"/v1/tenants/{tenants.a}/documents/{quote(d, safe='')}")
            assert got.status_code == 200, (d, got.text)
            assert got.json()["chunks"][0]["content"] == d
        stats = client.get(f"/v1/tenants/{tenants.a}/stats").json()
        assert stats["documents"] == before + len(crafted)
        for d in crafted:
            gone = client.delete(f"/v1/tenants/{tenants.a}/documents/{quote(d, safe='')}")
            assert gone.status_code == 204, (d, gone.text)
    with api.client(tenants.key_b) as client:
        assert client.get(f"/v1/tenants/{tenants.b}/stats").json()["chunks"] == 1


def _put_secret(api: RunningApi, key: str, tenant: str, secret: str) -> None:
    with api.client(key) as client:
        client.put(
            f"/v1/tenants/{tenant}/documents",
            json={
                "documents": [
                    {"id": secret, "chunks": [{"content": secret, "embedding": [1, 0, 0]}]}
                ]
            },
        ).raise_for_status()


@pytest.mark.parametrize("backend", ["postgres", "instance"])
def test_a_deleted_tenants_key_never_reads_its_successor_in_another_process(
    start_api: StartApi, tenant_id: str, backend: str
) -> None:
    """Process 1 has verified (and cached) T's key and route; T is deleted and made again
    under the same id through process 2. Process 1 must not serve the new owner's data
    to the old key -- not within the cache TTL, not ever -- while the new owner's key
    works in both processes at once."""
    env = {"TENANTVEC_ROUTE_TTL_SECONDS": "30"}  # long: only the incarnation check saves us
    first, second = start_api(env), start_api(env)
    old_key = first.new_tenant(tenant_id, backend=backend)
    _put_secret(first, old_key, tenant_id, "old-owner-secret")
    search = {"vector": [1, 0, 0], "k": 10}
    with first.client(old_key) as client:
        assert client.post(f"/v1/tenants/{tenant_id}/search", json=search).status_code == 200

    with second.admin() as admin:
        assert admin.delete(f"/v1/tenants/{tenant_id}").status_code == 200
    new_key = second.new_tenant(tenant_id, backend=backend)
    _put_secret(second, new_key, tenant_id, "new-owner-secret")

    for attempt in range(5):
        with first.client(old_key) as client:
            answer = client.post(f"/v1/tenants/{tenant_id}/search", json=search)
            doc = client.get(f"/v1/tenants/{tenant_id}/documents/new-owner-secret")
        assert "new-owner-secret" not in answer.text + doc.text, attempt
        assert answer.status_code in (401, 404, 503), answer.text
        assert doc.status_code in (401, 404, 503), doc.text
        time.sleep(0.2)
    with first.client(new_key) as client:  # the new key works at once in process 1 too
        found = client.post(f"/v1/tenants/{tenant_id}/search", json=search)
        assert found.status_code == 200, found.text
        hits = found.json()["results"]
    assert [h["document_id"] for h in hits] == ["new-owner-secret"]
    with first.client(old_key) as client:  # and the old one is now refused outright
        assert client.post(f"/v1/tenants/{tenant_id}/search", json=search).status_code == 401
    with second.admin() as admin:
        admin.delete(f"/v1/tenants/{tenant_id}")
