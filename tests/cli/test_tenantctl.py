"""tenantctl as users run it (in-process through tenantctl.main.main; end to end as a process in
test_process.py): JSON output, exit codes, one-line errors, no secrets."""

from __future__ import annotations

import shutil
import time

import psycopg
import pytest

from controlplane.localpg import EmbeddedServer
from controlplane.localpg.cluster import port_is_free
from tests.fixtures.cli import TenantCtl, one_line_error
from tests.fixtures.postgres import free_port, make_home, throwaway_settings


def test_tenant_round_trip_with_json(tenantctl: TenantCtl, tenant_id: str) -> None:
    created = tenantctl(
        "tenants",
        "create",
        tenant_id,
        "--dims",
        "4",
        "--metric",
        "l2",
        "--label",
        "team=search",
        "--label",
        "env=ci",
        "--ttl",
        "2h",
        "--json",
    )
    assert created.code == 0, created.stderr
    body = created.json()
    assert body["id"] == tenant_id and body["state"] == "ready"
    assert body["labels"] == {"team": "search", "env": "ci"}
    assert body["expires_at"] is not None

    listed = tenantctl("tenants", "list", "--label", "team=search", "--json")
    assert tenant_id in [t["id"] for t in listed.json()]
    shown = tenantctl("tenants", "show", tenant_id, "--json").json()
    assert shown["metric"] == "l2" and shown["live"]["exists"] is True

    dsn = tenantctl("tenants", "dsn", tenant_id).stdout.strip()
    with psycopg.connect(dsn) as conn:
        # Its owner role, whose name (like its database's) is opaque.
        assert conn.execute("SELECT current_user").fetchone() == (shown["placement"]["role"],)

    deleted = tenantctl("tenants", "delete", tenant_id, "--yes", "--json")
    assert deleted.code == 0 and deleted.json()["state"] == "deleted"
    erasure = deleted.json()["placement"]["erasure"]
    assert erasure["immediate"] is True and erasure["detail"].startswith("DROP DATABASE")
    assert tenant_id not in [t["id"] for t in tenantctl("tenants", "list", "--json").json()]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["tenants", "create", "Bad_Name"], 2, "invalid tenant id"),
        (["tenants", "create", "okay-name", "--dims", "0"], 2, "dims must be between"),
        (["tenants", "create", "okay-name", "--ttl", "soon"], 2, "invalid duration"),
        (["tenants", "create", "okay-name", "--label", "novalue"], 2, "key=value"),
        (["tenants", "create", "okay-name", "--metric", "hamming"], 2, "--metric"),
        (["tenants", "create", "okay-name", "--server", "nowhere"], 3, "not registered"),
        (["tenants", "show", "no-such-tenant"], 3, "not found"),
        (["tenants", "delete", "no-such-tenant", "--yes"], 3, "not found"),
        (["tenants", "dsn", "no-such-tenant"], 3, "not found"),
        (["tenants", "frobnicate"], 2, "No such command"),
        (["servers", "add", "x", "not a dsn"], 2, "connection string"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code(
    tenantctl: TenantCtl, args: list[str], code: int, message: str
) -> None:
    result = tenantctl(*args, "--json")
    assert result.code == code, (result.stdout, result.stderr)
    assert message in one_line_error(result.stderr)
    assert result.stdout == ""


def test_duplicate_is_a_conflict(tenantctl: TenantCtl, tenant_id: str) -> None:
    assert tenantctl("tenants", "create", tenant_id, "--dims", "3").code == 0
    again = tenantctl("tenants", "create", tenant_id, "--dims", "3")
    assert again.code == 4
    assert "already exists" in one_line_error(again.stderr)
    assert tenantctl("tenants", "delete", tenant_id, "--yes").code == 0


def test_delete_needs_yes_when_not_interactive(tenantctl: TenantCtl, tenant_id: str) -> None:
    assert tenantctl("tenants", "create", tenant_id, "--dims", "3").code == 0
    refused = tenantctl("tenants", "delete", tenant_id)
    assert refused.code == 2 and "--yes" in one_line_error(refused.stderr)
    assert tenantctl("tenants", "show", tenant_id).code == 0
    assert tenantctl("tenants", "delete", tenant_id, "-y").code == 0


def test_gc_deletes_only_expired_tenants(tenantctl: TenantCtl, tenant_id: str) -> None:
    short, long_ = f"{tenant_id}-short", f"{tenant_id}-long"
    assert tenantctl("tenants", "create", short, "--dims", "3", "--ttl", "1s").code == 0
    assert tenantctl("tenants", "create", long_, "--dims", "3", "--ttl", "1h").code == 0
    time.sleep(1.2)
    report = tenantctl("gc", "--json")
    assert report.code == 0, report.stderr
    assert short in report.json()["deleted"] and long_ not in report.json()["deleted"]
    assert tenantctl("tenants", "show", short).code == 3
    assert tenantctl("tenants", "delete", long_, "--yes").code == 0


def test_gc_deletes_many_expired_tenants_a_few_at_a_time_with_a_bar(
    tenantctl: TenantCtl, tenant_id: str
) -> None:
    doomed = [f"{tenant_id}-{n}" for n in range(6)]
    for name in doomed:
        assert tenantctl("tenants", "create", name, "--dims", "3", "--ttl", "1s").code == 0
    refused = tenantctl("gc", "--concurrency", "0")
    assert refused.code == 2 and "--concurrency" in one_line_error(refused.stderr)
    time.sleep(1.2)
    # On a terminal (as rich tells one: FORCE_COLOR), the bar is drawn on stderr...
    report = tenantctl("gc", "--concurrency", "3", env={"FORCE_COLOR": "1"})
    assert report.code == 0, report.stderr
    assert "deleting expired" in report.stderr
    assert all(f"deleted expired tenant {name}" in report.stdout for name in doomed)
    for name in doomed:
        assert tenantctl("tenants", "show", name).code == 3
    # ... and in a pipe or a log, not at all.
    assert tenantctl("gc").stderr == ""


def test_secret_key_is_a_usable_fernet_key(tenantctl: TenantCtl) -> None:
    from cryptography.fernet import Fernet

    key = tenantctl("secret-key", "--json").json()["secret_key"]
    assert Fernet(key.encode()).decrypt(Fernet(key.encode()).encrypt(b"x")) == b"x"


def test_doctor_and_operations(tenantctl: TenantCtl) -> None:
    doctor = tenantctl("doctor", "--json")
    assert doctor.code == 0, doctor.stderr
    checks = {c["name"]: c for c in doctor.json()["checks"]}
    assert checks["server local"]["status"] == "ok"
    assert "pgvector 0.8.5" in checks["server local"]["detail"]
    # No Neon key: the Neon API probe says so and passes.
    assert checks["neon API"]["status"] == "ok" and "not probed" in checks["neon API"]["detail"]
    ops = tenantctl("operations", "--limit", "5", "--json")
    assert ops.code == 0 and len(ops.json()) <= 5
    assert tenantctl("servers", "list", "--json").json()[0]["name"] == "local"


def test_secrets_never_reach_output_logs_or_catalog(
    tenantctl: TenantCtl, tenant_id: str, superuser_dsn: str, catalog_dsn: str
) -> None:
    outputs = [tenantctl("--debug", "tenants", "create", tenant_id, "--dims", "3", "--json")]
    password = psycopg.conninfo.conninfo_to_dict(
        tenantctl("tenants", "dsn", tenant_id).stdout.strip()
    )["password"]
    admin_password = psycopg.conninfo.conninfo_to_dict(superuser_dsn)["password"]
    for args in (
        ["tenants", "list"],
        ["tenants", "show", tenant_id],
        ["tenants", "list", "--json"],
        ["servers", "list", "--json"],
        ["doctor"],
        ["operations", "--json"],
        ["settings"],
        ["status"],
        ["--verbose", "reconcile"],
    ):
        outputs.append(tenantctl("--debug", *args))
    for result in outputs:
        assert result.code == 0, result.stderr
        for secret in (password, admin_password):
            assert secret not in result.stdout and secret not in result.stderr

    with psycopg.connect(catalog_dsn) as conn:
        dump = "".join(
            str(row)
            for table in ("tenants", "servers", "operations")
            for row in conn.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608
        )
    assert password not in dump and admin_password not in dump
    assert tenantctl("tenants", "delete", tenant_id, "--yes").code == 0


def test_up_status_down_on_a_fresh_home(tenantctl: TenantCtl) -> None:
    home = make_home("tenantvec-cli-")
    fresh = throwaway_settings(home, free_port())
    try:
        status = tenantctl("status", "--json", settings=fresh)
        assert status.code == 0 and status.json()["initialized"] is False
        up = tenantctl("up", "--json", settings=fresh)
        assert up.code == 0, up.stderr
        assert up.json()["running"] is True and up.json()["version"].startswith("18")
        again = tenantctl("up", "--json", settings=fresh)
        assert again.code == 0 and again.json()["pid"] == up.json()["pid"]
        assert tenantctl("status", "--json", settings=fresh).json()["running"] is True
        assert (home / "superuser.password").stat().st_mode & 0o777 == 0o600
        assert (home / "secret.key").stat().st_mode & 0o777 == 0o600
        instance = tenantctl(
            "tenants", "create", "solo", "--dims", "3", "--backend", "instance", "--json",
            settings=fresh,
        )  # fmt: skip
        assert instance.code == 0, instance.stderr
        down = tenantctl("down", "--json", settings=fresh)
        assert down.code == 0 and down.json() == {"stopped": True, "instances_stopped": 1}
        assert port_is_free(instance.json()["placement"]["port"])
        assert tenantctl("status", "--json", settings=fresh).json()["running"] is False
    finally:
        tenantctl("down", settings=fresh)
        EmbeddedServer(throwaway_settings(home, 1)).stop()
        shutil.rmtree(home, ignore_errors=True)


def test_demo_runs_and_can_run_again(tenantctl: TenantCtl) -> None:
    # With the default embedder (wordllama), as a user runs it.
    default = {"TENANTVEC_EMBEDDER": "wordllama"}
    for _ in range(2):  # a second run replaces the first run's tenants
        result = tenantctl("demo", env=default)
        assert result.code == 0, result.stderr
        assert "'Invoices are due within 30 days.'" in result.stdout  # acme's nearest chunk
        assert "refused by Postgres" in result.stdout
        assert "CONNECTED" not in result.stdout
        assert "Q: Why a database per tenant rather than a tenant_id column?" in result.stdout
        assert "(embedder wordllama:l2_supercat, 256 dims)" in result.stdout
        assert "Q: How do I import a ChromaDB collection?" in result.stdout
    summary = tenantctl("demo", "--json", env=default).json()
    assert summary["nearest"]["demo-acme"]["content"] == "Invoices are due within 30 days."
    assert summary["cross_tenant_connection"]["refused"] is True
    # The docs tour answers from the right files, through the API with hybrid search.
    answered = {a["question"]: a for a in summary["api"]["docs"]}
    why = answered["Why a database per tenant rather than a tenant_id column?"]
    assert why["document"] == "README.md"
    # The chunk that says how: the README's command table, or the import's own section.
    chroma = answered["How do I import a ChromaDB collection?"]
    assert chroma["document"] in ("README.md", "docs/ingestion.md")
    assert "import chroma" in chroma["content"]
    listed = {t["id"]: t["state"] for t in tenantctl("tenants", "list", "--json").json()}
    assert listed.get("demo-acme") == "ready" and "demo-globex" not in listed
    for tenant in ("demo-acme", "demo-docs"):
        assert tenantctl("tenants", "delete", tenant, "--yes").code == 0


def test_servers_remove_refuses_while_hosting(tenantctl: TenantCtl, tenant_id: str) -> None:
    assert tenantctl("tenants", "create", tenant_id, "--dims", "3").code == 0
    refused = tenantctl("servers", "remove", "local")
    assert refused.code == 4 and "still hosts" in one_line_error(refused.stderr)
    missing = tenantctl("servers", "remove", "no-such-server")
    assert missing.code == 3
    assert tenantctl("tenants", "delete", tenant_id, "--yes").code == 0
