"""``bench.backup`` end to end, small, as ``make bench-backup`` runs it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_small_run_times_backup_restore_and_plain_pg_dump(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n")
    run = subprocess.run(
        [sys.executable, "-m", "bench.backup", "--sizes", "300", "--runs", "2",
         "--write", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    text = out.read_text()
    assert "<!-- bench:backup -->" in text
    row = re.search(r"^\| 300 \| ([\d.]+) MiB \| (.+) \|$", text, re.M)
    assert row is not None, text
    cells = row.group(2).split(" | ")
    assert len(cells) == 5 and cells[-1] == "2 of 2"  # every restore verified
    for timing in cells[:3]:
        median, p95 = re.fullmatch(r"([\d.]+) / ([\d.]+) s", timing).groups()  # type: ignore[union-attr]
        assert 0 < float(median) <= float(p95)
