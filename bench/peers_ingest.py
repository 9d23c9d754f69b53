"""``bench.peers``'s ingest runs: new rows into one system, timed as its users write."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import numpy as np
import psycopg
from pgvector.psycopg import register_vector_async

from bench.chroma import CHROMA_PREFIX, chroma_add, chroma_collection, chroma_hnsw
from bench.datasets import DIMS
from bench.harness import clean_env
from controlplane.keys import create_key
from controlplane.lifecycle.tenants import create_tenant, tenant_conninfo
from controlplane.model.request import TenantRequest
from controlplane.plane import ControlPlane

if TYPE_CHECKING:
    from bench.peers import Rig

ACTOR = "bench"
BATCH = 500


def new_rows(base: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    """New rows like the stored ones: a stored vector moved by 0.3 of its length
    in a random direction (the data set's neighbourhoods, not copies of its rows)."""
    picked = base[rng.integers(0, len(base), count)]
    noise = rng.standard_normal(picked.shape).astype(np.float32)
    noise *= 0.3 / np.linalg.norm(noise, axis=1, keepdims=True)
    rows = picked + noise
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def _ids(first: int, count: int) -> list[int]:
    return list(range(first, first + count))


class Ingest:
    """One ingest run: ``rows`` (ids from ``first``) into one system, timed."""

    def __init__(
        self,
        rig: Rig,
        plane: ControlPlane,
        http: httpx.AsyncClient,
        rows: np.ndarray,
        first: int,
        suffix: str,
    ) -> None:
        self.rig, self.plane, self.http = rig, plane, http
        self.rows, self.first, self.suffix = rows, first, suffix
        self.batches = [
            (self.first + start, rows[start : start + BATCH])
            for start in range(0, len(rows), BATCH)
        ]

    async def run(self, system: str, *, fresh: bool) -> float:
        if system == "API":
            return await self.api(fresh)
        if system == "direct":
            return await self.direct(fresh)
        if system == "tenantctl ingest":
            return await self.cli(fresh)
        if system == "Chroma embedded":
            return await self.chroma_embedded(fresh)
        return await self.chroma_server(fresh)

    async def _tenant(self, name: str, fresh: bool) -> tuple[str, str]:
        """The tenant to write to and its API key."""
        if not fresh:
            return self.rig.tenant, self.rig.key
        tenant = f"ingest-{name}-{self.suffix}"
        await create_tenant(self.plane, TenantRequest(id=tenant, dims=DIMS), actor=ACTOR)
        return tenant, (await create_key(self.plane, tenant, actor=ACTOR)).secret

    async def api(self, fresh: bool) -> float:
        tenant, key = await self._tenant("api", fresh)
        bodies = [
            msgspec.json.encode(
                {
                    "documents": [
                        {"id": f"api-{i}", "chunks": [{"content": f"chunk {i}", "embedding": v}]}
                        for i, v in zip(_ids(first, len(block)), block.tolist(), strict=True)
                    ]
                }
            )
            for first, block in self.batches
        ]
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        url = f"{self.rig.api_url}/v1/tenants/{tenant}/documents"
        began = time.perf_counter()
        for body in bodies:
            (await self.http.put(url, content=body, headers=headers)).raise_for_status()
        return time.perf_counter() - began

    async def cli(self, fresh: bool) -> float:
        """``tenantctl ingest`` of a JSONL file of documents with their vectors, as a
        user runs it (its start-up included)."""
        tenant, _ = await self._tenant("cli", fresh)
        path = Path(tempfile.mkdtemp(prefix="tenantvec-bench-jsonl-")) / "rows.jsonl"
        with path.open("wb") as out:
            for first, block in self.batches:
                for i, v in zip(_ids(first, len(block)), block.tolist(), strict=True):
                    line = {"id": f"cli-{i}", "chunks": [{"content": f"chunk {i}", "embedding": v}]}
                    out.write(msgspec.json.encode(line) + b"\n")
        env = clean_env()
        env.update(
            {
                "TENANTVEC_HOME": str(self.rig.home),
                "TENANTVEC_PG_PORT": str(self.rig.pg_port),
            }
        )
        command = [sys.executable, "-c", "from tenantctl.main import run; run()"]
        began = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *command,
            "ingest",
            tenant,
            str(path),
            "--json",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
        seconds = time.perf_counter() - began
        shutil.rmtree(path.parent, ignore_errors=True)
        if process.returncode != 0:
            raise RuntimeError(f"tenantctl ingest: {err.decode()[-500:]}")
        return seconds

    async def direct(self, fresh: bool) -> float:
        tenant, _ = await self._tenant("direct", fresh)
        dsn = (await tenant_conninfo(self.plane, tenant)).dsn
        began = time.perf_counter()
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            await register_vector_async(conn)
            for first, block in self.batches:
                await _copy_batch(conn, first, block)
                await conn.commit()
        return time.perf_counter() - began

    async def chroma_embedded(self, fresh: bool) -> float:
        collection = self.rig.chroma
        if fresh:
            collection = chroma_collection(self.rig.chroma_client, f"ingest-{self.suffix}")
        began = time.perf_counter()
        await asyncio.to_thread(chroma_add, collection, self.rows, self.first, BATCH)
        # Queryable over everything: Chroma may still be indexing what it accepted.
        await asyncio.to_thread(collection.query, query_embeddings=[self.rows[-1]], n_results=1)
        return time.perf_counter() - began

    async def chroma_server(self, fresh: bool) -> float:
        base = f"{self.rig.server.url}{CHROMA_PREFIX}"
        collection_id = self.rig.chroma_id
        if fresh:
            created = await self.http.post(
                base, json={"name": f"ingest-{self.suffix}", "configuration": chroma_hnsw()}
            )
            created.raise_for_status()
            collection_id = created.json()["id"]
        bodies = [
            msgspec.json.encode(
                {
                    "ids": [str(i) for i in _ids(first, len(block))],
                    "embeddings": block.tolist(),
                    "documents": [f"chunk {i}" for i in _ids(first, len(block))],
                }
            )
            for first, block in self.batches
        ]
        query = msgspec.json.encode({"query_embeddings": [self.rows[-1].tolist()], "n_results": 1})
        headers = {"Content-Type": "application/json"}
        began = time.perf_counter()
        for body in bodies:
            added = await self.http.post(
                f"{base}/{collection_id}/add", content=body, headers=headers
            )
            added.raise_for_status()
        answer = await self.http.post(
            f"{base}/{collection_id}/query", content=query, headers=headers
        )
        answer.raise_for_status()
        return time.perf_counter() - began


async def _copy_batch(conn: psycopg.AsyncConnection[Any], first: int, block: np.ndarray) -> None:
    async with conn.cursor() as cur:
        async with cur.copy("COPY documents (id) FROM STDIN") as copy:
            for i in _ids(first, len(block)):
                await copy.write_row((f"pg-{i}",))
        async with cur.copy(
            "COPY chunks (document_id, ordinal, content, embedding) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["text", "int4", "text", "vector"])
            for i, vector in zip(_ids(first, len(block)), block, strict=True):
                await copy.write_row((f"pg-{i}", 0, f"chunk {i}", vector))
