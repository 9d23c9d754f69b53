"""Changing a tenant's embedding model, and ``tenantctl backfill``, as a user runs them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg

from tests.fakes.embeddings import FakeEmbeddings
from tests.fixtures.cli import TenantCtl
from tests.fixtures.fakes import provider_env

TEXTS = {
    "lamps.md": "Brass lamps need a new wick every year.\n\nPolish them with a soft cloth.",
    "candles.md": "Candles burn for forty hours.\n\nTrim the wick before lighting.",
}


def chunk_embedders(
    tenant_admin_dsn: Callable[[str], str], tenant_id: str
) -> list[tuple[str | None, int | None]]:
    dsn = tenant_admin_dsn(tenant_id)
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT embedder, vector_dims(embedding) FROM chunks ORDER BY id"
        ).fetchall()


def test_new_dimensions_empty_the_vectors_until_backfill(
    tenantctl: TenantCtl,
    fake_openai: FakeEmbeddings,
    tmp_path: Path,
    tenant_id: str,
    tenant_admin_dsn: Callable[[str], str],
) -> None:
    env = provider_env(fake_openai)
    for name, text in TEXTS.items():
        (tmp_path / name).write_text(text)
    assert (
        tenantctl(
            "tenants",
            "create",
            tenant_id,
            "--dims",
            "64",
            "--embedder",
            "hash",
            "--chunk-tokens",
            "16",
            "--chunk-overlap",
            "0",
        ).code
        == 0
    )
    assert tenantctl("ingest", tenant_id, str(tmp_path), env=env).code == 0
    before = chunk_embedders(tenant_admin_dsn, tenant_id)
    assert len(before) >= 2 and set(before) == {("hash:v1", 64)}

    refused = tenantctl(
        "tenants",
        "set-embedder",
        tenant_id,
        "openai:text-embedding-3-small",
        "--dims",
        "16",
        env=env,
    )
    assert refused.code == 2 and "--yes" in refused.stderr  # not interactive: must confirm

    changed = tenantctl(
        "tenants",
        "set-embedder",
        tenant_id,
        "openai:text-embedding-3-small",
        "--dims",
        "16",
        "--yes",
        "--json",
        env=env,
    )
    assert changed.code == 0, changed.stderr
    assert changed.json()["dims"] == 16
    assert changed.json()["embedder"] == {"provider": "openai", "model": "text-embedding-3-small"}
    assert set(chunk_embedders(tenant_admin_dsn, tenant_id)) == {(None, None)}
    empty = tenantctl("search", tenant_id, "wick", "--json", env=env).json()
    assert empty["results"] == []  # no vectors yet: nothing, never stale noise
    keyword = tenantctl("search", tenant_id, "wick", "--mode", "keyword", "--json", env=env)
    assert {h["document_id"] for h in keyword.json()["results"]} == {
        f"{tmp_path.name}/{name}" for name in TEXTS
    }  # the text is all still there

    filled = tenantctl("backfill", tenant_id, "--json", env=env)
    assert filled.code == 0, filled.stderr
    assert filled.json()["embedded"] == len(before)
    assert set(chunk_embedders(tenant_admin_dsn, tenant_id)) == {
        ("openai:text-embedding-3-small", 16)
    }
    assert fake_openai.calls[-1].body["dimensions"] == 16
    found = tenantctl("search", tenant_id, "Trim the wick before lighting.", "--json", env=env)
    assert found.json()["results"][0]["document_id"] == f"{tmp_path.name}/candles.md"
    again = tenantctl("backfill", tenant_id, "--json", env=env)
    assert again.json()["embedded"] == 0

    log = tenantctl("operations", "--tenant", tenant_id, "--json").json()
    assert log[0]["action"] == "set-embedder" and log[0]["outcome"] == "succeeded"


def test_same_dimensions_keep_serving_and_backfill_replaces(
    tenantctl: TenantCtl,
    fake_openai: FakeEmbeddings,
    tmp_path: Path,
    tenant_id: str,
    tenant_admin_dsn: Callable[[str], str],
) -> None:
    env = provider_env(fake_openai)
    (tmp_path / "lamps.md").write_text(TEXTS["lamps.md"])
    assert tenantctl("tenants", "create", tenant_id, "--dims", "8", "--embedder", "hash").code == 0
    assert tenantctl("ingest", tenant_id, str(tmp_path / "lamps.md"), env=env).code == 0
    assert (
        tenantctl("tenants", "set-embedder", tenant_id, "openai:nomic-embed-text", env=env).code
        == 0
    )
    still = tenantctl("search", tenant_id, "brass lamps", "--json", env=env).json()
    assert still["results"], "old vectors serve until the backfill"
    assert tenantctl("backfill", tenant_id, "--json", env=env).json()["embedded"] == 1
    assert chunk_embedders(tenant_admin_dsn, tenant_id) == [("openai:nomic-embed-text", 8)]


def test_a_model_without_its_provider_configured_is_refused(
    tenantctl: TenantCtl, tenant_id: str
) -> None:
    made = tenantctl(
        "tenants", "create", tenant_id, "--dims", "8", "--embedder", "voyage:voyage-3.5"
    )
    assert made.code == 2 and "TENANTVEC_VOYAGE_API_KEY" in made.stderr
    bad = tenantctl("tenants", "create", tenant_id, "--embedder", "cohere:embed-v3")
    assert bad.code == 2 and "unknown embedding provider" in bad.stderr
