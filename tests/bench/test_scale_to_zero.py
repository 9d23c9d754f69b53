"""``bench.scale_to_zero`` end to end, small, as ``make bench-scale-to-zero`` runs it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_small_run_reports_memory_cold_starts_and_neighbours(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nkept\n")
    run = subprocess.run(
        [
            sys.executable, "-m", "bench.scale_to_zero", "--tenants", "1", "--medium", "0",
            "--runs", "2", "--seconds", "0.3", "--settle", "0.2", "--write", str(out),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n") and "<!-- bench:scale-to-zero -->" in text
    small = re.search(r"^\| instance, small tier .*? \| ([\d.]+) MB; .*\| (\d+) \|$", text, re.M)
    assert small and float(small.group(1)) > 1, text  # a real server costs real memory
    for backend in ("postgres", "instance"):
        assert re.search(rf"^\| {backend} \| \d+ / \d+ \| \d+ / \d+ \|$", text, re.M), text
    assert re.search(r"^\| while tenant B's resume is in flight \| \d+ \|", text, re.M)
