"""ChromaDB for the benchmarks: its embedded client, and ``chroma run`` (the server in
the chromadb wheel) as a process of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.harness import free_port, wait_until_answers


def chroma_client(path: Path) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.PersistentClient(
        path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
    )


def chroma_hnsw() -> dict[str, Any]:
    # A new dict each time: chromadb writes its embedding function into the one it gets.
    return {"hnsw": {"space": "cosine", "max_neighbors": 16, "ef_construction": 64}}


def chroma_collection(client: Any, name: str) -> Any:
    return client.create_collection(name, configuration=chroma_hnsw())


def chroma_add(collection: Any, vectors: np.ndarray, first: int, batch: int) -> None:
    for start in range(0, len(vectors), batch):
        block = vectors[start : start + batch]
        ids = [str(first + start + i) for i in range(len(block))]
        collection.add(ids=ids, embeddings=block, documents=[f"chunk {i}" for i in ids])


class ChromaServer:
    """``chroma run`` on a persisted directory, on a port of its own (kept across
    restarts: the server reads a collection's ef when it loads it, so a new ef needs
    one)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self) -> None:
        binary = Path(sys.executable).parent / "chroma"
        command = [str(binary), "run", "--path", str(self.path), "--host", "127.0.0.1"]
        self._process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until_answers(f"{self.url}/api/v2/heartbeat", self._process, "chroma run")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            self._process.wait(timeout=30)
        self._process = None

    def set_ef(self, collection_id: str, ef: int) -> None:
        response = httpx.put(
            f"{self.url}{CHROMA_PREFIX}/{collection_id}",
            json={"new_configuration": {"hnsw": {"ef_search": ef}}},
            timeout=30,
        )
        response.raise_for_status()
        self.stop()
        self.start()

    def __enter__(self) -> ChromaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


CHROMA_PREFIX = "/api/v2/tenants/default_tenant/databases/default_database/collections"


def chroma_http_collection(url: str, name: str) -> str:
    """The id of collection ``name`` on the server at ``url``."""
    response = httpx.get(f"{url}{CHROMA_PREFIX}/{name}", timeout=30)
    response.raise_for_status()
    return str(response.json()["id"])
