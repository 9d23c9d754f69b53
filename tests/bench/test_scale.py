"""``bench.scale`` end to end, small, as ``make bench-scale`` runs it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_small_run_reports_memory_and_series(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n")
    run = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--tenants", "6", "--write", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    text = out.read_text()
    assert "<!-- bench:scale -->" in text
    rss = re.findall(r"\| (\d+) MiB RSS / (\d+) MiB PSS \|", text)
    assert len(rss) == 3 and all(int(r) > 0 and int(p) > 0 for r, p in rss)
    started, ended = re.search(r"series, started / at the end \| (\d+) / (\d+) \|", text).groups()  # type: ignore[union-attr]
    assert int(started) > 0 and int(ended) > 0
    assert re.search(r"\| open pools at the end \| 6 \|", text)
