"""``make bench-scale``: what one API process holds for many tenants.

``--tenants`` tenants (default 1,000; empty, 384 dimensions, a key each) on a throwaway
embedded server, then one ``tenantctl serve`` worker with the default budget and pool
limits. Every tenant is searched once through the API with its own key, in random order
(each a cold tenant; pools open and close to stay in the budget), then the whole set
once more. Reported: the API process's memory (RSS and PSS from ``/proc``) before and
after, what it holds (open pools), and how many series ``/metrics`` exposes -- which
must not grow with the number of tenants.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import time
from pathlib import Path

import httpx

from bench.harness import api_server, throwaway_server
from bench.machine import describe_machine, replace_section, today
from controlplane.keys import create_key
from controlplane.lifecycle.tenants import TenantRequest, create_tenant
from controlplane.plane import ControlPlane

ACTOR = "bench"


def memory_kib(pid: int) -> tuple[int, int]:
    """RSS and PSS of a process, in KiB (PSS splits shared pages among their users)."""
    rss = pss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "Rss":
            rss = int(value.split()[0])
        elif name == "Pss":
            pss = int(value.split()[0])
    return rss, pss


def series(metrics: str) -> int:
    return sum(1 for line in metrics.splitlines() if line and not line.startswith("#"))


async def measure(args: argparse.Namespace) -> dict[str, object]:
    token = secrets.token_urlsafe(24)
    with throwaway_server(durable=False) as settings:
        started = time.perf_counter()
        keys: dict[str, str] = {}
        limit = asyncio.Semaphore(4)
        async with ControlPlane.open(settings) as plane:

            async def make(n: int) -> None:
                tenant = f"scale-{n:05d}"
                async with limit:
                    await create_tenant(plane, TenantRequest(id=tenant, dims=384), actor=ACTOR)
                    keys[tenant] = (await create_key(plane, tenant, actor=ACTOR)).secret
                if len(keys) % 100 == 0:
                    print(f"  {len(keys)}/{args.tenants} tenants", flush=True)

            await asyncio.gather(*(make(n) for n in range(args.tenants)))
        made = time.perf_counter() - started
        facts: dict[str, object] = {"tenants": args.tenants, "create_seconds": made}
        with api_server(settings, token) as (url, pid):
            body = {"vector": [0.1] * 384, "k": 10}
            admin = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=url, timeout=60) as http:
                facts["idle"] = memory_kib(pid)
                facts["idle_series"] = series((await http.get("/metrics", headers=admin)).text)
                order = list(keys)
                for sweep in ("first", "second"):
                    random.Random(sweep).shuffle(order)
                    started = time.perf_counter()
                    for tenant in order:
                        answer = await http.post(
                            f"/v1/tenants/{tenant}/search",
                            json=body,
                            headers={"Authorization": f"Bearer {keys[tenant]}"},
                        )
                        answer.raise_for_status()
                    facts[f"{sweep}_seconds"] = time.perf_counter() - started
                    facts[sweep] = memory_kib(pid)
                metrics = (await http.get("/metrics", headers=admin)).text
                facts["series"] = series(metrics)
                facts["open_pools"] = next(
                    int(float(line.split()[-1]))
                    for line in metrics.splitlines()
                    if line.startswith("tenantvec_open_pools ")
                )
    return facts


def render(facts: dict[str, object], args: argparse.Namespace) -> str:
    n = int(facts["tenants"])  # type: ignore[call-overload]

    def mib(key: str) -> str:
        rss, pss = facts[key]  # type: ignore[misc]
        return f"{rss / 1024:.0f} MiB RSS / {pss / 1024:.0f} MiB PSS"

    first = float(facts["first_seconds"])  # type: ignore[arg-type]
    second = float(facts["second_seconds"])  # type: ignore[arg-type]
    return "\n".join(
        [
            "## Many tenants in one API process (`make bench-scale`)",
            "",
            f"{describe_machine()}; {today()}; `python -m bench.scale --tenants {n}`: {n} "
            "empty tenants (384 dimensions, a key each), one `tenantctl serve` worker with "
            "the default budget (100 connections) and pool limit (500), every tenant searched "
            "once with its own key in random order, then once more.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| API process, started | {mib('idle')} |",
            f"| after {n} cold tenants ({n / first:.0f} searches/s) | {mib('first')} |",
            f"| after a second sweep ({n / second:.0f} searches/s) | {mib('second')} |",
            f"| open pools at the end | {facts['open_pools']} |",
            f"| `/metrics` series, started / at the end | {facts['idle_series']} / "
            f"{facts['series']} |",
            "",
            f"Creating the {n} tenants took {float(facts['create_seconds']):.0f} s "  # type: ignore[arg-type]
            "(4 at a time).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--write", type=Path, help="update this markdown file's bench:scale")
    args = parser.parse_args()
    facts = asyncio.run(measure(args))
    report = render(facts, args)
    print(report)
    if args.write:
        replace_section(args.write, "scale", report)


if __name__ == "__main__":
    main()
