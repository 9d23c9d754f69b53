"""``tenantctl keys``, ``tenantctl search`` (direct and through --api) as a user runs them."""

from __future__ import annotations

import pytest

from tests.fixtures.api import RunningApi
from tests.fixtures.cli import TenantCtl


def _seed(api: RunningApi, tenant_id: str) -> str:
    key = api.new_tenant(tenant_id)
    with api.client(key) as client:
        client.put(
            f"/v1/tenants/{tenant_id}/documents",
            json={
                "documents": [
                    {"id": "near", "chunks": [{"content": "close by", "embedding": [1, 0, 0]}]},
                    {"id": "far", "chunks": [{"content": "far away", "embedding": [0, 0, 1]}]},
                ]
            },
        ).raise_for_status()
    return key


def test_keys_create_list_revoke(tenantctl: TenantCtl, api: RunningApi, tenant_id: str) -> None:
    api.new_tenant(tenant_id)
    created = tenantctl("keys", "create", tenant_id, "--name", "ci", "--json")
    assert created.code == 0, created.stderr
    issued = created.json()
    assert issued["key"].startswith(f"tvk_{issued['id']}_") and issued["name"] == "ci"
    with api.client(issued["key"]) as client:
        assert client.get(f"/v1/tenants/{tenant_id}/stats").status_code == 200

    listed = tenantctl("keys", "list", tenant_id, "--json").json()
    assert issued["id"] in {k["id"] for k in listed}
    assert all("key" not in k for k in listed)  # secrets are never listed

    plain = tenantctl("keys", "create", tenant_id)
    assert plain.code == 0 and plain.stdout.strip().startswith("tvk_")
    assert "shown once" in plain.stderr

    revoked = tenantctl("keys", "revoke", tenant_id, issued["id"], "--json")
    assert revoked.code == 0 and revoked.json()["revoked_at"]
    assert issued["id"] not in {
        k["id"] for k in tenantctl("keys", "list", tenant_id, "--json").json()
    }

    unknown = tenantctl("keys", "revoke", tenant_id, "zzzzzzzzzzzz")
    assert unknown.code == 3
    assert unknown.stderr == f"error: key 'zzzzzzzzzzzz' not found for tenant '{tenant_id}'\n"


def test_search_directly_and_through_the_api(
    tenantctl: TenantCtl, api: RunningApi, tenant_id: str
) -> None:
    key = _seed(api, tenant_id)
    direct = tenantctl("search", tenant_id, "--vector", "[1, 0, 0]", "-k", "1", "--json")
    assert direct.code == 0, direct.stderr
    assert [h["document_id"] for h in direct.json()["results"]] == ["near"]

    through = tenantctl(
        "search",
        tenant_id,
        "--vector",
        "[1, 0, 0]",
        "--api",
        api.url,
        "--json",
        env={"TENANTVEC_API_KEY": key},
    )
    assert through.code == 0, through.stderr
    assert [h["document_id"] for h in through.json()["results"]] == ["near", "far"]

    table = tenantctl("search", tenant_id, "--vector", "[0, 0, 1]", "-k", "1")
    assert table.code == 0 and "far away" in table.stdout


def test_search_errors_are_one_line(tenantctl: TenantCtl, api: RunningApi, tenant_id: str) -> None:
    key = _seed(api, tenant_id)
    cases = [
        (["--vector", "[1, 0]"], 2, f"tenant {tenant_id} expects 3 dimensions, got 2"),
        (["--vector", "[1, 0"], 2, "--vector is not valid JSON"),
        (["--vector", "[NaN, 0, 1]"], 2, "--vector contains NaN"),
        (["--vector", "[1, 0, 0]", "-k", "1001"], 2, "TENANTVEC_MAX_K"),
        (["--vector", "[1, 0, 0]", "--filter", "[1]"], 2, "Expected `object"),
    ]
    for args, code, words in cases:
        result = tenantctl("search", tenant_id, *args)
        assert result.code == code, (args, result.stderr)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
        assert words in result.stderr, (args, result.stderr)

    elsewhere = tenantctl(
        "search",
        "no-such-tenant",
        "--vector",
        "[1, 0, 0]",
        "--api",
        api.url,
        env={"TENANTVEC_API_KEY": key},
    )
    assert elsewhere.code == 3
    assert elsewhere.stderr == "error: tenant 'no-such-tenant' not found\n"

    refused = tenantctl(
        "search",
        tenant_id,
        "--vector",
        "[1, 0, 0]",
        "--api",
        api.url,
        env={"TENANTVEC_API_KEY": "tvk_aaaaaaaaaaaa_" + "B" * 43},
    )
    assert refused.code == 6 and "invalid or revoked API key" in refused.stderr

    down = tenantctl("search", tenant_id, "--vector", "[1, 0, 0]", "--api", "http://127.0.0.1:9")
    assert down.code == 5 and "unreachable" in down.stderr


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (2, 1), (4, 1), (6, 2), (8, 2), (32, 10)])
def test_serve_defaults_to_one_worker_per_three_cores(
    cores: int, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenantctl.api import default_workers

    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(cores)))
    assert default_workers() == workers
