"""What every fake HTTP service shares: sending a JSON answer the way a real server does."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["LoopbackService", "send_empty", "send_json", "start_server", "stop_server"]

Handle = Callable[[BaseHTTPRequestHandler, bytes], None]


def start_server(handle: Handle, port: int = 0) -> ThreadingHTTPServer:
    """Serve 127.0.0.1:``port`` (0: any free port), each request by ``handle(handler, body)``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            handle(self, self.rfile.read(length) if length else b"")

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_server(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def send_json(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
) -> None:
    # NaN is not JSON, but a broken server can send it: allow_nan mirrors that.
    raw = json.dumps(body, allow_nan=True).encode()
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up waiting (a timeout fault): as a real server would see it


def send_empty(handler: BaseHTTPRequestHandler, status: int) -> None:
    """An answer with no body (204 No Content)."""
    try:
        handler.send_response(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    except (BrokenPipeError, ConnectionResetError):
        pass


class LoopbackService:
    """Start/stop for a fake whose ``_handle(handler, body)`` answers every request."""

    _server: ThreadingHTTPServer | None = None

    def _handle(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        raise NotImplementedError

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, port: int = 0) -> Self:
        self._server = start_server(self._handle, port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            stop_server(self._server)
            self._server = None
