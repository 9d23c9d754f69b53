"""The floor of the API's stack, for ``bench.floor``: the least an ASGI app on uvicorn
with psycopg can do for a search.

No authentication, no routing, no catalog, no checks, no metrics: read the body, decode
it with msgspec, run the one statement on one of eight open connections (psycopg,
async, the vector in binary, as the router sends it), encode the rows with msgspec.
``FLOOR_CANNED=1`` answers ten canned hits without Postgres: what uvicorn and HTTP
alone cost. Configured by environment (``FLOOR_DSN``, ``FLOOR_SQL``): uvicorn imports
it by name in a process of its own.

:func:`litestar_only` is the API without its search lane (api/_lane.py): every search
answered by Litestar's handler, as before the lane.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import msgspec
import psycopg
from litestar import Litestar
from pgvector import Vector
from pgvector.psycopg import register_vector_async

from controlplane.api import create_litestar
from controlplane.settings import Settings

CONNECTIONS = 8


class _Query(msgspec.Struct):
    vector: list[float]
    k: int = 10
    ef_search: int | None = None


class _Hit(msgspec.Struct):
    document_id: str
    ordinal: int
    content: str
    metadata: Any
    score: float


class _Answer(msgspec.Struct):
    results: list[_Hit]


_decode = msgspec.json.Decoder(_Query).decode
_encode = msgspec.json.Encoder().encode
_CANNED = _Answer([_Hit(f"d{i}", 0, f"chunk {i}", {}, 0.5) for i in range(10)])


class _App:
    def __init__(self) -> None:
        self.connections: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
        self.canned = os.environ.get("FLOOR_CANNED") == "1"
        self.sql = os.environ.get("FLOOR_SQL", "")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        query = _decode(body)
        answer = _CANNED if self.canned else await self._search(query)
        data = _encode(answer)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    async def _search(self, query: _Query) -> _Answer:
        conn = await self.connections.get()
        try:
            cur = await conn.execute(self.sql, {"v": Vector(query.vector)})
            rows = await cur.fetchall()
        finally:
            self.connections.put_nowait(conn)
        return _Answer([_Hit(*row) for row in rows])

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if not self.canned:
                    for _ in range(CONNECTIONS):
                        conn = await psycopg.AsyncConnection.connect(
                            os.environ["FLOOR_DSN"], autocommit=True
                        )
                        await register_vector_async(conn)
                        self.connections.put_nowait(conn)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                while not self.connections.empty():
                    await self.connections.get_nowait().close()
                await send({"type": "lifespan.shutdown.complete"})
                return


app = _App()


def litestar_only() -> Litestar:
    """uvicorn's factory (``--factory``): the API's Litestar app, settings from the
    environment."""
    return create_litestar(Settings.from_env())
