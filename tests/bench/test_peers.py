"""``bench.peers``, ``bench.floor`` and ``bench.precision`` end to end, small, as their
make targets run them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(module: str, out: Path, *args: str) -> str:
    out.write_text("# Benchmarks\n\nkept\n")
    run = subprocess.run(
        [sys.executable, "-m", module, *args, "--output", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n")
    return text


def test_peers_compares_every_system_at_equal_recall(tmp_path: Path) -> None:
    text = _run(
        "bench.peers", tmp_path / "benchmarks.md",
        "--rows", "1500", "--queries", "20", "--rounds", "1", "--clients", "2",
        "--seconds", "0.5", "--ingest-rows", "60", "--data", "random", "--ef", "40", "100",
    )  # fmt: skip
    assert "<!-- bench:peers -->" in text
    sweep = re.search(
        r"ef 40: tenantvec ([\d.]+), Chroma ([\d.]+); ef 100: tenantvec ([\d.]+)", text
    )
    assert sweep is not None and all(0 < float(x) <= 1 for x in sweep.groups())
    # Each level: the system each side ran, recall reaching the level on both.
    level = re.search(
        r"\*\*At recall >= ([\d.]+)\*\*.*?tenantvec ef_search \d+ \(recall ([\d.]+)\), "
        r"Chroma ef \d+ \(recall ([\d.]+)\)",
        text,
    )
    assert level is not None
    target, ours, theirs = map(float, level.groups())
    assert ours >= target - 1e-9 and theirs >= target - 1e-9
    for system in ("API", "direct", "Chroma embedded", "Chroma server"):
        row = re.search(rf"^\| {system} \| ([\d,]+) \| ([\d.]+) \|", text, re.M)
        assert row is not None and int(row.group(1).replace(",", "")) > 0, system
    for path in ("API", "tenantctl ingest", "Chroma embedded", "Chroma server"):
        for into in ("an empty one", "1,500 rows"):
            row = re.search(rf"^\| {path}, into {into} \| ([\d,]+) \|", text, re.M)
            assert row is not None and int(row.group(1).replace(",", "")) > 0, (path, into)


def test_floor_sets_the_api_beside_its_stack(tmp_path: Path) -> None:
    text = _run(
        "bench.floor", tmp_path / "benchmarks.md",
        "--rows", "800", "--queries", "20", "--clients", "2", "--seconds", "0.5",
        "--rounds", "1", "--executes", "50",
    )  # fmt: skip
    assert "<!-- bench:floor -->" in text
    cpu = {}
    for way in ("API", "API without the lane", "floor", "HTTP only"):
        row = re.search(rf"^\| {way} \| ([\d,]+) \| [\d.]+x \| [\d.]+ \| ([\d.]+) \|", text, re.M)
        assert row is not None, way
        assert int(row.group(1).replace(",", "")) > 0
        cpu[way] = float(row.group(2))
    assert all(value > 0 for value in cpu.values()), cpu
    assert re.search(r"the floor of uvicorn \+ psycopg is [\d.]+ ms", text)


def test_precision_compares_full_and_half_indexes(tmp_path: Path) -> None:
    text = _run(
        "bench.precision", tmp_path / "benchmarks.md",
        "--rows", "1500", "--queries", "20", "--rounds", "1", "--ef", "40", "--data", "random",
    )  # fmt: skip
    assert "<!-- bench:precision -->" in text
    smaller = re.search(r"the half index is \*\*([\d.]+)x smaller\*\*", text)
    assert smaller is not None and float(smaller.group(1)) > 1.5
    for precision in ("full", "half"):
        row = re.search(rf"^\| {precision} \| 40 \| ([\d.]+) \|", text, re.M)
        assert row is not None and 0 < float(row.group(1)) <= 1, precision
