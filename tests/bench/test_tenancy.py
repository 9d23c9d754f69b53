"""``bench.tenancy``: the synthetic corpus, and a ``--quick`` run end to end as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.tenancy.data import Dataset, K, Scale, zipf_sizes

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = {
    "shared, planner",
    "shared, HNSW",
    "shared, HNSW relaxed_order",
    "shared, HNSW strict_order",
    "partitioned",
    "db-per-tenant",
    "db-per-tenant, budget 250",
}


def test_tenant_sizes_are_skewed_and_add_up() -> None:
    scale = Scale(tenants=200, vectors=200_000, dims=8)
    sizes = zipf_sizes(scale)
    assert sizes.sum() == 200_000 and len(sizes) == 200
    assert list(sizes) == sorted(sizes, reverse=True)
    assert sizes.min() >= scale.min_vectors
    assert sizes[0] > 100 * sizes[-1]  # a few large tenants, a long tail of small ones


def test_truth_is_the_exact_top_of_the_querys_own_tenant() -> None:
    data = Dataset(Scale(tenants=6, vectors=600, dims=16, queries=5))
    assert np.allclose(np.linalg.norm(data.vectors, axis=1), 1, atol=1e-5)
    for q in data.queries:
        lo, hi = int(data.offsets[q.tenant]), int(data.offsets[q.tenant + 1])
        order = np.argsort(-(data.vectors[lo:hi] @ q.vector))
        assert q.truth == {lo + int(i) for i in order[:K]}


def test_bad_scale_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.tenancy", "--tenants", "10", "--vectors", "50"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--vectors must be at least 20 per tenant" in result.stderr


def test_quick_run_writes_tables_plots_and_numbers(tmp_path: Path) -> None:
    doc = tmp_path / "tenancy.md"
    leftovers = set(Path("/tmp").glob("tenantvec-bench-*"))
    result = subprocess.run(
        [sys.executable, "-m", "bench.tenancy", "--quick", "--write", str(doc)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # Its server is removed (other processes may come and go meanwhile: only new ones count).
    assert set(Path("/tmp").glob("tenantvec-bench-*")) - leftovers == set()

    text = doc.read_text()
    assert "<!-- bench:tenancy -->" in text and "<!-- /bench:tenancy -->" in text
    for heading in ("### Build", "### Small tenants", "### Large tenants", "### Operations"):
        assert heading in text
    for png in ("recall-latency.png", "operations.png"):
        data = (tmp_path / "tenancy" / png).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
        assert f"tenancy/{png}" in text

    results = json.loads((tmp_path / "tenancy" / "results.json").read_text())
    assert results["scale"]["tenants"] == 12 and results["scale"]["dims"] == 64
    points = results["points"]
    keys = {(p["variant"], p["ef_search"], p["clients"], p["size_class"]) for p in points}
    assert keys == {
        (v, ef, n, c)
        for v in VARIANTS
        for ef in (20, 40, 100, 200)
        for n in (1, 16)
        for c in ("small", "large")
    }
    for p in points:
        assert 0 <= p["recall"] <= 1 and 0 <= p["rows"] <= K
        assert 0 < p["p50_ms"] <= p["p95_ms"] <= p["p99_ms"]
        if not p["variant"].startswith("db-per-tenant"):
            assert p["cold_per_1k"] == 0  # SQL clients connect once, before the passes
    for size_class in ("small", "large"):
        best = next(
            p
            for p in points
            if p["variant"] == "db-per-tenant"
            and p["ef_search"] == 200
            and p["clients"] == 1
            and p["size_class"] == size_class
        )
        # A tenant's own index at a generous ef_search must find (nearly) the exact top
        # 10; a broken ground truth or id mapping would show as recall near zero.
        assert best["recall"] >= 0.9 and best["rows"] == K

    builds = results["builds"]
    assert set(builds) == {"shared", "partitioned", "db-per-tenant"}
    assert all(b["index_bytes"] > 0 and b["seconds"]["index"] > 0 for b in builds.values())
    ops = {o["layout"]: o for o in results["operations"]}
    assert ops["shared"]["empty_bytes"] == 0
    assert ops["db-per-tenant"]["empty_bytes"] > ops["partitioned"]["empty_bytes"] > 0
    assert ops["shared"]["delete"]["large"]["vacuum"] > 0
    assert ops["db-per-tenant"]["delete"]["large"]["delete tenant"] > 0
