"""``tenantctl docs ...`` as an operator runs it: ids page by page, counts, show,
delete by id and by filter (which asks for --yes), chunks by id."""

from __future__ import annotations

from tests.fixtures.api import RunningApi
from tests.fixtures.cli import TenantCtl, one_line_error

# A filter nested 5,000 deep: past the JSON parser's own recursion limit.
DEEP = '{"$and": [' * 5000 + "{}" + "]}" * 5000


def _seed(api: RunningApi, tenant_id: str) -> None:
    key = api.new_tenant(tenant_id)
    documents = [
        {
            "id": f"doc-{i:02d}",
            "title": f"Doc {i}",
            "metadata": {"year": 2018 + i % 6, "src": "crawler" if i % 3 == 0 else "upload"},
            "chunks": [
                {"content": f"first of {i}", "embedding": [1, i, 0]},
                {"content": f"second of {i}", "embedding": [0, 1, i], "id": f"node-{i}"},
            ],
        }
        for i in range(12)
    ]
    with api.client(key) as client:
        client.put(f"/v1/tenants/{tenant_id}/documents", json={"documents": documents})


def test_ids_count_and_show(tenantctl: TenantCtl, api: RunningApi, tenant_id: str) -> None:
    _seed(api, tenant_id)
    page = tenantctl("docs", "ids", tenant_id, "--limit", "5", "--json").json()
    assert page["ids"] == [f"doc-{i:02d}" for i in range(5)] and page["next_cursor"]
    rest = tenantctl("docs", "ids", tenant_id, "--cursor", page["next_cursor"], "--all")
    assert rest.code == 0, rest.stderr
    assert rest.stdout.split() == [f"doc-{i:02d}" for i in range(5, 12)]
    everything = tenantctl("docs", "ids", tenant_id, "--all", "--limit", "4", "--json").json()
    assert len(everything["ids"]) == 12 and everything["next_cursor"] is None

    counted = tenantctl("docs", "count", tenant_id, "--filter", '{"year": {"$gte": 2022}}')
    assert counted.stdout.strip() == "4 documents, 8 chunks"

    shown = tenantctl("docs", "show", tenant_id, "doc-03", "--json").json()
    assert [c["id"] for c in shown["documents"][0]["chunks"]] == ["doc-03#0", "node-3"]
    table = tenantctl("docs", "show", tenant_id, "doc-03", "nope")
    assert table.code == 3 and "node-3" in table.stdout
    assert one_line_error(table.stderr) == "not found: nope"


def test_delete_by_id_and_by_filter(tenantctl: TenantCtl, api: RunningApi, tenant_id: str) -> None:
    _seed(api, tenant_id)
    gone = tenantctl("docs", "delete", tenant_id, "doc-01", "missing", "--json")
    assert gone.json() == {"deleted": 1, "missing": ["missing"]}
    asked = tenantctl("docs", "delete", tenant_id, "--filter", '{"src": "crawler"}')
    assert asked.code == 2
    assert one_line_error(asked.stderr).endswith(
        "--filter matches 4 documents; pass --yes to delete them"
    )
    done = tenantctl("docs", "delete", tenant_id, "--filter", '{"src": "crawler"}', "--yes")
    assert done.code == 0 and done.stdout.strip() == "deleted 4 documents"
    assert tenantctl("docs", "count", tenant_id, "--json").json()["documents"] == 7
    for args, message in [
        ((), "give document ids or --filter (one of the two)"),
        (("--filter", "[1]"), "--filter must be a JSON object"),
        (("--filter", "{bad"), "--filter is not valid JSON"),
        (("--filter", '{"a": {"$regex": "x"}}', "--yes"), "unknown operator '$regex'"),
        (("--filter", DEEP, "--yes"), "--filter is nested too deeply"),
    ]:
        bad = tenantctl("docs", "delete", tenant_id, *args)
        assert bad.code == 2 and message in one_line_error(bad.stderr), bad.stderr
    deep = tenantctl("docs", "count", tenant_id, "--filter", DEEP)
    assert deep.code == 2 and "nested too deeply" in one_line_error(deep.stderr)


def test_chunks_by_id(tenantctl: TenantCtl, api: RunningApi, tenant_id: str) -> None:
    _seed(api, tenant_id)
    shown = tenantctl("docs", "chunks", tenant_id, "node-4", "doc-04#0", "--json").json()
    assert [(c["id"], c["document_id"]) for c in shown["chunks"]] == [
        ("node-4", "doc-04"),
        ("doc-04#0", "doc-04"),
    ]
    deleted = tenantctl("docs", "chunks", tenant_id, "node-4", "--delete")
    assert deleted.code == 0 and deleted.stdout.strip() == "deleted 1 chunk"
    after = tenantctl("docs", "show", tenant_id, "doc-04", "--json").json()
    assert [c["id"] for c in after["documents"][0]["chunks"]] == ["doc-04#0"]
    missing = tenantctl("docs", "chunks", tenant_id, "node-4")
    assert missing.code == 3 and one_line_error(missing.stderr) == "not found: node-4"
    unknown = tenantctl("docs", "count", "no-such-tenant")
    assert unknown.code == 3 and "tenant 'no-such-tenant' not found" in unknown.stderr
