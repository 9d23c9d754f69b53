"""``make bench-ingest``: ingest throughput with precomputed vectors, tenantvec vs ChromaDB.

The same N vectors of 1024 dimensions (seeded, unit length) go in batches of 500, one
chunk per document, three ways in the same run:

- **library**: ``upsert_documents()`` into a fresh tenant (HNSW m=16,
  ef_construction=64, cosine), batch after batch;
- **API**: ``PUT /v1/tenants/{id}/documents`` to ``tenantctl serve`` over loopback
  (JSON bodies of ~5 MB), batch after batch, into another fresh tenant;
- **library, --index none**: the library path into a tenant without a vector index
  (exact search), which shows what the HNSW insertions cost;
- **ChromaDB**: ``collection.add()`` on the embedded ``PersistentClient`` into a fresh
  collection with the same HNSW parameters, and -- since Chroma may index in the
  background -- the time until a query over the whole collection answers is included.

Rounds alternate the order of the three. Postgres is durable (fsync on); Chroma writes
its SQLite log and index files as it does by default. chunks/s per run, medians.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import msgspec
import numpy as np

from bench.harness import api_process, throwaway_server
from bench.machine import describe_machine, replace_section, today
from controlplane.lifecycle.tenants import TenantRequest, create_tenant
from controlplane.plane import ControlPlane
from controlplane.retrieval import ChunkIn, DocumentIn, UpsertRequest
from controlplane.retrieval.documents import upsert_documents
from controlplane.routing import TenantRouter
from tenantvec_schema.spec import IndexKind, IndexSpec

ACTOR = "bench"
DIMS = 1024


def _vectors(n: int) -> np.ndarray:
    data = np.random.default_rng(5).standard_normal((n, DIMS)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def _batches(vectors: np.ndarray, size: int) -> list[list[tuple[str, list[float]]]]:
    rows = [(f"doc-{i}", v.tolist()) for i, v in enumerate(vectors)]
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _request(batch: list[tuple[str, list[float]]]) -> UpsertRequest:
    return UpsertRequest(
        documents=[
            DocumentIn(id=i, chunks=[ChunkIn(content=f"chunk {i}", embedding=v)]) for i, v in batch
        ]
    )


async def library(
    plane: ControlPlane,
    tenant: str,
    batches: list,
    index: IndexKind = IndexKind.HNSW,  # type: ignore[type-arg]
) -> float:
    request = TenantRequest(id=tenant, dims=DIMS, index=IndexSpec(kind=index))
    await create_tenant(plane, request, actor=ACTOR)
    async with TenantRouter.open(plane) as router:
        requests = [_request(b) for b in batches]  # built before the clock starts
        started = time.perf_counter()
        for request in requests:
            await upsert_documents(router, tenant, request)
        return time.perf_counter() - started


async def api(plane: ControlPlane, url: str, token: str, tenant: str, batches: list) -> float:  # type: ignore[type-arg]
    await create_tenant(plane, TenantRequest(id=tenant, dims=DIMS), actor=ACTOR)
    bodies = [msgspec.json.encode(_request(b)) for b in batches]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as http:
        started = time.perf_counter()
        for body in bodies:
            response = await http.put(f"/v1/tenants/{tenant}/documents", content=body)
            response.raise_for_status()
        return time.perf_counter() - started


def chroma(batches: list, vectors: np.ndarray) -> float:  # type: ignore[type-arg]
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    path = Path(tempfile.mkdtemp(prefix="tenantvec-bench-chroma-"))
    try:
        client = chromadb.PersistentClient(
            path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
        )
        collection = client.create_collection(
            "bench",
            configuration={"hnsw": {"space": "cosine", "max_neighbors": 16, "ef_construction": 64}},
        )
        prepared = [
            ([i for i, _ in b], [v for _, v in b], [f"chunk {i}" for i, _ in b]) for b in batches
        ]
        started = time.perf_counter()
        for ids, embeddings, documents in prepared:
            collection.add(ids=ids, embeddings=embeddings, documents=documents)
        # Queryable over everything: Chroma may still be indexing what it accepted.
        found = collection.query(query_embeddings=[vectors[-1].tolist()], n_results=1)
        elapsed = time.perf_counter() - started
        assert collection.count() == len(vectors) and found["ids"][0]
        return elapsed
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def run(args: argparse.Namespace) -> tuple[dict[str, list[float]], str]:
    vectors = _vectors(args.chunks)
    batches = _batches(vectors, args.batch)
    rates: dict[str, list[float]] = {
        "library": [],
        "API": [],
        "ChromaDB": [],
        "library, --index none": [],
    }
    token = secrets.token_urlsafe(24)
    with throwaway_server() as settings:
        async with ControlPlane.open(settings) as plane:
            assert plane.embedded is not None
            version = plane.embedded.binaries.version
            with api_process(settings, token) as url:
                for r in range(args.rounds):
                    order = list(rates)
                    order = order[r % 4 :] + order[: r % 4]
                    for name in order:
                        if name == "library":
                            seconds = await library(plane, f"bench-lib-{r}", batches)
                        elif name == "library, --index none":
                            seconds = await library(
                                plane, f"bench-none-{r}", batches, IndexKind.NONE
                            )
                        elif name == "API":
                            seconds = await api(plane, url, token, f"bench-api-{r}", batches)
                        else:
                            seconds = await asyncio.to_thread(chroma, batches, vectors)
                        rates[name].append(args.chunks / seconds)
                        print(f"round {r + 1} {name}: {rates[name][-1]:,.0f} chunks/s", flush=True)
    return rates, version


def report(rates: dict[str, list[float]], args: argparse.Namespace, version: str) -> str:
    med = {name: statistics.median(values) for name, values in rates.items()}
    lines = [
        f"Measured {today()} on {describe_machine()}; Postgres {version} (fsync on), "
        f"chromadb {_chroma_version()} (PersistentClient).",
        "",
        f"Command: `make bench-ingest` (`python -m bench.ingest --chunks {args.chunks} "
        f"--batch {args.batch} --rounds {args.rounds}`)",
        "",
        f"{args.chunks:,} precomputed vectors x {DIMS} dims, batches of {args.batch}, one "
        "chunk per document, a fresh tenant / collection per run, HNSW m=16 ef_construction=64 "
        "cosine on both sides. ChromaDB's time includes its first query answering over "
        "everything.",
        "",
        "| path | chunks/s, median | per run | vs ChromaDB |",
        "|---|---|---|---|",
    ]
    for name, values in rates.items():
        runs = ", ".join(f"{v:,.0f}" for v in values)
        lines.append(f"| {name} | {med[name]:,.0f} | {runs} | {med[name] / med['ChromaDB']:.2f}x |")
    return "\n".join(lines)


def _chroma_version() -> str:
    import chromadb

    return str(chromadb.__version__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", type=Path, help="markdown file to update (a marked section)")
    args = parser.parse_args()
    rates, version = asyncio.run(run(args))
    text = report(rates, args, version)
    print(text)
    if args.write:
        replace_section(args.write, "ingest", text)


if __name__ == "__main__":
    main()
