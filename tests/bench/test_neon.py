"""``bench.neon`` end to end, small, as ``make bench-neon`` runs it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_small_run_counts_requests_per_create_in_both_modes(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nkept\n")
    run = subprocess.run(
        [
            sys.executable, "-m", "bench.neon", "--tenants", "2", "--concurrency", "3",
            "--seconds", "3", "--latency", "0", "--operation-seconds", "0.05",
            "--write", str(out),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n") and "<!-- bench:neon -->" in text
    rows = {m[0]: m for m in re.findall(r"^\| (project|branch) \| (\d+) / (\d+) \|", text, re.M)}
    assert set(rows) == {"project", "branch"}
    # project: create + its operations; branch: branch, role, database, URI + operations
    assert 2 <= int(rows["project"][1]) < int(rows["branch"][1])
    # no 429s, and every answer of the fake within Neon's published spec
    assert re.search(r"^\| project \|.*\| 0 \| \d+ s \| 0 of \d+ \|$", text, re.M)
    assert re.search(r"^\| branch \|.*\| 0 of \d+ \|$", text, re.M)
