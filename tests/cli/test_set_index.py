"""``tenantctl tenants set-index``: per-tenant index tuning and the bulk-load path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg

from tests.fixtures.cli import TenantCtl


def vector_indexes(tenant_admin_dsn: Callable[[str], str], tenant_id: str) -> dict[str, str]:
    dsn = tenant_admin_dsn(tenant_id)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename = 'chunks' AND indexname LIKE 'chunks_embedding_idx%%'"
        ).fetchall()
    return dict(rows)


def test_load_without_index_then_build_it(
    tenantctl: TenantCtl, tmp_path: Path, tenant_id: str, tenant_admin_dsn: Callable[[str], str]
) -> None:
    created = tenantctl(
        "tenants", "create", tenant_id, "--dims", "32", "--embedder", "hash", "--index", "none"
    )
    assert created.code == 0, created.stderr
    assert vector_indexes(tenant_admin_dsn, tenant_id) == {}
    (tmp_path / "lamps.md").write_text("Brass lamps need a new wick every year.")
    (tmp_path / "candles.md").write_text("Candles burn for forty hours.")
    assert tenantctl("ingest", tenant_id, str(tmp_path)).code == 0

    built = tenantctl(
        "tenants", "set-index", tenant_id, "--m", "8", "--ef-construction", "32", "--json"
    )
    assert built.code == 0, built.stderr
    # 32 dims: below HALF_PRECISION_FROM_DIMS, a full-precision index by default.
    assert built.json()["index"] == {
        "kind": "hnsw",
        "m": 8,
        "ef_construction": 32,
        "precision": "full",
    }
    indexes = vector_indexes(tenant_admin_dsn, tenant_id)
    assert list(indexes) == ["chunks_embedding_idx"]
    assert "USING hnsw" in indexes["chunks_embedding_idx"]
    assert "m='8'" in indexes["chunks_embedding_idx"]

    found = tenantctl("search", tenant_id, "brass lamps wick", "--json")
    assert found.code == 0, found.stderr
    assert found.json()["results"][0]["document_id"].endswith("lamps.md")

    shown = tenantctl("tenants", "show", tenant_id, "--json").json()
    assert shown["index"]["m"] == 8
    assert any(op["action"] == "set-index" for op in shown["operations"])

    dropped = tenantctl("tenants", "set-index", tenant_id, "--index", "none")
    assert dropped.code == 0 and "exact" in dropped.stdout
    assert vector_indexes(tenant_admin_dsn, tenant_id) == {}


def test_leftover_of_an_interrupted_build_is_replaced(
    tenantctl: TenantCtl, tenant_id: str, tenant_admin_dsn: Callable[[str], str]
) -> None:
    assert tenantctl("tenants", "create", tenant_id, "--dims", "8").code == 0
    dsn = tenant_admin_dsn(tenant_id)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # What a build killed half way leaves: an index under the temporary name.
        conn.execute("CREATE INDEX chunks_embedding_idx_new ON chunks (id)")

    rebuilt = tenantctl("tenants", "set-index", tenant_id, "--index", "ivfflat", "--lists", "4")
    assert rebuilt.code == 0, rebuilt.stderr
    indexes = vector_indexes(tenant_admin_dsn, tenant_id)
    assert list(indexes) == ["chunks_embedding_idx"]
    assert "USING ivfflat" in indexes["chunks_embedding_idx"]


def test_bad_index_settings_change_nothing(
    tenantctl: TenantCtl, tenant_id: str, tenant_admin_dsn: Callable[[str], str]
) -> None:
    assert tenantctl("tenants", "create", tenant_id, "--dims", "8").code == 0
    before = vector_indexes(tenant_admin_dsn, tenant_id)

    refused = tenantctl("tenants", "set-index", tenant_id, "--m", "1")
    assert refused.code == 2
    assert refused.stderr.strip().count("\n") == 0 and "m must be between" in refused.stderr
    missing = tenantctl("tenants", "set-index", "no-such-tenant")
    assert missing.code != 0 and "no-such-tenant" in missing.stderr
    assert vector_indexes(tenant_admin_dsn, tenant_id) == before


def test_precision_is_chosen_by_size_kept_and_changed(
    tenantctl: TenantCtl, tenant_id: str, tenant_admin_dsn: Callable[[str], str]
) -> None:
    # OpenAI's text-embedding-3-large: 3,072 dimensions, indexed as halfvec.
    created = tenantctl("tenants", "create", tenant_id, "--dims", "3072", "--json")
    assert created.code == 0, created.stderr
    assert created.json()["index"]["precision"] == "half"
    definition = vector_indexes(tenant_admin_dsn, tenant_id)["chunks_embedding_idx"]
    assert "((embedding)::halfvec(3072)) halfvec_cosine_ops" in definition

    refused = tenantctl("tenants", "set-index", tenant_id, "--precision", "full")
    assert refused.code == 2
    assert refused.stderr.strip().count("\n") == 0
    assert "at most 2000 dimensions at full precision" in refused.stderr
    assert vector_indexes(tenant_admin_dsn, tenant_id)["chunks_embedding_idx"] == definition

    # Another build parameter: the precision stays.
    rebuilt = tenantctl("tenants", "set-index", tenant_id, "--m", "24", "--ef-construction", "96")
    assert rebuilt.code == 0, rebuilt.stderr
    assert "precision=half" in rebuilt.stdout
    shown = tenantctl("tenants", "show", tenant_id, "--json").json()
    assert shown["index"] == {"kind": "hnsw", "m": 24, "ef_construction": 96, "precision": "half"}


def test_a_small_tenant_moves_to_half_precision_and_back(
    tenantctl: TenantCtl, tenant_id: str, tenant_admin_dsn: Callable[[str], str]
) -> None:
    assert tenantctl("tenants", "create", tenant_id, "--dims", "8").code == 0
    assert "halfvec" not in vector_indexes(tenant_admin_dsn, tenant_id)["chunks_embedding_idx"]
    half = tenantctl("tenants", "set-index", tenant_id, "--precision", "half")
    assert half.code == 0, half.stderr
    assert "halfvec(8)" in vector_indexes(tenant_admin_dsn, tenant_id)["chunks_embedding_idx"]
    full = tenantctl("tenants", "set-index", tenant_id, "--precision", "full", "--json")
    assert full.code == 0 and full.json()["index"]["precision"] == "full"
    assert "halfvec" not in vector_indexes(tenant_admin_dsn, tenant_id)["chunks_embedding_idx"]


def test_tune_measures_recall_and_sets_the_search_width(
    tenantctl: TenantCtl, tenant_id: str, tenant_admin_dsn: Callable[[str], str]
) -> None:
    assert tenantctl("tenants", "create", tenant_id, "--dims", "8").code == 0
    with psycopg.connect(tenant_admin_dsn(tenant_id), autocommit=True) as conn:
        conn.execute("INSERT INTO documents (id) SELECT 'd' || g FROM generate_series(1, 2000) g")
        conn.execute(
            "INSERT INTO chunks (document_id, ordinal, content, embedding) "
            "SELECT 'd' || g, 0, 'chunk', (SELECT array_agg(random() - 0.5) "
            "FROM generate_series(1, 8) WHERE g > 0)::vector FROM generate_series(1, 2000) g"
        )
    shown = tenantctl("tenants", "show", tenant_id, "--json").json()
    assert shown["recall"]["target"] == 0.95 and shown["recall"]["measured"] is None

    tuned = tenantctl("tenants", "tune", tenant_id, "--target", "0.99", "--json")
    assert tuned.code == 0, tuned.stderr
    recall = tuned.json()["recall"]
    assert recall["target"] == 0.99 and recall["measured"] >= 0.99
    assert recall["ef_search"] >= 40 and recall["chunks"] == 2000 and recall["sample"] >= 10
    line = tenantctl("tenants", "tune", tenant_id)
    assert line.code == 0 and "meets its target 0.99" in line.stdout, line.stdout

    refused = tenantctl("tenants", "tune", tenant_id, "--target", "1.5")
    assert refused.code == 2 and refused.stderr.strip().count("\n") == 0
    assert "recall target must be between 0.5 and 1.0" in refused.stderr


def test_a_tenant_is_created_with_its_recall_target(tenantctl: TenantCtl, tenant_id: str) -> None:
    made = tenantctl("tenants", "create", tenant_id, "--dims", "8", "--recall-target", "0.98")
    assert made.code == 0, made.stderr
    assert tenantctl("tenants", "show", tenant_id, "--json").json()["recall"]["target"] == 0.98

    refused = tenantctl(
        "tenants", "create", f"{tenant_id}-x", "--dims", "8", "--recall-target", "1.2"
    )
    assert refused.code == 2 and refused.stderr.strip().count("\n") == 0
    assert "recall target must be between 0.5 and 1.0" in refused.stderr
    assert tenantctl("tenants", "show", f"{tenant_id}-x").code != 0  # nothing made
