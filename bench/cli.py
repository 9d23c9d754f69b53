"""``make bench-cli``: how long ``tenantctl`` takes to answer, this tree against an older one.

Operators and CI scripts call ``tenantctl`` in loops, so its start-up is its latency.
Each command runs as a user runs it -- a new Python process -- alternately from this
tree and from an older revision checked out beside it (``git worktree``), on one
throwaway embedded server holding ``--tenants`` tenants, so both answer the same catalog.
Wall time per run, medians and p95 over ``--runs``; CPU time (user + system) of the
process, from ``os.wait4``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import percentile, throwaway_server
from bench.machine import describe_machine, replace_section, today

COMMANDS = {
    "tenantctl --help": ["--help"],
    "tenantctl tenants list": ["tenants", "list"],
    "tenantctl tenants list --json": ["tenants", "list", "--json"],
}
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Timings:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def run_once(tree: Path, args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """One ``tenantctl ARGS`` from ``tree`` (its modules first on the path)."""
    module, path = _entry(tree)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", f"from {module} import run; run()", *args],
        cwd=tree,
        env={**env, "PYTHONPATH": os.pathsep.join(str(p) for p in path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"tenantctl {' '.join(args)} failed in {tree}: {stderr.strip()}")
    return wall, usage.ru_utime + usage.ru_stime


def _entry(tree: Path) -> tuple[str, list[Path]]:
    """The CLI's module in ``tree`` and the path it imports from: the packages in cli/ and
    tenant_schema/ (tenantctl, tenantvec_schema), or -- in trees before they were renamed
    -- the folders themselves (cli, tenant_schema)."""
    if (tree / "cli" / "tenantctl").is_dir():
        return "tenantctl.main", [tree, tree / "cli", tree / "tenant_schema"]
    return "cli.main", [tree]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="e7d19c5", help="the revision to compare with")
    parser.add_argument("--runs", type=int, default=15, help="runs of each command per tree")
    parser.add_argument("--tenants", type=int, default=20, help="tenants in the catalog")
    parser.add_argument("--write", type=Path, help="update this markdown file's bench:cli")
    args = parser.parse_args()
    if args.runs < 3:
        parser.error("--runs must be at least 3")

    old_tree = Path(tempfile.mkdtemp(prefix="tenantvec-old-"))
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old_tree), args.old],
        check=True,
        capture_output=True,
    )
    try:
        with throwaway_server(durable=False) as settings:
            env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTVEC_")}
            env.update(
                {
                    "TENANTVEC_HOME": str(settings.home),
                    "TENANTVEC_PG_PORT": str(settings.embedded.port),
                }
            )
            for i in range(args.tenants):
                run_once(ROOT, ["tenants", "create", f"cli-bench-{i:03d}", "--dims", "3"], env)
            trees = {"now": ROOT, f"old ({args.old})": old_tree}
            results = {(t, c): Timings() for t in trees for c in COMMANDS}
            for command, argv in COMMANDS.items():
                for tree in trees.values():
                    run_once(tree, argv, env)  # warm: bytecode compiled, pages cached
                for _ in range(args.runs):  # interleaved: the same machine state for both
                    for name, tree in trees.items():
                        wall, cpu = run_once(tree, argv, env)
                        results[(name, command)].wall.append(wall)
                        results[(name, command)].cpu.append(cpu)
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_tree)],
            capture_output=True,
        )
        shutil.rmtree(old_tree, ignore_errors=True)

    report = render(results, list(trees), args)
    print(report)
    if args.write:
        replace_section(args.write, "cli", report)


def render(
    results: dict[tuple[str, str], Timings], trees: list[str], args: argparse.Namespace
) -> str:
    lines = [
        "## The CLI's start-up (`make bench-cli`)",
        "",
        f"{describe_machine()}; {today()}; `python -m bench.cli --old {args.old} --runs "
        f"{args.runs} --tenants {args.tenants}`. Each run is a new process, as a shell starts "
        "it; the two trees alternate on one embedded server; wall time and the process's CPU "
        "(user + system), medians and p95.",
        "",
        "| command | tree | wall p50 ms | wall p95 ms | CPU p50 ms |",
        "|---|---|---|---|---|",
    ]
    for command in COMMANDS:
        for tree in trees:
            t = results[(tree, command)]
            lines.append(
                f"| `{command}` | {tree} | {percentile(t.wall, 50) * 1000:.0f} | "
                f"{percentile(t.wall, 95) * 1000:.0f} | {percentile(t.cpu, 50) * 1000:.0f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
