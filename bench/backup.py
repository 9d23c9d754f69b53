"""``make bench-backup``: backing up and restoring one tenant, against its size.

For each size (default 1K, 10K and 100K chunks of 256 dimensions -- wordllama's, the
default -- with HNSW), one tenant is filled straight through COPY, then, run after run
and interleaved:

- **tenantvec**: ``backup_tenant`` (snapshot, count and digest, pg_dump) and
  ``restore_tenant`` into a new tenant (provision, schema at the backup's version, rows
  in one transaction, migrate, verify every row against the digest, build the index);
- **plain pg_dump / pg_restore** of the same database (custom format, schema and rows,
  the index restored by pg_restore as part of the schema) into an empty database: what
  an operator would script by hand, and the physical floor of the copy itself.

Reported: medians and p95 of wall time, the file's size, and CPU seconds of the server
per run (Postgres's own work, from /proc). Every restore is verified; the table says
how many were.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.cpu import postgres_cpu
from bench.harness import percentile, throwaway_server
from bench.machine import describe_machine, replace_section, today
from controlplane.dsn import ConnInfo
from controlplane.embedding import EmbedderSpec
from controlplane.lifecycle.backup import backup_tenant
from controlplane.lifecycle.index import set_index
from controlplane.lifecycle.restore import restore_tenant
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.localpg.tools import pg_tool
from controlplane.pgconnect import connect
from controlplane.plane import ControlPlane
from tenantvec_schema.spec import IndexKind, IndexSpec

DIMS = 256
CHUNKS_PER_DOCUMENT = 10


@dataclass
class Runs:
    backup: list[float] = field(default_factory=list)
    restore: list[float] = field(default_factory=list)
    backup_cpu: list[float] = field(default_factory=list)
    restore_cpu: list[float] = field(default_factory=list)
    bytes: int = 0
    verified: int = 0


async def fill(plane: ControlPlane, tenant_id: str, chunks: int) -> None:
    tenant = await plane.catalog.get_tenant(tenant_id)
    rng = random.Random(chunks)
    async with connect(plane.service_conninfo(tenant), where="bench", timeout=10) as conn:
        documents = max(1, chunks // CHUNKS_PER_DOCUMENT)
        async with conn.cursor() as cur:
            async with cur.copy("COPY documents (id, title, metadata) FROM STDIN") as copy:
                for d in range(documents):
                    await copy.write_row((f"doc-{d}", f"Document {d}", f'{{"n": {d}}}'))
            async with cur.copy(
                "COPY chunks (document_id, ordinal, content, embedding) FROM STDIN"
            ) as copy:
                for c in range(chunks):
                    vector = "[" + ",".join(f"{rng.gauss(0, 1):.6f}" for _ in range(DIMS)) + "]"
                    await copy.write_row(
                        (f"doc-{c % documents}", c // documents, f"chunk {c} text", vector)
                    )
        await conn.commit()
        await conn.execute("ANALYZE")


def plain_copy(admin: ConnInfo, source_db: str, scratch: Path, pg_bin: Path | None) -> float:
    """pg_dump -Fc, then pg_restore into a fresh database, as the superuser: seconds."""
    dump = scratch / "plain.dump"
    target = f"plain_{os.getpid()}_{time.monotonic_ns()}"
    env = {**os.environ, "PGPASSWORD": admin.password or ""}

    def tool(name: str, db: str, *args: str, check: bool = True) -> None:
        dsn = admin.with_(dbname=db, password=None).dsn
        subprocess.run(
            [str(pg_tool(name, pg_bin)), *args, f"--dbname={dsn}"],
            check=check,
            capture_output=True,
            env=env,
        )

    started = time.perf_counter()
    tool("pg_dump", source_db, "-Fc", f"--file={dump}")
    with psycopg.connect(admin.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{target}"')
    tool("pg_restore", target, "--no-owner", "--single-transaction", "--exit-on-error", str(dump))
    seconds = time.perf_counter() - started
    with psycopg.connect(admin.dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{target}"')
    return seconds


async def run(args: argparse.Namespace) -> tuple[dict[int, Runs], dict[int, list[float]]]:
    sizes = [int(s) for s in args.sizes.split(",")]
    ours: dict[int, Runs] = {}
    plain: dict[int, list[float]] = {}
    with throwaway_server(durable=True) as settings, tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        async with ControlPlane.open(settings) as plane:
            assert plane.embedded is not None
            data_dir = plane.embedded.status().data_dir
            admin = plane.embedded.superuser_conninfo()
            for size in sizes:
                source = f"bench-backup-{size}"
                # Filled without an index, then indexed in one pass (set-index's way):
                # row-by-row HNSW inserts would take most of the run.
                await create_tenant(
                    plane,
                    TenantRequest(
                        id=source,
                        dims=DIMS,
                        embedder=EmbedderSpec.parse("hash"),
                        index=IndexSpec(kind=IndexKind.NONE),
                    ),
                    actor="bench",
                )
                await fill(plane, source, size)
                await set_index(plane, source, IndexSpec(), actor="bench")
                database = (await plane.catalog.get_tenant(source)).placement["database"]
                runs = ours.setdefault(size, Runs())
                for r in range(args.runs):
                    before = postgres_cpu(data_dir)
                    started = time.perf_counter()
                    report = await backup_tenant(
                        plane, source, scratch / f"{size}-{r}.tvbackup", actor="bench"
                    )
                    runs.backup.append(time.perf_counter() - started)
                    runs.backup_cpu.append(postgres_cpu(data_dir) - before)
                    runs.bytes = report.bytes
                    before = postgres_cpu(data_dir)
                    started = time.perf_counter()
                    restored = await restore_tenant(
                        plane, report.path, as_id=f"{source}-r{r}", actor="bench"
                    )
                    runs.restore.append(time.perf_counter() - started)
                    runs.restore_cpu.append(postgres_cpu(data_dir) - before)
                    runs.verified += restored.manifest.fingerprint.chunks == size
                    await delete_tenant(plane, f"{source}-r{r}", actor="bench")
                    report.path.unlink()
                    plain.setdefault(size, []).append(
                        await asyncio.to_thread(
                            plain_copy, admin, str(database), scratch, settings.embedded.bin
                        )
                    )
                await delete_tenant(plane, source, actor="bench")
    return ours, plain


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} / {percentile(values, 95):.2f} s"


def report(ours: dict[int, Runs], plain: dict[int, list[float]], args: argparse.Namespace) -> str:
    lines = [
        "## Backing up and restoring a tenant (`make bench-backup`)",
        "",
        f"Measured {today()} on {describe_machine()}; fsync on.",
        "",
        f"Command: `make bench-backup` (`python -m bench.backup --sizes {args.sizes} --runs "
        f"{args.runs}`). One tenant per size ({DIMS} dims, HNSW m 16 / ef_construction 64, "
        f"{CHUNKS_PER_DOCUMENT} chunks per document), filled by COPY; each run a backup, a "
        "restore into a new tenant (verified row for row), then a plain `pg_dump -Fc` + "
        "`pg_restore` of the same database into an empty one, interleaved. Median / p95 of "
        "the runs; CPU is the Postgres server's, per run.",
        "",
        "| chunks | file | backup | restore (verify + index) | plain dump + restore | "
        "server CPU backup / restore | verified |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, runs in ours.items():
        lines.append(
            f"| {size:,} | {runs.bytes / 2**20:.1f} MiB | {_ms(runs.backup)} | "
            f"{_ms(runs.restore)} | {_ms(plain[size])} | "
            f"{statistics.median(runs.backup_cpu):.2f} / "
            f"{statistics.median(runs.restore_cpu):.2f} s | "
            f"{runs.verified} of {len(runs.restore)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000", help="chunks per tenant")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", type=Path, help="markdown file to update (a marked section)")
    args = parser.parse_args()
    ours, plain = asyncio.run(run(args))
    text = report(ours, plain, args)
    print(text)
    if args.write:
        replace_section(args.write, "backup", text)


if __name__ == "__main__":
    main()
