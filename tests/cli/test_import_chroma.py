"""``tenantctl import chroma`` from a real Chroma store built with the chromadb package."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.cli import TenantCtl, one_line_error

chromadb = pytest.importorskip("chromadb", reason="chromadb is the optional 'chroma' extra")
from chromadb.config import Settings as ChromaSettings  # noqa: E402

RECORDS = 1_100
DIMS = 12
# As a user has it: the product's default embedder (the suite's settings may differ).
DEFAULT_EMBEDDER = {"TENANTVEC_EMBEDDER": "wordllama"}


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


def _openai_store(path: Path, stub: Path, dims: int) -> None:
    """A store made as with Chroma's OpenAI embedding function: the collection records
    the function and its model. (Making the function needs the ``openai`` package, an
    outside one: a stand-in module is enough, since no text is embedded here.)"""
    (stub / "openai").mkdir(parents=True)
    (stub / "openai" / "__init__.py").write_text(
        "class OpenAI:\n    def __init__(self, **options):\n        pass\n"
    )
    code = f"""
import os, sys, random
sys.path.insert(0, {str(stub)!r})
os.environ["CHROMA_OPENAI_API_KEY"] = "sk-stand-in"
import chromadb
from chromadb.config import Settings
from chromadb.utils.embedding_functions import OpenAIEmbeddingFunction
client = chromadb.PersistentClient(
    path={str(path)!r}, settings=Settings(anonymized_telemetry=False)
)
function = OpenAIEmbeddingFunction(model_name="text-embedding-3-small")
made = client.create_collection("kb-docs", embedding_function=function)
rng = random.Random(5)
ids = [f"doc-{{n}}" for n in range(30)]
made.add(ids=ids, embeddings=[[rng.uniform(-1, 1) for _ in range({dims})] for _ in ids],
         documents=[f"page {{n}}" for n in range(30)])
"""
    # In a process of its own: the stand-in module never meets the suite's imports.
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_a_collection_of_any_size_comes_in_without_naming_an_embedder(
    tenantctl: TenantCtl, tmp_path: Path, tenant_id: str
) -> None:
    # The product's default embedder (wordllama, 256 dims) stays the default: the
    # collection's 1536-d vectors come in as they are, into a tenant without one.
    store = tmp_path / "chroma"
    _openai_store(store, tmp_path / "stub", dims=1536)
    args = ("import", "chroma", "--path", str(store), "--collection", "kb-docs")
    imported = tenantctl(*args, "--tenant", tenant_id, "--json", env=DEFAULT_EMBEDDER)
    assert imported.code == 0, imported.stderr
    report = imported.json()
    assert report["verified"] and report["dims"] == 1536
    assert report["embedder"] == "none (vectors sent by callers)"
    assert report["source_embedding"] == "openai:text-embedding-3-small"
    assert report["matching_embedder"] == "openai:text-embedding-3-small"
    shown = tenantctl("tenants", "show", tenant_id, "--json").json()
    assert (shown["dims"], shown["embedder"]) == (1536, None)
    # Text is refused with the way out; vectors are searched.
    text = tenantctl("search", tenant_id, "page 3")
    assert text.code == 4
    assert f"set-embedder {tenant_id} PROVIDER:MODEL" in one_line_error(text.stderr)
    told = tenantctl(*args, "--tenant", tenant_id)  # again: resumed, nothing new
    assert f"tenantctl tenants set-embedder {tenant_id} openai:text-embedding-3-small" in (
        told.stdout
    )
    # Named, the model is the new tenant's.
    other = f"{tenant_id}-b"
    named = tenantctl(
        *args, "--tenant", other, "--embedder", "openai:text-embedding-3-small", "--json"
    )
    assert named.code == 0, named.stderr
    assert named.json()["embedder"] == "openai:text-embedding-3-small"
    small = tenantctl(*args, "--tenant", f"{tenant_id}-c", "--embedder", "wordllama")
    assert small.code == 2 and "not 1536" in small.stderr


def test_a_large_import_builds_the_index_once(
    tenantctl: TenantCtl, tmp_path: Path, tenant_id: str
) -> None:
    from controlplane.retrieval.bulk import BULK_MIN_ROWS

    store = tmp_path / "chroma"
    build_store(store, records=BULK_MIN_ROWS)
    args = ("--path", str(store), "--collection", "manuals", "--tenant", tenant_id)
    imported = tenantctl("import", "chroma", *args, "--json")
    assert imported.code == 0, imported.stderr
    assert imported.json()["copied"] == BULK_MIN_ROWS
    operations = tenantctl("tenants", "show", tenant_id, "--json").json()["operations"]
    bulk = [o for o in operations if o["action"] == "bulk-load"]
    assert [o["outcome"] for o in bulk] == ["succeeded"]
    found = tenantctl("search", tenant_id, "--vector", "[" + ",".join(["0.5"] * DIMS) + "]")
    assert found.code == 0 and "rec-" in found.stdout
