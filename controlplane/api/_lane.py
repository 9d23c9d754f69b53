"""The search lane: ``POST /v1/tenants/{id}/search`` answered without Litestar's
per-request machinery.

Searches are the API's hot path, and Litestar's per-request work around a handler
(signature model, dependency and DTO extraction, response rendering, its middleware
stack) cost about as much CPU as the search itself (``make bench-floor``). The lane is
an ASGI app in front of the Litestar app that answers exactly that method and path with
the pieces the documented handler (api/_data.py) is made of, in the same order: the
guard's authentication and tenant check (api/_auth.py) before any byte of the body is
read, strict decoding into :class:`SearchRequest` (api/_body.py), the library's
:func:`search`, every error answered by api/_problems.py, the request counted by
api/_metrics.py. Everything else -- other routes, the lifespan, and a body that is empty
or over ``TENANTVEC_MAX_BODY_BYTES`` (Litestar's own answers, the bytes read so far
handed on) -- goes to Litestar. tests/controlplane/api/test_search_lane.py holds the
lane and the handler to byte-identical answers.
"""

from __future__ import annotations

import re
import time

import msgspec
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import (
    HTTPRequestEvent,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from controlplane.api._auth import authenticate, check_tenant_access
from controlplane.api._body import decode_strict
from controlplane.api._caller import Caller
from controlplane.api._problems import PROBLEM_JSON, Problem, error_problem, unexpected_problem
from controlplane.api._state import ApiState
from controlplane.errors import TenantvecError
from controlplane.retrieval import SearchRequest
from controlplane.retrieval.search import search

__all__ = ["SearchLane"]

_PATH = re.compile(r"/v1/tenants/([^/]+)/search")
_ROUTE = "search"  # the handler's operation id, as the metrics label it
_JSON = b"application/json"
_encode = msgspec.json.Encoder().encode


class SearchLane:
    """The API as served: searches answered here, every other request by ``litestar``."""

    def __init__(self, litestar: Litestar, *, max_body_bytes: int) -> None:
        self.litestar = litestar
        self._max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] == "POST":
            match = _PATH.fullmatch(scope["path"])
            if match is not None:
                await self._search(scope, receive, send, match.group(1))
                return
        await self.litestar(scope, receive, send)

    async def _search(self, scope: Scope, receive: Receive, send: Send, tenant_id: str) -> None:
        api: ApiState = self.litestar.state.api
        started = time.perf_counter()
        caller: Caller | None = None
        try:
            caller = await authenticate(api, _header(scope, b"authorization"))
            check_tenant_access(caller, tenant_id)
            body = await self._body(scope, receive)
            if body is None:
                return  # the client left
            if isinstance(body, _HandOn):
                await self.litestar(scope, body.receive, send)
                return
            request = decode_strict(body, SearchRequest)
            answer = await search(api.router, tenant_id, request, incarnation=caller.incarnation)
            status, content_type, content = 200, _JSON, _encode(answer)
            headers: dict[str, str] = {}
        except TenantvecError as exc:
            status, content_type, content, headers = _problem(
                error_problem(exc, "POST", scope["path"])
            )
        except Exception:
            status, content_type, content, headers = _problem(
                unexpected_problem("POST", scope["path"])
            )
        raw_headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(content))]
        raw_headers += [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ]
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": status,
            "headers": raw_headers,
        }
        await send(start)
        last: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": content,
            "more_body": False,
        }
        await send(last)
        seconds = time.perf_counter() - started
        api.metrics.record(_ROUTE, status, seconds, caller=caller, tenant=tenant_id)

    async def _body(self, scope: Scope, receive: Receive) -> bytes | _HandOn | None:
        """The whole body; or, for a body Litestar answers itself (empty, too large), what
        to hand on; or None when the client disconnected."""
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            return _HandOn([], more=True, receive=receive)
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return None  # http.disconnect
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
            if size > self._max_body:
                return _HandOn(chunks, more=more, receive=receive)
        if size == 0:
            return _HandOn(chunks, more=False, receive=receive)
        return b"".join(chunks)


class _HandOn:
    """A request for Litestar to answer: the body read so far played back first."""

    def __init__(self, chunks: list[bytes], *, more: bool, receive: Receive) -> None:
        self._pending: HTTPRequestEvent | None = {
            "type": "http.request",
            "body": b"".join(chunks),
            "more_body": more,
        }
        self._receive = receive

    async def receive(self) -> ReceiveMessage:
        if self._pending is not None:
            message, self._pending = self._pending, None
            return message
        return await self._receive()


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lowercase), as Litestar's ``headers.get``."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _problem(problem: Problem) -> tuple[int, bytes, bytes, dict[str, str]]:
    return problem.status, PROBLEM_JSON.encode(), _encode(problem.body), problem.headers
