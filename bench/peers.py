"""``make bench-peers``: tenantvec beside what its users would pick instead, on the same
data, in the same run -- at equal recall.

Four systems hold the same N x 1,024 vectors (bench/datasets.py: random unit vectors,
the worst case, and docstring embeddings of real text), cosine, HNSW m=16
ef_construction=64 everywhere:

- **API**: tenantvec's HTTP API (``tenantctl serve``, one worker), a tenant with the
  product's defaults (a half-precision index, re-ranked at full precision), requests
  from a lean keep-alive HTTP/1.1 client (bench/http1.py) -- the client's own CPU is
  nobody's serving cost;
- **direct**: psycopg straight to the same tenant database, the same search statement
  (the physical limit: Postgres alone);
- **Chroma embedded**: ``chromadb.PersistentClient`` in this process;
- **Chroma server**: ``chroma run`` (the server in the chromadb wheel) on a copy of the
  same persisted collection, sent the same lean HTTP requests (its REST query call).

Recall@10 against exact search is measured for every ef_search (tenantvec) and ef
(Chroma) of a sweep; throughput and latency are then compared **at equal recall**: for
each recall level, each system runs at the smallest setting of its sweep that reaches
it. The levels: what Chroma finds at its default (ef 100), and a high one both reach.
Rounds rotate the systems' order; medians of the rounds, CPU per operation of every
process from /proc (API process, Postgres, Chroma server, this process -- the load
generator, and Chroma embedded itself), and the load average beside every table.

Ingest: M new rows per run (API ``PUT /documents`` in batches of 500, ``tenantctl
ingest`` of a JSONL file with vectors -- its own batches, two writers --, direct COPY in
batches of 500, Chroma ``add`` embedded and over HTTP in batches of 500), into a fresh
tenant/collection (from empty) and into the N-row one, the index on
throughout; rows per second until acknowledged (Chroma: and a query answering).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import psycopg
from pgvector.psycopg import register_vector_async

from bench.chroma import (
    CHROMA_PREFIX,
    ChromaServer,
    chroma_add,
    chroma_client,
    chroma_collection,
    chroma_http_collection,
)
from bench.cpu import own_cpu, postgres_cpu, process_cpu
from bench.datasets import DIMS, DataSet, load
from bench.harness import (
    api_server,
    copy_chunks,
    percentile,
    throwaway_server,
)
from bench.http1 import Http1Connection
from bench.machine import describe_machine, load_average, replace_section, today
from bench.peers_ingest import BATCH, Ingest, new_rows
from controlplane.keys import create_key
from controlplane.lifecycle.index import set_index
from controlplane.lifecycle.tenants import create_tenant, tenant_conninfo
from controlplane.model.request import TenantRequest
from controlplane.plane import ControlPlane
from controlplane.retrieval.search import search_statement
from tenantvec_schema.spec import IndexKind, IndexSpec

ACTOR = "bench"
K = 10
SWEEP = (40, 60, 80, 100, 120, 160, 240, 320, 480, 640, 1000)
CHROMA_DEFAULT_EF = 100
SYSTEMS = ("API", "direct", "Chroma embedded", "Chroma server")
WRITERS = (*SYSTEMS[:2], "tenantctl ingest", *SYSTEMS[2:])
_CHROMA_BATCH = 5000  # under Chroma's largest batch (5461)


def _chroma_set_ef(rig: Rig, ef: int) -> None:
    """Chroma embedded searching with ``ef``: a loaded collection keeps the ef it was
    loaded with, so the client is opened again."""
    rig.chroma.modify(configuration={"hnsw": {"ef_search": ef}})
    rig.chroma_client.clear_system_cache()
    rig.chroma_client = chroma_client(rig.chroma_path)
    rig.chroma = rig.chroma_client.get_collection("bench")


# --- the systems' searches -------------------------------------------------------------


@dataclass
class Phase:
    system: str
    clients: int
    latencies: list[float]
    seconds: float
    cpu: dict[str, float]  # process -> CPU seconds during the phase

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds


@dataclass
class Rig:
    """Everything one data set's measurements talk to."""

    data: DataSet
    tenant: str
    key: str
    api_url: str
    api_pid: int
    dsn: str
    home: Path
    pg_port: int
    data_dir: Path
    chroma_path: Path
    chroma_client: Any  # the embedded client
    chroma: Any  # and its collection
    server: ChromaServer
    chroma_id: str
    statement: bytes
    pools: dict[str, Any] = field(default_factory=dict)

    def cpu(self) -> dict[str, float]:
        return {
            "API": process_cpu(self.api_pid),
            "Postgres": postgres_cpu(self.data_dir),
            "Chroma server": process_cpu(self.server.pid),
            "bench (+ Chroma embedded)": own_cpu(),
        }


Search = Callable[[int, int], Awaitable[list[int]]]  # (query number, ef) -> row ids


async def searchers(rig: Rig, clients: int) -> dict[str, list[Search]]:
    """Per system, one search function per client (each with its own connection)."""
    queries = rig.data.queries
    bodies = {
        ef: [msgspec.json.encode({"vector": q.tolist(), "k": K, "ef_search": ef}) for q in queries]
        for ef in rig.pools.setdefault("efs", [])
    }
    chroma_bodies = [
        msgspec.json.encode(
            {
                "query_embeddings": [q.tolist()],
                "n_results": K,
                "include": ["documents", "metadatas", "distances"],
            }
        )
        for q in queries
    ]
    headers = {"Authorization": f"Bearer {rig.key}", "Content-Type": "application/json"}
    executor: ThreadPoolExecutor = rig.pools.setdefault(
        "threads", ThreadPoolExecutor(max_workers=16)
    )
    result: dict[str, list[Search]] = {name: [] for name in SYSTEMS}
    for _ in range(clients):
        api = Http1Connection(rig.api_url)
        chroma_http = Http1Connection(rig.server.url)
        conn = await psycopg.AsyncConnection.connect(rig.dsn, autocommit=True)
        await register_vector_async(conn)
        rig.pools.setdefault("conns", []).append((api, chroma_http, conn))

        async def via_api(n: int, ef: int, api: Http1Connection = api) -> list[int]:
            path = f"/v1/tenants/{rig.tenant}/search"
            status, body = await api.request("POST", path, bodies[ef][n], headers)
            if status != 200:
                raise RuntimeError(f"API search: {status} {body[:200]!r}")
            hits = msgspec.json.decode(body)["results"]
            return [int(h["document_id"][1:]) for h in hits]

        async def via_direct(
            n: int,
            ef: int,
            conn: psycopg.AsyncConnection[Any] = conn,
            session: dict[str, int] = {},  # noqa: B006 -- one per client, on purpose
        ) -> list[int]:
            # As the router does: the session setting only when it changes.
            if session.get("ef") != ef:
                await conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(ef),))
                session["ef"] = ef
            cur = await conn.execute(rig.statement, {"v": queries[n]})
            return [int(row[0][1:]) for row in await cur.fetchall()]

        async def via_chroma(n: int, ef: int) -> list[int]:
            loop = asyncio.get_running_loop()
            found = await loop.run_in_executor(
                executor,
                lambda: rig.chroma.query(query_embeddings=[queries[n]], n_results=K),
            )
            return [int(i) for i in found["ids"][0]]

        async def via_chroma_http(
            n: int, ef: int, http: Http1Connection = chroma_http
        ) -> list[int]:
            path = f"{CHROMA_PREFIX}/{rig.chroma_id}/query"
            status, body = await http.request(
                "POST", path, chroma_bodies[n], {"Content-Type": "application/json"}
            )
            if status != 200:
                raise RuntimeError(f"Chroma query: {status} {body[:200]!r}")
            return [int(i) for i in msgspec.json.decode(body)["ids"][0]]

        result["API"].append(via_api)
        result["direct"].append(via_direct)
        result["Chroma embedded"].append(via_chroma)
        result["Chroma server"].append(via_chroma_http)
    return result


async def run_phase(rig: Rig, system: str, clients: list[Search], ef: int, seconds: float) -> Phase:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    count = len(rig.data.queries)
    offset = secrets.randbelow(count)

    async def client(search: Search, start: int) -> None:
        n = start
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            await search(n % count, ef)
            latencies.append(time.perf_counter() - began)
            n += len(clients)

    before = rig.cpu()
    began = time.perf_counter()
    await asyncio.gather(*(client(s, offset + i) for i, s in enumerate(clients)))
    elapsed = time.perf_counter() - began
    after = rig.cpu()
    return Phase(system, len(clients), latencies, elapsed, {k: after[k] - before[k] for k in after})


async def recall_of(rig: Rig, search: Search, ef: int, truth: np.ndarray) -> float:
    found = 0
    for n, expected in enumerate(truth):
        found += len(set(await search(n, ef)) & set(expected.tolist()))
    return found / truth.size


# --- one data set ----------------------------------------------------------------------


@dataclass
class Level:
    name: str
    target: float
    tenantvec_ef: int
    tenantvec_recall: float
    chroma_ef: int
    chroma_recall: float
    phases: list[Phase] = field(default_factory=list)


@dataclass
class DataSetResult:
    data: DataSet
    load_before: str
    sweep: dict[str, dict[int, float]]  # "tenantvec" | "Chroma" -> ef -> recall
    levels: list[Level]
    ingest: dict[str, list[float]]  # "<system>, <from>" -> rows/s per round
    load_after: str = ""
    setup: dict[str, float] = field(default_factory=dict)


def _smallest(sweep: dict[int, float], target: float) -> int | None:
    for ef in sorted(sweep):
        if sweep[ef] >= target - 1e-9:
            return ef
    return None


async def measure(data: DataSet, args: argparse.Namespace) -> DataSetResult:
    result = DataSetResult(data, load_average(), {}, [], {})
    truth = data.exact_top(K)
    token = secrets.token_urlsafe(24)
    chroma_home = Path(tempfile.mkdtemp(prefix="tenantvec-bench-chroma-"))
    try:
        with throwaway_server(max_connections=200) as settings:
            async with ControlPlane.open(settings) as plane:
                tenant = f"peers-{data.name}"
                request = TenantRequest(id=tenant, dims=DIMS, index=IndexSpec(kind=IndexKind.NONE))
                await create_tenant(plane, request, actor=ACTOR)
                dsn = (await tenant_conninfo(plane, tenant)).dsn
                began = time.perf_counter()
                await copy_chunks(dsn, data.vectors)
                result.setup["tenantvec COPY s"] = time.perf_counter() - began
                began = time.perf_counter()
                built = await set_index(plane, tenant, IndexSpec(kind=IndexKind.HNSW), actor=ACTOR)
                result.setup["tenantvec index build s"] = time.perf_counter() - began
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute("VACUUM ANALYZE chunks")
                key = (await create_key(plane, tenant, actor=ACTOR)).secret
                embedded_path = chroma_home / "embedded"
                client = chroma_client(embedded_path)
                collection = chroma_collection(client, "bench")
                began = time.perf_counter()
                await asyncio.to_thread(chroma_add, collection, data.vectors, 0, _CHROMA_BATCH)
                result.setup["Chroma add s"] = time.perf_counter() - began
                print(f"  {data.name}: loaded ({result.setup})", flush=True)
                shutil.copytree(embedded_path, chroma_home / "server")
                with (
                    # Every search names its ef: the recall keeper's background
                    # measurements would only add CPU to some phases.
                    api_server(settings, token, TENANTVEC_RECALL_SECONDS="86400") as (
                        api_url,
                        api_pid,
                    ),
                    ChromaServer(chroma_home / "server") as server,
                ):
                    rig = Rig(
                        data=data,
                        tenant=tenant,
                        key=key,
                        api_url=api_url,
                        api_pid=api_pid,
                        dsn=dsn,
                        home=settings.home,
                        pg_port=settings.embedded.port,
                        data_dir=settings.home / "pg" / "data",
                        chroma_path=embedded_path,
                        chroma_client=client,
                        chroma=collection,
                        server=server,
                        chroma_id=chroma_http_collection(server.url, "bench"),
                        statement=search_statement(built.schema, K),
                    )
                    await _searches(rig, truth, result, args)
                    await _ingests(rig, plane, result, args)
    finally:
        shutil.rmtree(chroma_home, ignore_errors=True)
    result.load_after = load_average()
    return result


async def _searches(
    rig: Rig, truth: np.ndarray, result: DataSetResult, args: argparse.Namespace
) -> None:
    rig.pools["efs"] = list(args.ef)
    one = await searchers(rig, 1)
    many = await searchers(rig, args.clients)
    tenantvec: dict[int, float] = {}
    chroma: dict[int, float] = {}
    for ef in args.ef:
        tenantvec[ef] = await recall_of(rig, one["direct"][0], ef, truth)
        _chroma_set_ef(rig, ef)
        chroma[ef] = await recall_of(rig, one["Chroma embedded"][0], ef, truth)
        print(f"  ef {ef}: tenantvec {tenantvec[ef]:.3f}, Chroma {chroma[ef]:.3f}", flush=True)
    result.sweep = {"tenantvec": tenantvec, "Chroma": chroma}
    targets = [("Chroma's default (ef 100)", chroma[CHROMA_DEFAULT_EF])]
    both = min(max(tenantvec.values()), max(chroma.values()))
    high = min(0.99, both)
    if high > targets[0][1] + 0.01:
        targets.append(("high", high))
    for name, target in targets:
        ef_t = _smallest(tenantvec, target)
        ef_c = _smallest(chroma, target)
        if ef_t is None or ef_c is None:
            continue
        level = Level(name, target, ef_t, tenantvec[ef_t], ef_c, chroma[ef_c])
        result.levels.append(level)
        _chroma_set_ef(rig, ef_c)
        rig.server.set_ef(rig.chroma_id, ef_c)
        server_recall = await recall_of(rig, one["Chroma server"][0], ef_c, truth)
        api_recall = await recall_of(rig, one["API"][0], ef_t, truth)
        print(f"  level {name}: server recall {server_recall:.3f}, API {api_recall:.3f}")
        for r in range(args.rounds):
            order = list(SYSTEMS[r % len(SYSTEMS) :] + SYSTEMS[: r % len(SYSTEMS)])
            for system in order:
                ef = ef_t if system in ("API", "direct") else ef_c
                for clients in (many[system], one[system]):
                    seconds = args.seconds if len(clients) > 1 else args.seconds / 2
                    level.phases.append(await run_phase(rig, system, clients, ef, seconds))
            print(f"  level {name} round {r + 1} done", flush=True)


async def _ingests(
    rig: Rig, plane: ControlPlane, result: DataSetResult, args: argparse.Namespace
) -> None:
    rng = np.random.default_rng(29)
    base = rig.data.vectors
    next_id = len(base)
    async with httpx.AsyncClient(timeout=600) as http:
        for r in range(args.rounds):
            for fresh in (True, False):
                order = list(WRITERS[r % 5 :] + WRITERS[: r % 5])
                for system in order:
                    # Rows of their own for every run: pgvector files an exact duplicate
                    # of an indexed vector without a graph insertion, which would flatter
                    # whoever writes a row second.
                    rows = new_rows(base, rng, args.ingest_rows)
                    first, next_id = next_id, next_id + len(rows)
                    ingest = Ingest(rig, plane, http, rows, first, f"{r}")
                    seconds = await ingest.run(system, fresh=fresh)
                    where = "an empty one" if fresh else f"{len(base):,} rows"
                    label = f"{system}, into {where}"
                    result.ingest.setdefault(label, []).append(len(rows) / seconds)
                    print(f"  ingest {label}: {len(rows) / seconds:,.0f} rows/s", flush=True)


# --- the report ------------------------------------------------------------------------


def _median_rate(level: Level, system: str) -> float:
    return statistics.median(p.rate for p in level.phases if p.system == system and p.clients > 1)


def _p50(level: Level, system: str) -> float:
    single = [p for p in level.phases if p.system == system and p.clients == 1]
    return percentile([x for p in single for x in p.latencies], 50)


def _ratios(results: list[DataSetResult], args: argparse.Namespace) -> list[str]:
    """The ratios first: one line per data set and level, one per data set's ingest."""
    lines = [
        "| data set | recall >= | API / Chroma server, searches/s at "
        f"{args.clients} clients | API / direct | p50 at 1 client, API vs Chroma server "
        "| API CPU ms/search |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for res in results:
        for level in res.levels:
            api, server = _median_rate(level, "API"), _median_rate(level, "Chroma server")
            many = [p for p in level.phases if p.system == "API" and p.clients > 1]
            cpu = statistics.median(1000 * p.cpu["API"] / len(p.latencies) for p in many)
            lines.append(
                f"| {res.data.name} | {level.target:.3f} | **{api / server:.2f}x** | "
                f"{api / _median_rate(level, 'direct'):.2f}x | "
                f"{1000 * _p50(level, 'API'):.2f} vs {1000 * _p50(level, 'Chroma server'):.2f} ms "
                f"| {cpu:.2f} |"
            )
    lines += [
        "",
        "| data set | into | best tenantvec path / Chroma server, rows/s | / Chroma embedded |",
        "|---|---|---:|---:|",
    ]
    for res in results:
        for into in ("an empty one", f"{len(res.data.vectors):,} rows"):
            best = max(
                statistics.median(res.ingest[f"{path}, into {into}"])
                for path in ("API", "tenantctl ingest")
            )
            server = statistics.median(res.ingest[f"Chroma server, into {into}"])
            embedded = statistics.median(res.ingest[f"Chroma embedded, into {into}"])
            lines.append(
                f"| {res.data.name} | {into} | **{best / server:.2f}x** | {best / embedded:.2f}x |"
            )
    return [*lines, ""]


def report(results: list[DataSetResult], args: argparse.Namespace) -> str:
    import chromadb

    lines = [
        "## Peers: tenantvec vs ChromaDB at equal recall",
        "",
        f"{describe_machine()}; {today()}; chromadb {chromadb.__version__}.",
        f"Command: `make bench-peers` (`python -m bench.peers --rows {args.rows} --queries "
        f"{args.queries} --rounds {args.rounds} --clients {args.clients} --seconds "
        f"{args.seconds} --ingest-rows {args.ingest_rows} --ef {' '.join(map(str, args.ef))}`). "
        f"{args.rows:,} x {DIMS} per data "
        "set (bench/datasets.py), cosine, HNSW m=16 ef_construction=64 on every side; "
        "tenantvec with its defaults (half-precision index, re-ranked). Recall@10 against "
        "exact search; each system at the smallest ef of its sweep reaching the level. "
        "Medians of the rounds; CPU per search in ms of each process.",
        "",
        *_ratios(results, args),
    ]
    for res in results:
        lines += [
            f"### {res.data.name} ({len(res.data.vectors):,} rows, {len(res.data.queries)} "
            f"queries; load average {res.load_before} before, {res.load_after} after)",
            "",
            "Recall@10 by ef: "
            + "; ".join(
                f"ef {ef}: tenantvec {res.sweep['tenantvec'][ef]:.3f}, Chroma "
                f"{res.sweep['Chroma'][ef]:.3f}"
                for ef in res.sweep["tenantvec"]
            )
            + ".",
            "",
        ]
        for level in res.levels:
            rates = {
                s: statistics.median(
                    p.rate for p in level.phases if p.system == s and p.clients > 1
                )
                for s in SYSTEMS
            }
            lines += [
                f"**At recall >= {level.target:.3f}** ({level.name}): tenantvec ef_search "
                f"{level.tenantvec_ef} (recall {level.tenantvec_recall:.3f}), Chroma ef "
                f"{level.chroma_ef} (recall {level.chroma_recall:.3f}). API vs Chroma server: "
                f"**{rates['API'] / rates['Chroma server']:.2f}x** searches/s at "
                f"{args.clients} clients; API vs direct: {rates['API'] / rates['direct']:.2f}x.",
                "",
                f"| system | searches/s, {args.clients} clients | p50 ms, 1 client | p95 ms, 1 "
                f"client | CPU ms/search ({args.clients} clients): API | Postgres | Chroma "
                "server | bench (+ Chroma embedded) |",
                "|---|---:|---:|---:|---:|---:|---:|---:|",
            ]
            for system in SYSTEMS:
                many = [p for p in level.phases if p.system == system and p.clients > 1]
                single = [p for p in level.phases if p.system == system and p.clients == 1]
                latencies = [x for p in single for x in p.latencies]
                cpu = {
                    name: statistics.median(1000 * p.cpu[name] / len(p.latencies) for p in many)
                    for name in many[0].cpu
                }
                lines.append(
                    f"| {system} | {rates[system]:,.0f} | {1000 * percentile(latencies, 50):.2f} "
                    f"| {1000 * percentile(latencies, 95):.2f} | "
                    + " | ".join(f"{v:.2f}" for v in cpu.values())
                    + " |"
                )
            lines.append("")
        lines += [
            f"Ingest, {args.ingest_rows:,} rows per run in batches of {BATCH}, index on "
            f"(setup: {', '.join(f'{k} {v:.1f}' for k, v in res.setup.items())}):",
            "",
            "| path | rows/s, median | per run |",
            "|---|---:|---|",
        ]
        for label, values in res.ingest.items():
            runs = ", ".join(f"{v:,.0f}" for v in values)
            lines.append(f"| {label} | {statistics.median(values):,.0f} | {runs} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--ingest-rows", type=int, default=3000)
    parser.add_argument("--data", nargs="+", default=["random", "docstrings"])
    parser.add_argument(
        "--ef", type=int, nargs="+", default=list(SWEEP), help="the ef sweep (with 100)"
    )
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args()
    if CHROMA_DEFAULT_EF not in args.ef:
        parser.error(f"the sweep must include Chroma's default ef, {CHROMA_DEFAULT_EF}")
    results = []
    for name in args.data:
        data = load(name, args.rows, args.queries)
        results.append(asyncio.run(measure(data, args)))
    body = report(results, args)
    print(body)
    replace_section(args.output, "peers", body)


if __name__ == "__main__":
    main()
