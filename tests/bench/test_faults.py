"""``bench.faults`` end to end, small, as ``make bench-faults`` runs it (the kills
themselves are tested, many more of them, in test_kills.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_small_run_reports_every_fault(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nkept\n")
    run = subprocess.run(
        [
            sys.executable, "-m", "bench.faults", "--kills", "0", "--seconds", "1",
            "--runs", "1", "--examples", "2", "--greedy", "1,2", "--write", str(out),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n") and "<!-- bench:faults -->" in text
    # The greedy tenants hold their limit; the neighbour's searches all answered.
    one = re.search(r"^\| 1 \| (\d+) \| \d+ \| (\d+) / (\d+) \(100\.0 %\) \|", text, re.M)
    assert one and int(one.group(1)) == 10 and one.group(2) == one.group(3), text
    assert re.search(r"fail with \[503\] in p50 / p95 [\d.]+ / [\d.]+ ms", text), text
    assert re.search(r"back to back: (\d+) / \1 \(100\.0 %\) answered", text), text
    for token in ("admin", "tenant key"):
        assert re.search(rf"^\| {token} \| \d+ \| .* \| 0 \| 0 \|$", text, re.M), text
