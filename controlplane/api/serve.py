"""Running the API: uvicorn with every request bounded in time, logs one line a record.

uvicorn times out idle keep-alive connections, but not a request that arrives slowly:
a client that sends half its headers, or a body one byte a minute, holds a connection
and (for a body) a request task for as long as it likes. :class:`GuardedHttpProtocol`
gives each request ``HEADER_SECONDS`` for its headers; then its body must keep coming --
no pause longer than ``TENANTVEC_REQUEST_TIMEOUT_SECONDS`` -- and arrive whole within
that long plus its size at ``MIN_BODY_RATE``: a backup of gigabytes uploads over a slow
line, a client that trickles does not hold a task for long. A client that is slower
gets ``408`` (problem+json) and its connection closed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

from controlplane.errors import ConfigurationError
from controlplane.logs import logging_config
from controlplane.settings import Settings

__all__ = ["HEADER_SECONDS", "GuardedHttpProtocol", "serve"]

# A request line and headers take one round trip from any client that means well.
HEADER_SECONDS = 10.0
# The slowest average a body may arrive at, past TENANTVEC_REQUEST_TIMEOUT_SECONDS:
# 64 kB/s (a 15 MB backup: 4 minutes more; the 8 GiB largest: 36 hours).
MIN_BODY_RATE = 64_000.0
_APP = "controlplane.api.app:create_app_from_env"


class _Config(uvicorn.Config):
    """uvicorn's config, carrying the request time limit to the protocol in every worker
    (workers are spawned with a pickled copy)."""

    def __init__(
        self, *args: Any, request_seconds: float, largest_body: int, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.request_seconds = request_seconds
        self.largest_body = largest_body


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for reading each request."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._request_seconds = float(getattr(config, "request_seconds", 60.0))
        self._read_deadline: asyncio.TimerHandle | None = None
        self._body_deadline = 0.0  # loop time by which the body must be whole

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(HEADER_SECONDS)  # the first request's headers

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._read_deadline is None:
            self._arm(HEADER_SECONDS)  # a later request on a kept-alive connection

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        # Now the body: its whole arrival bounded by its announced size (chunked: by the
        # largest body the API takes), each pause by the request timeout.
        size = _content_length(self.headers) if self.headers else None
        allowance = (size if size is not None else self._largest_body()) / MIN_BODY_RATE
        self._body_deadline = self.loop.time() + self._request_seconds + allowance
        self._arm(self._request_seconds)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        if self._read_deadline is not None:  # more came: the next pause may be as long
            self._arm(min(self._request_seconds, self._body_deadline - self.loop.time()))

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _largest_body(self) -> float:
        return float(getattr(self.config, "largest_body", 0))

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _too_slow(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            self.transport.write(_timeout_response())
        # The request task, if any, sees a disconnect and ends.
        self.transport.close()


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return max(0, int(value))
            except ValueError:
                return None
    return None


def _timeout_response() -> bytes:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Request Timeout",
            "status": 408,
            "detail": "the request did not arrive in time; send it whole, faster",
            "code": "request_timeout",
        }
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


def serve(settings: Settings, *, host: str, port: int, workers: int, debug: bool) -> None:
    """Serve the API until interrupted (``tenantctl serve``); ``workers`` processes."""
    level = "DEBUG" if debug else "INFO"
    config = _Config(
        _APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=GuardedHttpProtocol,
        log_level=level.lower(),
        log_config=logging_config(level, access_log=debug),
        access_log=debug,
        timeout_graceful_shutdown=10,
        request_seconds=settings.api.request_timeout_seconds,
        largest_body=max(settings.api.max_body_bytes, settings.api.max_restore_bytes),
    )
    server = uvicorn.Server(config)
    try:
        if workers > 1:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        else:
            server.run()
    except KeyboardInterrupt:
        pass
    if workers == 1 and not server.started:
        raise ConfigurationError(
            f"the API did not start on {host}:{port}; the log above says why (a port in use?)"
        )
