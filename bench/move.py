"""``make bench-move``: moving one tenant between two servers while it serves.

Two embedded servers, both registered (``local`` and ``second``). For each size
(default 1K, 10K and 100K chunks of 256 dimensions -- wordllama's, the default -- with
HNSW), one tenant is filled straight through COPY and indexed; then, run after run and
interleaved:

- **tenantvec**: ``move_tenant`` to the other server (copy while writes go on, verify
  every row, build the index, pause writes, catch up, switch, wait one route TTL, drop
  the old copy) while a client in the same process writes a document every 20 ms and
  another reads (a vector search) as fast as it can. The **write-refusal window** is
  what that writer saw: the longest time between two of its accepted writes (writes in
  other API processes may wait up to one route TTL more);
- **plain pg_dump | pg_restore** of the same database onto the other server, as the
  superuser (custom format, schema and rows, index built by pg_restore): what an
  operator would script by hand -- with writes stopped for all of it -- and the floor of
  the copy itself.

Every write the client was told was made is looked up in the moved tenant afterwards.
Each run's writes carry new document ids: a repeated one would be "unchanged" -- no
write at all, accepted even while paused.

Reported: medians and p95 of wall time, the refusal window, reads that failed, writes
accepted / refused / lost, CPU seconds of both servers per run (from /proc), and how
many moves verified.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.backup import DIMS, fill
from bench.cpu import postgres_cpu
from bench.harness import percentile, throwaway_server
from bench.machine import describe_machine, replace_section, today
from controlplane.backends.servers import register_server
from controlplane.dsn import ConnInfo
from controlplane.embedding import EmbedderSpec
from controlplane.errors import TenantUnavailable
from controlplane.lifecycle.index import set_index
from controlplane.lifecycle.move import move_tenant
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.localpg import EmbeddedServer
from controlplane.localpg.tools import pg_tool
from controlplane.pgconnect import connect
from controlplane.plane import ControlPlane
from controlplane.retrieval import ChunkIn, DocumentIn, SearchRequest, UpsertRequest
from controlplane.retrieval.documents import upsert_documents
from controlplane.retrieval.search import search
from controlplane.routing import TenantRouter
from tenantvec_schema.spec import IndexKind, IndexSpec

WRITE_EVERY = 0.02


@dataclass
class Runs:
    move: list[float] = field(default_factory=list)
    refused_window: list[float] = field(default_factory=list)
    paused: list[float] = field(default_factory=list)  # as the move itself reports it
    cpu: list[float] = field(default_factory=list)
    plain: list[float] = field(default_factory=list)
    reads: int = 0
    read_failures: int = 0
    writes_ok: int = 0
    writes_refused: int = 0
    writes_lost: int = 0  # acknowledged, and not in the moved tenant
    verified: int = 0


@dataclass
class Probe:
    """A writer and a reader on the tenant while it moves."""

    run: int = 0  # ids are new in every run: a repeated one is "unchanged", no write
    refused_at: list[float] = field(default_factory=list)
    accepted_at: list[float] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    reads: int = 0
    read_failures: int = 0

    def window(self) -> float:
        """The longest time the writer went without an accepted write: a write refused,
        or one that waited, counts alike (the writer tries every 20 ms)."""
        times = sorted(self.accepted_at)
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


async def probe(router: TenantRouter, tenant_id: str, done: asyncio.Event, out: Probe) -> None:
    vector = [0.1] * DIMS

    async def writer() -> None:
        n = 0
        while not done.is_set():
            doc = DocumentIn(
                id=f"probe-{out.run}-{n}",
                chunks=[ChunkIn(content=f"probe {out.run} {n}", embedding=vector)],
            )
            n += 1
            try:
                await upsert_documents(router, tenant_id, UpsertRequest(documents=[doc]))
                out.accepted_at.append(time.monotonic())
                out.acknowledged.append(doc.id)
            except TenantUnavailable:
                out.refused_at.append(time.monotonic())
            await asyncio.sleep(WRITE_EVERY)

    async def reader() -> None:
        while not done.is_set():
            try:
                await search(router, tenant_id, SearchRequest(vector=vector, k=5))
                out.reads += 1
            except TenantUnavailable:
                out.read_failures += 1
            await asyncio.sleep(0.005)

    await asyncio.gather(writer(), reader())


def plain_move(source: ConnInfo, target: ConnInfo, database: str, pg_bin: Path | None) -> float:
    """pg_dump -Fc from one server, pg_restore into a fresh database on the other."""
    name = f"plain_{os.getpid()}_{time.monotonic_ns()}"
    dump = Path(f"/tmp/{name}.dump")

    def tool(binary: str, admin: ConnInfo, db: str, *args: str) -> None:
        env = {**os.environ, "PGPASSWORD": admin.password or ""}
        dsn = admin.with_(dbname=db, password=None).dsn
        subprocess.run(
            [str(pg_tool(binary, pg_bin)), *args, f"--dbname={dsn}"],
            check=True,
            capture_output=True,
            env=env,
        )

    started = time.perf_counter()
    try:
        tool("pg_dump", source, database, "-Fc", f"--file={dump}")
        with psycopg.connect(target.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        tool(
            "pg_restore", target, name, "--no-owner", "--no-privileges", "--single-transaction",
            "--exit-on-error", str(dump),
        )  # fmt: skip
        return time.perf_counter() - started
    finally:
        dump.unlink(missing_ok=True)
        with psycopg.connect(target.dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


async def run(args: argparse.Namespace) -> dict[int, Runs]:
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, Runs] = {}
    with (
        throwaway_server(durable=True) as settings,
        throwaway_server(durable=True) as second_settings,
    ):
        second = EmbeddedServer(second_settings)
        data_dirs = [
            EmbeddedServer(settings).status().data_dir,
            second.status().data_dir,
        ]
        async with ControlPlane.open(settings) as plane:
            assert plane.embedded is not None
            await register_server(plane.catalog, plane.box, "second", second.superuser_conninfo())
            admins = {
                "local": plane.embedded.superuser_conninfo(),
                "second": second.superuser_conninfo(),
            }
            for size in sizes:
                tenant_id = f"bench-move-{size}"
                await create_tenant(
                    plane,
                    TenantRequest(
                        id=tenant_id,
                        dims=DIMS,
                        embedder=EmbedderSpec.parse("hash"),
                        index=IndexSpec(kind=IndexKind.NONE),
                        server="local",
                    ),
                    actor="bench",
                )
                await fill(plane, tenant_id, size)
                await set_index(plane, tenant_id, IndexSpec(), actor="bench")
                runs = results.setdefault(size, Runs())
                for run_number in range(args.runs):
                    tenant = await plane.catalog.get_tenant(tenant_id)
                    here = str(tenant.server)
                    there = "second" if here == "local" else "local"
                    # The physical floor first, from the same database, writes stopped.
                    runs.plain.append(
                        await asyncio.to_thread(
                            plain_move,
                            admins[here],
                            admins[there],
                            str(tenant.placement["database"]),
                            settings.embedded.bin,
                        )
                    )
                    seen = Probe(run=run_number)
                    done = asyncio.Event()
                    cpu = sum(postgres_cpu(d) for d in data_dirs)
                    async with TenantRouter.open(plane) as router:
                        probing = asyncio.create_task(probe(router, tenant_id, done, seen))
                        await asyncio.sleep(0.5)  # the probe is writing before the move
                        started = time.perf_counter()
                        try:
                            report = await move_tenant(
                                plane, tenant_id, backend="postgres", server=there, actor="bench"
                            )
                        finally:
                            runs.move.append(time.perf_counter() - started)
                            await asyncio.sleep(0.5)
                            done.set()
                            with contextlib.suppress(Exception):
                                await probing
                    runs.cpu.append(sum(postgres_cpu(d) for d in data_dirs) - cpu)
                    runs.refused_window.append(seen.window())
                    runs.paused.append(report.writes_paused_seconds)
                    runs.reads += seen.reads
                    runs.read_failures += seen.read_failures
                    runs.writes_ok += len(seen.acknowledged)
                    runs.writes_refused += len(seen.refused_at)
                    runs.writes_lost += await _missing(plane, tenant_id, seen.acknowledged)
                    runs.verified += report.chunks >= size and report.tenant.server == there
                await delete_tenant(plane, tenant_id, actor="bench")
    return results


async def _missing(plane: ControlPlane, tenant_id: str, ids: list[str]) -> int:
    """How many of the acknowledged documents the moved tenant does not hold."""
    tenant = await plane.catalog.get_tenant(tenant_id)
    async with connect(plane.service_conninfo(tenant), where="bench", timeout=10) as conn:
        cur = await conn.execute("SELECT count(*) FROM documents WHERE id = ANY(%s)", (ids,))
        row = await cur.fetchone()
    return len(ids) - int(row[0] if row else 0)


def _s(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} / {percentile(values, 95):.2f} s"


def report(results: dict[int, Runs], args: argparse.Namespace) -> str:
    lines = [
        "## Moving a tenant between servers while it serves (`make bench-move`)",
        "",
        f"Measured {today()} on {describe_machine()}; fsync on; both servers on this machine.",
        "",
        f"Command: `make bench-move` (`python -m bench.move --sizes {args.sizes} --runs "
        f"{args.runs}`). One tenant per size ({DIMS} dims, HNSW m 16 / ef_construction 64), "
        "filled by COPY and indexed; each run moves it to the other server "
        "(`move_tenant`: copy while writes go on, verify every row, index in one pass, "
        "pause writes, catch up, switch, one route TTL -- 2 s -- then drop the old copy) "
        "while a client writes a document every 20 ms "
        "and another searches, then -- interleaved -- a plain `pg_dump -Fc | pg_restore` "
        "of the same database onto the other server. Median / p95 of the runs; CPU is "
        "both servers', per run.",
        "",
        "| chunks | move (total) | longest wait between accepted writes | pause as the move "
        "reports it | plain dump + restore | server CPU per move | reads ok / failed | "
        "writes ok / refused / lost | verified |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size, runs in results.items():
        lines.append(
            f"| {size:,} | {_s(runs.move)} | {_s(runs.refused_window)} | {_s(runs.paused)} | "
            f"{_s(runs.plain)} | {statistics.median(runs.cpu):.2f} s | "
            f"{runs.reads} / {runs.read_failures} | "
            f"{runs.writes_ok} / {runs.writes_refused} / {runs.writes_lost} | "
            f"{runs.verified} of {len(runs.move)} |"
        )
    lines += [
        "",
        "Reads never stop: the old copy serves them until the switch, the new one after. "
        "Writes are refused (503 + `Retry-After`) only from the pause to the switch: the "
        "catch-up (a digest of every document on both sides, the documents written "
        "during the copy copied again, both fingerprints compared). The copy itself runs "
        "while writes go on; the plain dump and restore beside it is that copy's floor, "
        "with writes stopped by hand for all of it. Every write the client was told was "
        'made is looked up in the moved tenant afterwards ("lost").',
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000", help="chunks per tenant")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", type=Path, help="markdown file to update (a marked section)")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    text = report(results, args)
    print(text)
    if args.write:
        replace_section(args.write, "move", text)


if __name__ == "__main__":
    main()
