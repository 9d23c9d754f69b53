"""``make bench-install``: what installing tenantvec costs an application, and an operator.

The wheel ``make wheel`` builds goes into a fresh virtualenv per install, as the README
says to install it: alone (the client), with ``[langchain]`` (the client and the
LangChain store) and with ``[server]`` (the control plane). Each install is timed
(``pip install``'s wall time, with pip's cache as the machine has it: after ``make
install`` every wheel is cached, so this is unpacking and writing, not downloading) and
measured: the packages it added and the megabytes it wrote into site-packages. Kinds
alternate over ``--rounds``; medians and the spread; the load average beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.machine import describe_machine, replace_section, today

ROOT = Path(__file__).resolve().parent.parent
KINDS = {"client": "", "langchain": "[langchain]", "server": "[server]"}


@dataclass
class Install:
    seconds: list[float] = field(default_factory=list)
    packages: list[int] = field(default_factory=list)
    megabytes: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    added: list[str] = field(default_factory=list)


def build_wheel(into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--wheel-dir", str(into), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return next(into.glob("tenantvec-*.whl"))


def packages(venv: Path) -> set[str]:
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {entry["name"].lower() for entry in json.loads(listed)}


def site_bytes(venv: Path) -> int:
    total = 0
    for site in venv.glob("lib/python*/site-packages"):
        for path in site.rglob("*"):
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
    return total


def install_once(wheel: Path, extra: str, scratch: Path) -> tuple[float, int, float, list[str]]:
    """A fresh virtualenv and ``pip install WHEEL[extra]``: seconds, packages added, MB."""
    venv = scratch / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    before, bytes_before = packages(venv), site_bytes(venv)
    env = {**os.environ, "PIP_CONSTRAINT": str(ROOT / "constraints.txt")}
    started = time.perf_counter()
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        + ["--disable-pip-version-check", f"{wheel}{extra}"],
        check=True,
        env=env,
        capture_output=True,
    )
    seconds = time.perf_counter() - started
    added = sorted(packages(venv) - before)
    megabytes = (site_bytes(venv) - bytes_before) / 1e6
    shutil.rmtree(venv, ignore_errors=True)
    return seconds, len(added), megabytes, added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="installs of each kind")
    parser.add_argument("--write", type=Path, help="update this markdown file's bench:install")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="tenantvec-bench-install-"))
    results = {kind: Install() for kind in KINDS}
    try:
        wheel = build_wheel(scratch / "dist")
        for _ in range(args.rounds):  # interleaved: each kind meets the same machine
            for kind, extra in KINDS.items():
                seconds, count, megabytes, added = install_once(wheel, extra, scratch)
                found = results[kind]
                found.seconds.append(seconds)
                found.packages.append(count)
                found.megabytes.append(megabytes)
                found.load.append(os.getloadavg()[0])
                found.added = added
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = render(results, args)
    print(report)
    if args.write:
        replace_section(args.write, "install", report)


def render(results: dict[str, Install], args: argparse.Namespace) -> str:
    lines = [
        "## Installing (`make bench-install`)",
        "",
        f"{describe_machine()}; {today()}; `python -m bench.install --rounds {args.rounds}`. "
        "The wheel of `make wheel` into a fresh virtualenv per install (Python "
        f"{sys.version.split()[0]}, pip's cache warm, as after `make install`: unpacking and "
        "writing, no downloads); the kinds alternate. Packages and MB are what the install "
        "added to the virtualenv's site-packages (pip itself not counted).",
        "",
        "| install | packages | MB | seconds p50 | seconds min-max | load avg |",
        "|---|---|---|---|---|---|",
    ]
    for kind, extra in KINDS.items():
        found = results[kind]
        lines.append(
            f"| `pip install tenantvec-...whl{extra}` | {statistics.median(found.packages):.0f} "
            f"| {statistics.median(found.megabytes):.0f} | {statistics.median(found.seconds):.1f} "
            f"| {min(found.seconds):.1f}-{max(found.seconds):.1f} "
            f"| {statistics.median(found.load):.2f} |"
        )
    lines += ["", "What each brings:", ""]
    for kind in KINDS:
        lines.append(f"- {kind}: {', '.join(results[kind].added)}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
