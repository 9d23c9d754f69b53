"""A lean HTTP/1.1 keep-alive client for load generation, one connection per client.

On a 2-core machine the load generator shares the CPU with the server it measures:
httpx spends ~1 ms of CPU per request here (its pure-Python h11 parser, its pools),
about what the API itself spends, where psycopg spends ~0.3 ms per direct search. That
cost belongs to neither path, so the benches that compare the API with direct psycopg
send their requests with this: a request written in one piece, the answer read by its
Content-Length. It knows only what tenantvec's API answers (no chunked bodies, no
redirects) and raises on anything else; it is a measuring tool, not a client library.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

__all__ = ["Http1Connection", "HttpError"]


class HttpError(RuntimeError):
    pass


class Http1Connection:
    """``await conn.request("POST", "/path", body, headers)`` -> (status, body)."""

    def __init__(self, base_url: str) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or url.hostname is None or url.port is None:
            raise ValueError(f"expected http://host:port, got {base_url!r}")
        self._host, self._port = url.hostname, url.port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        reused = self._writer is not None
        try:
            return await self._request(method, path, body, headers)
        except (asyncio.IncompleteReadError, ConnectionError):
            if not reused:
                raise
        # The server closed the connection while it sat idle (its keep-alive timeout):
        # once more on a new one, as any HTTP client does.
        await self.close()
        return await self._request(method, path, body, headers)

    async def _request(
        self, method: str, path: str, body: bytes, headers: dict[str, str] | None
    ) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"host: {self._host}:{self._port}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body or method in ("POST", "PUT"):
            lines.append(f"content-length: {len(body)}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        length = None
        for line in header_lines:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                raise HttpError(f"{method} {path}: chunked answers are not supported here")
        if length is None:
            raise HttpError(f"{method} {path}: answer without Content-Length")
        return status, await self._reader.readexactly(length)

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
