"""``make bench-faults``: what crashes, attackers and outages do to tenantvec, in numbers.

On a throwaway embedded server (durable, fsync on), with the fake Neon API
(``tests/fakes/neon.py``) for the neon backend:

1. **Kills.** ``tenantctl tenants create|delete|suspend|resume`` of every backend is
   SIGKILLed at random moments -- the command alone, or its whole process group -- and
   ``reconcile --fix`` runs once (``bench.kills`` says what "repaired" means).
2. **A greedy neighbour.** Tenants open connections with their own DSNs as fast as
   they can and keep them; meanwhile a neighbour's searches go through the API. Its
   success rate, and how many connections the greedy ones got.
3. **A killed instance server.** Its postmaster is SIGKILLed while a client searches in
   a loop: the time to the next answer, and how many requests failed meanwhile.
4. **A closed database.** A tenant's database refuses connections: how fast its
   requests fail (they must not queue), and a neighbour's latency meanwhile.
5. **A catalog outage.** The catalog refuses connections for a while: the success rate
   of searches by tenants verified before, and the time to recover once it is back.
6. **Fuzzing.** schemathesis (``bench/fuzz.py``) over every operation of the OpenAPI
   document, with the admin token and with a tenant key: requests sent, 5xx answers,
   answers the document does not describe.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import random
import secrets
import signal
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from bench.fuzz import FuzzReport, fuzz
from bench.harness import api_process, clean_env, percentile, throwaway_server
from bench.kills import Kill, kills_table, measure_kills
from bench.machine import describe_machine, replace_section, today
from controlplane.backends.servers import register_server
from controlplane.keys import create_key
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, tenant_conninfo
from controlplane.localpg import EmbeddedServer
from controlplane.plane import LOCAL_SERVER, ControlPlane
from controlplane.settings import Settings

ACTOR = "bench-faults"
SEARCH = {"vector": [1, 0, 0], "k": 5}


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = clean_env()
    env.update(
        {
            "TENANTVEC_HOME": str(settings.home),
            "TENANTVEC_PG_PORT": str(settings.embedded.port),
            "TENANTVEC_PG_FSYNC": "true" if settings.embedded.fsync else "false",
            **extra,
        }
    )
    if settings.catalog.url:
        env["TENANTVEC_CATALOG_URL"] = settings.catalog.url
    return env


# -- through the API ----------------------------------------------------------------------


class Api:
    """An API process and the tenants made for it (through the library, which also hands
    out their DSNs, as 'tenantctl tenants dsn' would)."""

    def __init__(self, plane: ControlPlane, url: str, token: str) -> None:
        self.plane = plane
        self.url = url
        self.token = token  # the admin token
        self.clients: dict[str, httpx.AsyncClient] = {}

    async def tenant(self, tenant_id: str, **options: Any) -> str:
        """Make a tenant with a few documents; its owner's DSN."""
        await create_tenant(self.plane, TenantRequest(id=tenant_id, dims=3, **options), actor=ACTOR)
        issued = await create_key(self.plane, tenant_id, actor=ACTOR)
        client = httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {issued.secret}"}, timeout=60
        )
        docs = [
            {"id": f"d{n}", "chunks": [{"content": f"doc {n}", "embedding": [1, n / 10, 0]}]}
            for n in range(20)
        ]
        put = await client.put(f"/v1/tenants/{tenant_id}/documents", json={"documents": docs})
        assert put.status_code == 200, put.text
        self.clients[tenant_id] = client
        return (await tenant_conninfo(self.plane, tenant_id)).dsn

    async def search(self, tenant_id: str) -> tuple[int, float]:
        started = time.perf_counter()
        try:
            answer = await self.clients[tenant_id].post(
                f"/v1/tenants/{tenant_id}/search", json=SEARCH
            )
            status = answer.status_code
        except httpx.TransportError:
            status = 0
        return status, (time.perf_counter() - started) * 1000

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()


@contextlib.asynccontextmanager
async def running_api(settings: Settings, **env: str) -> AsyncIterator[Api]:
    async with ControlPlane.open(settings) as plane:
        token = secrets.token_urlsafe(24)
        with api_process(settings, token, **_env(settings, **env)) as url:
            api = Api(plane, url, token)
            try:
                yield api
            finally:
                await api.close()


async def search_loop(api: Api, tenant_id: str, stop: asyncio.Event) -> list[tuple[int, float]]:
    seen = []
    while not stop.is_set():
        seen.append(await api.search(tenant_id))
    return seen


def ok_rate(seen: list[tuple[int, float]]) -> str:
    good = sum(1 for status, _ in seen if status == 200)
    return f"{good} / {len(seen)} ({100 * good / max(1, len(seen)):.1f} %)"


def ms(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} / {percentile(values, 95):.1f}"


# -- 2. a greedy neighbour ------------------------------------------------------------------


@dataclasses.dataclass
class Greedy:
    greedy_tenants: int
    connections_got: int  # by all greedy tenants together, at the end
    refused: int  # connection attempts refused
    neighbour: list[tuple[int, float]]


async def measure_greedy(api: Api, greedy_tenants: int, seconds: float) -> Greedy:
    neighbour = f"calm-{uuid.uuid4().hex[:6]}"
    await api.tenant(neighbour)
    dsns = [await api.tenant(f"greedy-{n}-{uuid.uuid4().hex[:6]}") for n in range(greedy_tenants)]
    held: list[psycopg.AsyncConnection[Any]] = []
    refused = 0
    stop = asyncio.Event()

    async def grab(dsn: str) -> None:
        nonlocal refused
        while not stop.is_set():
            try:
                held.append(await psycopg.AsyncConnection.connect(dsn, connect_timeout=2))
            except psycopg.OperationalError:
                refused += 1
                await asyncio.sleep(0.002)  # and again, as fast as it can

    grabbers = [asyncio.create_task(grab(dsn)) for dsn in dsns for _ in range(4)]
    await asyncio.sleep(1.0)  # every greedy tenant is at its limit by now
    searching = asyncio.create_task(search_loop(api, neighbour, stop))
    await asyncio.sleep(seconds)
    stop.set()
    seen = await searching
    await asyncio.gather(*grabbers)
    got = len(held)
    for conn in held:
        await conn.close()
    return Greedy(greedy_tenants, got, refused, seen)


# -- 3. a killed instance server ---------------------------------------------------------------


async def measure_instance_kill(api: Api, runs: int) -> list[tuple[float, int]]:
    """(ms from the kill to the next answer, requests that failed meanwhile) per run."""
    tenant_id = f"killed-{uuid.uuid4().hex[:6]}"
    await api.tenant(tenant_id, backend="instance")
    results = []
    for _ in range(runs):
        assert (await api.search(tenant_id))[0] == 200
        tenant = await api.plane.catalog.get_tenant(tenant_id)
        pidfile = Path(tenant.placement["data_dir"]) / "postmaster.pid"
        os.kill(int(pidfile.read_text().splitlines()[0]), signal.SIGKILL)
        killed = time.perf_counter()
        failed = 0
        while (status := (await api.search(tenant_id))[0]) != 200:
            failed += 1
            assert time.perf_counter() - killed < 60, status
        results.append(((time.perf_counter() - killed) * 1000, failed))
    return results


# -- 4. a closed database ----------------------------------------------------------------------


async def measure_closed_database(
    api: Api, admin_dsn: str, requests: int
) -> tuple[list[float], list[int], list[float]]:
    """(failing requests' ms, their statuses, a neighbour's ms meanwhile)."""
    closed, neighbour = f"closed-{uuid.uuid4().hex[:6]}", f"next-{uuid.uuid4().hex[:6]}"
    await api.tenant(closed)
    await api.tenant(neighbour)
    assert (await api.search(closed))[0] == 200  # a warm pool, then the door shuts
    database = str((await api.plane.catalog.get_tenant(closed)).placement["database"])
    async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as admin:
        ident = sql.Identifier(database)
        await admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident))
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        )
        failing, statuses, beside = [], [], []
        for _ in range(requests):
            status, took = await api.search(closed)
            failing.append(took)
            statuses.append(status)
            beside.append((await api.search(neighbour))[1])
            await asyncio.sleep(0.05)
        await admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident))
    return failing, statuses, beside


# -- 5. a catalog outage ------------------------------------------------------------------------


@contextlib.contextmanager
def separate_catalog(settings: Settings) -> Iterator[tuple[Settings, str]]:
    """``settings`` with the catalog in a database of its own, so it can fail alone."""
    name = f"catalog_{uuid.uuid4().hex[:8]}"
    admin = EmbeddedServer(settings).superuser_conninfo()
    with psycopg.connect(admin.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    own = settings.replace(catalog=settings.catalog.replace(url=admin.with_(dbname=name).dsn))

    async def register() -> None:
        async with ControlPlane.open(own) as plane:
            await register_server(plane.catalog, plane.box, LOCAL_SERVER, admin)

    asyncio.run(register())
    try:
        yield own, name
    finally:
        with psycopg.connect(admin.dsn, autocommit=True) as conn:
            ident = sql.Identifier(name)
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


async def catalog_reachable(admin_dsn: str, name: str, reachable: bool) -> None:
    async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn:
        flag = sql.SQL("true" if reachable else "false")
        await conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(sql.Identifier(name), flag)
        )
        if not reachable:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


async def measure_outage(
    api: Api, admin_dsn: str, catalog_db: str, seconds: float
) -> tuple[list[tuple[int, float]], float]:
    """Searches during the outage, and ms from the catalog's return to a new key working."""
    tenant_id = f"outage-{uuid.uuid4().hex[:6]}"
    await api.tenant(tenant_id)
    await api.search(tenant_id)
    stop = asyncio.Event()
    await catalog_reachable(admin_dsn, catalog_db, reachable=False)
    searching = asyncio.create_task(search_loop(api, tenant_id, stop))
    await asyncio.sleep(seconds)
    stop.set()
    seen = await searching
    await catalog_reachable(admin_dsn, catalog_db, reachable=True)
    back = time.perf_counter()
    fresh = f"after-{uuid.uuid4().hex[:6]}"
    while True:
        try:
            await api.tenant(fresh)
            break
        except Exception:  # noqa: BLE001 -- the catalog may take a moment to be seen again
            await asyncio.sleep(0.1)
    while (await api.search(fresh))[0] != 200:
        await asyncio.sleep(0.05)
    return seen, (time.perf_counter() - back) * 1000


# -- the report ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=8, help="kills per backend and operation")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load phase")
    parser.add_argument("--runs", type=int, default=5, help="instance kills through the API")
    parser.add_argument(
        "--greedy",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 25],
        help="how many greedy tenants, one phase each (comma-separated)",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--examples", type=int, default=100, help="fuzz cases per operation and mode"
    )
    parser.add_argument("--write", type=Path, help="update this markdown file's bench:faults")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    started = time.monotonic()
    with throwaway_server() as settings:
        admin_dsn = EmbeddedServer(settings).superuser_conninfo().dsn
        print(f"kills ({args.kills} per backend and operation, seed {seed})", flush=True)
        kills = asyncio.run(measure_kills(settings, args.kills, seed))

        async def through_the_api() -> dict[str, Any]:
            out: dict[str, Any] = {}
            async with running_api(settings, TENANTVEC_SUPERVISE_SECONDS="3600") as api:
                print("a greedy neighbour", flush=True)
                out["greedy"] = [await measure_greedy(api, n, args.seconds) for n in args.greedy]
                print("a killed instance", flush=True)
                out["kill"] = await measure_instance_kill(api, args.runs)
                print("a closed database", flush=True)
                out["closed"] = await measure_closed_database(api, admin_dsn, 50)
                print("fuzzing", flush=True)
                own = f"fuzz-{uuid.uuid4().hex[:6]}"
                await api.tenant(own)
                key = (await create_key(api.plane, own, actor=ACTOR)).secret
                out["fuzz"] = [
                    await asyncio.to_thread(
                        fuzz, api.url, api.token, examples=args.examples, spare_tenant=own
                    ),
                    await asyncio.to_thread(
                        fuzz, api.url, key, examples=args.examples, own_tenant=own
                    ),
                ]
            return out

        measured = asyncio.run(through_the_api())
        with separate_catalog(settings) as (own, catalog_db):

            async def outage() -> Any:
                async with running_api(
                    own, TENANTVEC_ROUTE_TTL_SECONDS="2", TENANTVEC_CATALOG_GRACE_SECONDS="300"
                ) as api:
                    print("a catalog outage", flush=True)
                    return await measure_outage(api, admin_dsn, catalog_db, args.seconds)

            seen, recovery_ms = asyncio.run(outage())
    report = render(args, seed, kills, measured, seen, recovery_ms, time.monotonic() - started)
    print(report)
    if args.write:
        replace_section(args.write, "faults", report)


def render(
    args: argparse.Namespace,
    seed: int,
    kills: list[Kill],
    measured: dict[str, Any],
    outage: list[tuple[int, float]],
    recovery_ms: float,
    took: float,
) -> str:
    greedy: list[Greedy] = measured["greedy"]
    kill_runs: list[tuple[float, int]] = measured["kill"]
    failing, statuses, beside = measured["closed"]
    fuzzed: list[FuzzReport] = measured["fuzz"]
    lines = [
        "## Faults: kills, a greedy neighbour, a dead server, a closed database, a catalog outage",
        "",
        f"`make bench-faults` (`python -m bench.faults --kills {args.kills} --seconds "
        f"{args.seconds:g} --runs {args.runs} --seed {seed}`), {today()}, {describe_machine()}; "
        f"embedded Postgres 18, fsync on, the fake Neon API for neon; {took / 60:.1f} min.",
        "",
        f"**Kills.** {len(kills)} SIGKILLs of `tenantctl tenants <operation>` at random "
        f"moments, then one `reconcile --fix`; repaired: {sum(k.repaired for k in kills)} of "
        f"{len(kills)} (`bench/kills.py` checks: a state the backend agrees with, both DSNs "
        "of a ready tenant answer, nothing running, no orphan or unattributed resource, no "
        "server outside `TENANTVEC_INSTANCE_PORTS`, and the tenant deletes afterwards).",
        "",
        kills_table(kills),
        "",
        "**A greedy neighbour.** Tenants open connections with their own DSNs as fast as "
        f"they can (4 loops each) for {args.seconds:g} s, while a neighbour searches through "
        "the API (one client, back to back). Each tenant's role is limited to its tier's "
        "connections (small: 10); the embedded server keeps its API budget in "
        "`reserved_connections`.",
        "",
        "| greedy tenants | connections they hold | refused attempts | neighbour's searches "
        "ok | neighbour p50 / p95 ms |",
        "|---|---|---|---|---|",
    ]
    for g in greedy:
        lines.append(
            f"| {g.greedy_tenants} | {g.connections_got} | {g.refused} | {ok_rate(g.neighbour)} "
            f"| {ms([t for s, t in g.neighbour if s == 200])} |"
        )
    times = [t for t, _ in kill_runs]
    lines += [
        "",
        f"**A killed instance server.** SIGKILL of its postmaster, then searches back to back "
        f"({len(kill_runs)} runs): the next answer after p50 / p95 {ms(times)} ms; requests "
        f"that failed meanwhile: {sum(f for _, f in kill_runs)} (they wait for the restart "
        "the first one started).",
        "",
        f"**A closed database** (`ALLOW_CONNECTIONS false`, sessions ended): its requests "
        f"fail with {sorted(set(statuses))} in p50 / p95 {ms(failing)} ms; a neighbour's "
        f"searches meanwhile p50 / p95 {ms(beside)} ms.",
        "",
        f"**A catalog outage** of {args.seconds:g} s (the catalog database refuses "
        "connections; route TTL 2 s, grace 300 s): searches of a tenant verified before, "
        f"back to back: {ok_rate(outage)} answered, p50 / p95 "
        f"{ms([t for s, t in outage if s == 200])} ms. After the catalog returns, a tenant "
        f"made then answers after {recovery_ms:.0f} ms (no restart).",
        "",
        f"**Fuzzing** (schemathesis, up to {args.examples} cases per operation and mode, "
        "positive and negative):",
        "",
        "| token | requests | answers | 5xx | answers the OpenAPI document does not describe |",
        "|---|---|---|---|---|",
    ]
    for name, report in zip(("admin", "tenant key"), fuzzed, strict=True):
        shown = ", ".join(f"{n}× {s}" for s, n in sorted(report.statuses.items()))
        lines.append(
            f"| {name} | {report.requests} | {shown} | {report.server_errors} | "
            f"{len(report.failures)} |"
        )
    for report in fuzzed:
        lines += [f"- {failure[:300]}" for failure in report.failures]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
