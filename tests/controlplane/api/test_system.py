"""OpenAPI document, health, readiness and metrics endpoints."""

from __future__ import annotations

import httpx

from tests.fixtures.api import RunningApi


def test_openapi_has_every_route_with_operation_id_and_examples(api: RunningApi) -> None:
    schema = httpx.get(f"{api.url}/schema/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    operations = {
        (method.upper(), path): op
        for path, item in schema["paths"].items()
        for method, op in item.items()
    }
    assert {
        ("POST", "/v1/tenants"),
        ("GET", "/v1/tenants"),
        ("GET", "/v1/tenants/{tenant_id}"),
        ("DELETE", "/v1/tenants/{tenant_id}"),
        ("POST", "/v1/tenants/{tenant_id}/keys"),
        ("GET", "/v1/tenants/{tenant_id}/keys"),
        ("DELETE", "/v1/tenants/{tenant_id}/keys/{key_id}"),
        ("GET", "/v1/operations"),
        ("PUT", "/v1/tenants/{tenant_id}/documents"),
        ("GET", "/v1/tenants/{tenant_id}/documents/{document_id}"),
        ("DELETE", "/v1/tenants/{tenant_id}/documents/{document_id}"),
        ("POST", "/v1/tenants/{tenant_id}/search"),
        ("GET", "/v1/tenants/{tenant_id}/stats"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
    } <= set(operations)
    ids = [op.get("operationId") for op in operations.values()]
    assert all(ids) and len(set(ids)) == len(ids)
    for key, op in operations.items():
        bodies = [op.get("requestBody", {})] + [
            r for status, r in op["responses"].items() if status.startswith("2")
        ]
        has_content = [b for b in bodies if b.get("content")]
        for body in has_content:
            assert any(
                "examples" in media or "examples" in media.get("schema", {})
                for media in body["content"].values()
            ), key
        for status, response in op["responses"].items():
            if status >= "400" and key[1].startswith("/v1"):
                assert "application/problem+json" in response["content"], (key, status)


def test_health_and_readiness(api: RunningApi) -> None:
    assert httpx.get(f"{api.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{api.url}/readyz").json() == {"status": "ready"}


def test_metrics_count_requests_per_tenant_and_show_pools(api: RunningApi, tenant_id: str) -> None:
    key = api.new_tenant(tenant_id)
    with api.client(key) as client:
        for _ in range(3):
            client.post(f"/v1/tenants/{tenant_id}/search", json={"vector": [1, 0, 0]})
    text = httpx.get(f"{api.url}/metrics").text
    assert (
        f'tenantvec_requests_total{{route="search",status="200",tenant="{tenant_id}"}} 3.0' in text
    )
    # Latency by route only: a tenant label there would be a dozen series per tenant.
    assert 'tenantvec_request_seconds_count{route="search"}' in text
    assert not [
        line for line in text.splitlines() if "request_seconds" in line and "tenant=" in line
    ]
    assert "tenantvec_open_pools" in text
    assert 'tenantvec_server_connections{server="local"}' in text
    # One series per tenant and route: no "_created" twin beside each counter.
    assert "_created" not in text
    assert api.admin_token not in text and key not in text


def test_unknown_routes_and_methods_are_problems(api: RunningApi) -> None:
    missing = httpx.get(f"{api.url}/v2/nothing")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    wrong = httpx.patch(f"{api.url}/v1/tenants")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"].startswith("application/problem+json")
