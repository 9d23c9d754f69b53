"""The bulk path of ``tenantctl ingest``: a load at least as large as the tenant (and
of at least BULK_MIN_ROWS) builds the vector index once, searches stay right meanwhile,
and whatever a kill leaves, ``reconcile`` finishes."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg
import pytest

from controlplane.retrieval.bulk import BULK_MIN_ROWS
from controlplane.settings import Settings
from tests.fixtures.api import RunningApi
from tests.fixtures.cli import TENANTCTL, TenantCtl, kill_group_after, settings_env

DIMS = 8


def _write(path: Path, count: int, seed: int, prefix: str = "d") -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, DIMS)).astype(np.float32)
    with path.open("w") as out:
        for i, vector in enumerate(vectors.tolist()):
            chunk = {"content": f"row {i}", "embedding": vector}
            out.write(json.dumps({"id": f"{prefix}{i}", "chunks": [chunk]}) + "\n")
    return vectors


def _vector_index(dsn: str) -> bool | None:
    """The vector index's validity; None if there is none."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = 'chunks_embedding_idx'"
        ).fetchone()
    return None if row is None else bool(row[0])


def _nearest(tenantctl: TenantCtl, tenant_id: str, vector: np.ndarray) -> str:
    found = tenantctl(
        "search", tenant_id, "--vector", json.dumps(vector.tolist()), "-k", "1", "--json"
    )
    assert found.code == 0, found.stderr
    return str(found.json()["results"][0]["chunk_id"])


def test_a_large_load_builds_the_index_once_and_a_small_one_inserts(
    tenantctl: TenantCtl, tenant_id: str, tenant_admin_dsn: Callable[[str], str], tmp_path: Path
) -> None:
    assert tenantctl("tenants", "create", tenant_id, "--dims", str(DIMS)).code == 0
    _write(tmp_path / "first.jsonl", 200, seed=7, prefix="f")
    first = tenantctl("ingest", tenant_id, str(tmp_path / "first.jsonl"))
    assert first.code == 0 and "bulk load" not in first.stderr  # too few to rebuild for
    tuned = tenantctl("tenants", "tune", tenant_id, "--json")
    assert tuned.code == 0 and tuned.json()["recall"]["measured"] is not None

    vectors = _write(tmp_path / "big.jsonl", BULK_MIN_ROWS, seed=1)
    loaded = tenantctl("ingest", tenant_id, str(tmp_path / "big.jsonl"))
    assert loaded.code == 0, loaded.stderr
    assert "bulk load: 5,000 documents" in loaded.stderr
    assert _vector_index(tenant_admin_dsn(tenant_id)) is True
    assert _nearest(tenantctl, tenant_id, vectors[1234]) == "d1234#0"
    shown = tenantctl("tenants", "show", tenant_id, "--json").json()
    operations = shown["operations"]
    assert any(o["action"] == "bulk-load" and o["outcome"] == "succeeded" for o in operations)
    assert shown["recall"]["measured"] is None  # a new graph: its recall measured again

    # Fewer rows than the tenant holds: inserted into the index as they come.
    _write(tmp_path / "small.jsonl", 200, seed=2, prefix="s")
    small = tenantctl("ingest", tenant_id, str(tmp_path / "small.jsonl"))
    assert small.code == 0 and "bulk load" not in small.stderr
    assert _vector_index(tenant_admin_dsn(tenant_id)) is True


@pytest.mark.parametrize("point", ["bulk.after_drop", "bulk.before_build"])
def test_a_bulk_load_that_dies_is_finished_by_reconcile(
    tenantctl: TenantCtl,
    tenant_id: str,
    tenant_admin_dsn: Callable[[str], str],
    tmp_path: Path,
    point: str,
) -> None:
    assert tenantctl("tenants", "create", tenant_id, "--dims", str(DIMS)).code == 0
    vectors = _write(tmp_path / "big.jsonl", BULK_MIN_ROWS, seed=3)
    died = tenantctl(
        "ingest", tenant_id, str(tmp_path / "big.jsonl"), env={"TENANTVEC_FAILPOINTS": point}
    )
    assert died.code == 137, died.stderr
    assert _vector_index(tenant_admin_dsn(tenant_id)) is None  # dropped, not built again

    fixed = tenantctl("reconcile", "--fix", "--json")
    assert fixed.code == 0, fixed.stderr
    assert _vector_index(tenant_admin_dsn(tenant_id)) is True
    operations = tenantctl("tenants", "show", tenant_id, "--json").json()["operations"]
    assert not any(o["outcome"] == "running" for o in operations)
    again = tenantctl("ingest", tenant_id, str(tmp_path / "big.jsonl"), "--json")
    assert again.code == 0, again.stderr
    summary = again.json()
    assert summary["created"] + summary["unchanged"] == BULK_MIN_ROWS
    assert _nearest(tenantctl, tenant_id, vectors[4321]) == "d4321#0"


def test_killed_at_a_random_moment_reconcile_leaves_a_valid_index(
    tenantctl: TenantCtl,
    tenant_id: str,
    tenant_admin_dsn: Callable[[str], str],
    tmp_path: Path,
    pg_settings: Settings,
) -> None:
    assert tenantctl("tenants", "create", tenant_id, "--dims", str(DIMS)).code == 0
    _write(tmp_path / "big.jsonl", BULK_MIN_ROWS, seed=4)
    rng = np.random.default_rng()
    for _ in range(3):
        kill_group_after(
            ["ingest", tenant_id, str(tmp_path / "big.jsonl")],
            settings_env(pg_settings),
            float(rng.uniform(0.5, 4.0)),
        )
        assert tenantctl("reconcile", "--fix").code in (0, 1)
        assert _vector_index(tenant_admin_dsn(tenant_id)) is True
    finished = tenantctl("ingest", tenant_id, str(tmp_path / "big.jsonl"), "--json")
    assert finished.code == 0, finished.stderr
    assert finished.json()["created"] + finished.json()["unchanged"] == BULK_MIN_ROWS


def test_searches_through_the_api_miss_no_committed_row_during_a_bulk_load(
    tenantctl: TenantCtl, tenant_id: str, tmp_path: Path, api: RunningApi, pg_settings: Settings
) -> None:
    assert tenantctl("tenants", "create", tenant_id, "--dims", str(DIMS)).code == 0
    # Rows the tenant holds before the load: every search must find them, index or not.
    before = _write(tmp_path / "before.jsonl", 300, seed=5, prefix="b")
    assert tenantctl("ingest", tenant_id, str(tmp_path / "before.jsonl")).code == 0
    _write(tmp_path / "big.jsonl", BULK_MIN_ROWS, seed=6)

    failures: list[str] = []
    searched = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal searched
        with api.admin() as http:
            n = 0
            while not stop.is_set():
                i = n % len(before)
                response = http.post(
                    f"/v1/tenants/{tenant_id}/search",
                    json={"vector": before[i].tolist(), "k": 1},
                )
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
                elif response.json()["results"][0]["document_id"] != f"b{i}":
                    failures.append(f"b{i} not found: {response.json()['results']}")
                searched += 1
                n += 37

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        load = subprocess.run(
            [*TENANTCTL, "ingest", tenant_id, str(tmp_path / "big.jsonl")],
            env=settings_env(pg_settings),
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(30)
    assert load.returncode == 0, load.stderr
    assert "bulk load" in load.stderr
    assert searched >= 20, searched
    assert failures == []
