"""``bench.serving`` end to end, small, as ``make bench-serving`` runs it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_small_run_compares_the_api_with_direct_psycopg(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nkept\n")
    run = subprocess.run(
        [
            sys.executable, "-m", "bench.serving", "--tenants", "2", "--vectors", "300",
            "--dims", "8", "--rounds", "3", "--seconds", "0.3", "--warmup", "0.2",
            "--write", str(out),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    text = out.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n") and "<!-- bench:serving -->" in text
    rows = re.findall(r"^\| (1|8) \| (api|direct) \| (\d+) \| ([\d.]+) \|", text, re.M)
    assert {(c, p) for c, p, *_ in rows} == {(c, p) for c in "18" for p in ("api", "direct")}
    assert all(int(rate) > 0 for *_, rate, _ in rows)
    # CPU per search, of the API process and of Postgres, measured (not zero)
    api_cpu = re.search(
        r"^\| 8 \| api \| \d+ \| [\d.]+ \| [\d.]+ \| ([\d.]+) \| ([\d.]+) \|", text, re.M
    )
    assert api_cpu is not None and float(api_cpu.group(1)) > 0 and float(api_cpu.group(2)) > 0
    assert re.search(r"the API serves \*\*\d+%\*\* of direct psycopg's searches/s", text)
    floor = re.search(r"^\| 1 \| API `GET /healthz` \(HTTP floor\) \| (\d+) \|", text, re.M)
    assert floor is not None and int(floor.group(1)) > 0
