"""``bench.move`` and ``bench.fleet`` end to end, small, as ``make bench-move`` and
``make bench-fleet`` run them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, *args: str) -> str:
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n")
    run = subprocess.run(
        [sys.executable, "-m", *args, "--write", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return out.read_text()


def test_a_small_move_run_times_moves_the_refusal_window_and_plain_pg_dump(
    tmp_path: Path,
) -> None:
    text = _run(tmp_path, "bench.move", "--sizes", "200", "--runs", "2")
    assert "<!-- bench:move -->" in text
    row = re.search(r"^\| 200 \| (.+) \|$", text, re.M)
    assert row is not None, text
    cells = row.group(1).split(" | ")
    assert len(cells) == 8 and cells[-1] == "2 of 2", cells  # every move verified
    reads_ok, reads_failed = map(int, cells[-3].split(" / "))
    assert reads_ok > 0 and reads_failed == 0
    writes_ok, _refused, writes_lost = map(int, cells[-2].split(" / "))
    assert writes_ok > 0 and writes_lost == 0  # every acknowledged write was moved
    for timing in (cells[0], cells[2], cells[3]):
        median, p95 = re.fullmatch(r"([\d.]+) / ([\d.]+) s", timing).groups()  # type: ignore[union-attr]
        assert 0 < float(median) <= float(p95)


def test_a_small_fleet_run_times_every_operator_command(tmp_path: Path) -> None:
    text = _run(tmp_path, "bench.fleet", "--sizes", "3", "--runs", "1", "--expired", "2")
    assert "<!-- bench:fleet -->" in text
    for command in ("tenants list", "reconcile", "doctor", "gc (2 expired)"):
        assert re.search(rf"^\| `{re.escape(command)}` \| [\d.]+ s \|$", text, re.M), (
            command,
            text,
        )
    migrated = re.search(r"^\| tenants migrated by the first run \| (\d+) \|$", text, re.M)
    assert migrated is not None and migrated.group(1) == "3", text
