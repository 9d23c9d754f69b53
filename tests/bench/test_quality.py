"""``bench.quality`` end to end, as ``make bench-quality`` runs it, on two embedders."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.quality_set import QUESTIONS

ROOT = Path(__file__).resolve().parents[2]
CELL = r"(\d\.\d\d) / (\d\.\d\d) \((\d+) missed\)"


def test_a_run_scores_both_embedders_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n")
    run = subprocess.run(
        [sys.executable, "-m", "bench.quality", "--embedders", "hash:256,wordllama:256",
         "--write", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    text = out.read_text()
    assert "<!-- bench:quality -->" in text and "| mode | hash 256 | wordllama 256 |" in text
    rows = {
        mode: re.findall(CELL, re.search(rf"^\| {mode} \|.*$", text, re.M).group(0))  # type: ignore[union-attr]
        for mode in ("vector", "keyword", "hybrid")
    }
    for cells in rows.values():
        assert len(cells) == 2
        for recall, mrr, missed in cells:
            assert 0 < float(recall) <= 1 and 0 < float(mrr) <= 1
            assert 0 <= int(missed) <= len(QUESTIONS)
    # Full text does not use the embedder: both tenants score the same in keyword mode.
    assert rows["keyword"][0] == rows["keyword"][1]
    # The embedders differ in vector mode (they rank differently on this set).
    assert rows["vector"][0] != rows["vector"][1]
