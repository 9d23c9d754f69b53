"""``tenantctl import chroma`` from a real Chroma store built with the chromadb package."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.fixtures.cli import TenantCtl

chromadb = pytest.importorskip("chromadb", reason="chromadb is the optional 'chroma' extra")
from chromadb.config import Settings as ChromaSettings  # noqa: E402

RECORDS = 1_100
DIMS = 12


def build_store(path: Path, space: str = "cosine", records: int = RECORDS) -> list[str]:
    """A persistent Chroma collection with explicit embeddings (no model is downloaded)."""
    client = chromadb.PersistentClient(
        path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
    )
    collection = client.create_collection("manuals", metadata={"hnsw:space": space})
    rng = random.Random(7)
    ids = [f"rec-{i:05d}" for i in range(records)]
    for start in range(0, records, 250):
        chunk = ids[start : start + 250]
        collection.add(
            ids=chunk,
            embeddings=[[rng.uniform(-1, 1) for _ in range(DIMS)] for _ in chunk],
            documents=[
                None if i % 10 == 0 else f"manual page {i}"
                for i in range(start, start + len(chunk))
            ],
            metadatas=[
                {"page": i, "lang": "en" if i % 2 else "de"}
                for i in range(start, start + len(chunk))
            ],
        )
    client.create_collection("other")  # a second collection: --collection is then needed
    return ids


def test_import_creates_the_tenant_copies_everything_and_verifies(
    tenantctl: TenantCtl, tmp_path: Path, tenant_id: str
) -> None:
    store = tmp_path / "chroma"
    build_store(store)
    ambiguous = tenantctl("import", "chroma", "--path", str(store), "--tenant", tenant_id)
    assert ambiguous.code == 2 and "choose one with --collection" in ambiguous.stderr

    args = (
        "import",
        "chroma",
        "--path",
        str(store),
        "--collection",
        "manuals",
        "--tenant",
        tenant_id,
    )
    result = tenantctl(*args, "--json", timeout=300)
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["created_tenant"] and report["verified"]
    assert report["records"] == report["copied"] == RECORDS
    assert len(report["sampled"]) == 20 and report["mismatched"] == []

    shown = tenantctl("tenants", "show", tenant_id, "--json").json()
    assert (shown["dims"], shown["metric"]) == (DIMS, "cosine")
    vector = "[" + ",".join(["0.5"] * DIMS) + "]"
    found = tenantctl(
        "search", tenant_id, "--vector", vector, "--filter", '{"lang": "de"}', "--json"
    )
    hits = found.json()["results"]
    assert len(hits) == 10 and all(h["metadata"]["lang"] == "de" for h in hits)

    again = tenantctl(*args)
    assert again.code == 0, again.stderr
    assert f"counts equal: {RECORDS} records in Chroma, {RECORDS} documents" in again.stdout
    assert "20 of 20 records identical" in again.stdout


def test_an_interrupted_import_resumes(
    tenantctl: TenantCtl, tmp_path: Path, tenant_id: str
) -> None:
    store = tmp_path / "chroma"
    build_store(store, space="l2", records=700)
    args = (
        "import",
        "chroma",
        "--path",
        str(store),
        "--collection",
        "manuals",
        "--tenant",
        tenant_id,
        "--batch",
        "300",
    )
    crashed = tenantctl(*args, env={"TENANTVEC_FAILPOINTS": "chroma.after_batch"})
    assert crashed.code == 137  # died after its first batch, as if killed
    resumed = tenantctl(*args, "--json")
    assert resumed.code == 0, resumed.stderr
    report = resumed.json()
    assert report["resumed_from"] == 300 and not report["created_tenant"]
    assert report["copied"] == 700 and report["verified"]
    assert tenantctl("tenants", "show", tenant_id, "--json").json()["metric"] == "l2"


def test_a_tenant_with_other_dimensions_is_refused(
    tenantctl: TenantCtl, tmp_path: Path, tenant_id: str
) -> None:
    store = tmp_path / "chroma"
    build_store(store, records=5)
    assert tenantctl("tenants", "create", tenant_id, "--dims", "3").code == 0
    refused = tenantctl(
        "import", "chroma", "--path", str(store), "--collection", "manuals", "--tenant", tenant_id
    )
    assert refused.code == 2
    assert f"tenant {tenant_id} has 3 dimensions, collection 'manuals' has {DIMS}" in refused.stderr
    missing = tenantctl("import", "chroma", "--path", str(tmp_path / "nope"), "--tenant", tenant_id)
    assert missing.code == 2 and "not a directory" in missing.stderr
