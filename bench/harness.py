"""What every benchmark shares: a throwaway embedded server, percentiles, an API process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import numpy as np
import psycopg
from pgvector.psycopg import register_vector_async

from controlplane.envparse import parse_port_range
from controlplane.settings import Settings
from controlplane.testing import servers

__all__ = [
    "api_process",
    "api_env",
    "api_server",
    "clean_env",
    "copy_chunks",
    "free_port",
    "percentile",
    "throwaway_server",
    "wait_until_answers",
]


free_port = servers.free_port


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def clean_env() -> dict[str, str]:
    """This process's environment without its TENANTVEC_* settings (a benchmark's
    servers get their own) -- but for the instance ports a test run hands each worker."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TENANTVEC_") or k == "TENANTVEC_INSTANCE_PORTS"
    }


@contextlib.contextmanager
def throwaway_server(
    *, durable: bool = True, max_connections: int | None = None
) -> Iterator[Settings]:
    """An embedded server in a throwaway home (controlplane.testing.servers, as the
    tests and the pytest plugin make theirs), ``durable`` (fsync on, as in production)
    unless told not, with ``max_connections`` (default: the product's); stopped and
    removed after."""
    base = Settings()
    # hash, not the wordllama default: the benchmarks choose their own vector sizes
    # (3, 1024, ...) and hash fills any; bench.quality names its embedders per tenant.
    base = base.replace(embedding=base.embedding.replace(default="hash"))
    if max_connections is not None:
        base = base.replace(embedded=base.embedded.replace(max_connections=max_connections))
    if os.environ.get("TENANTVEC_INSTANCE_PORTS"):  # a test run gives each worker its own
        ports = parse_port_range(os.environ["TENANTVEC_INSTANCE_PORTS"])
        base = base.replace(instance=base.instance.replace(ports=ports))
    with servers.throwaway_server(base=base, durable=durable) as settings:
        yield settings


@contextlib.contextmanager
def api_process(settings: Settings, token: str, **env: str) -> Iterator[str]:
    """``tenantctl serve`` on a free port for ``settings``; yields its base URL."""
    with api_server(settings, token, **env) as (url, _):
        yield url


def api_env(settings: Settings, token: str, **env: str) -> dict[str, str]:
    """The environment an API process for ``settings`` runs with."""
    full_env = clean_env()
    full_env.update(
        {
            "TENANTVEC_HOME": str(settings.home),
            "TENANTVEC_PG_PORT": str(settings.embedded.port),
            "TENANTVEC_ADMIN_TOKEN": token,
            "TENANTVEC_EMBEDDER": settings.embedding.default,
            **env,
        }
    )
    return full_env


def wait_until_answers(
    url: str, process: subprocess.Popen[bytes], what: str, seconds: float = 60.0
) -> None:
    """Wait until a GET of ``url`` answers 200 -- or ``process`` (serving it) exits, or
    ``seconds`` pass: a RuntimeError naming ``what``."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer within {seconds:g} s")
        time.sleep(0.1)


@contextlib.contextmanager
def api_server(
    settings: Settings, token: str, *, workers: int = 1, **env: str
) -> Iterator[tuple[str, int]]:
    """``tenantctl serve --workers N`` on a free port; yields its URL and process id."""
    port = free_port()
    full_env = api_env(settings, token, **env)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from tenantctl.main import run; run()",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{url}/readyz", process, "tenantctl serve")
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def copy_chunks(dsn: str, vectors: np.ndarray, label: str = "") -> None:
    """One document and one chunk per vector (``d0``, ``d1``, ...), loaded with COPY
    straight into a tenant database -- a bench's set-up, not what it measures."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await register_vector_async(conn)
        async with conn.cursor() as cur:
            async with cur.copy("COPY documents (id) FROM STDIN") as copy:
                for i in range(len(vectors)):
                    await copy.write_row((f"d{i}",))
            async with cur.copy(
                "COPY chunks (document_id, ordinal, content, embedding) FROM STDIN "
                "WITH (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["text", "int4", "text", "vector"])
                for i, vector in enumerate(vectors):
                    await copy.write_row((f"d{i}", 0, f"chunk {i}{label}", vector))
        await conn.commit()
