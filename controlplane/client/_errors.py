"""An API error answer back into the library's own error: the same class, the same words.

The API answers every error as problem+json with a ``code`` -- the error class's name in
snake case (``tenant_not_found``) -- and ``detail``, the library's message. The client
finds the class by that code among the library's errors, so ``except TenantNotFound``
works the same through HTTP as in-process; an unknown code (a newer server) falls back
to the class the status stands for (``httpstatus.error_class_for``). ``retry_after``
comes from the ``Retry-After`` header.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import httpx

from controlplane import errors
from controlplane.errors import TenantvecError
from controlplane.httpstatus import error_class_for, parse_retry_after

__all__ = ["error_from", "error_code"]


def error_code(cls: type[BaseException]) -> str:
    """The problem ``code`` the API gives an error class: its name in snake case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


@functools.cache
def _classes() -> dict[str, type[TenantvecError]]:
    found: dict[str, type[TenantvecError]] = {}
    pending: list[type[TenantvecError]] = [TenantvecError]
    while pending:
        cls = pending.pop()
        if cls.__module__ == errors.__name__:
            found[error_code(cls)] = cls
        pending.extend(cls.__subclasses__())
    return found


def error_from(response: httpx.Response, *, tenant_id: str | None = None) -> TenantvecError:
    """The library error an error answer stands for."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    problem = body if isinstance(body, dict) else {}
    detail = problem.get("detail")
    if not isinstance(detail, str) or not detail:
        detail = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    code = problem.get("code")
    cls = _classes().get(code) if isinstance(code, str) else None
    if cls is None or not _fits(cls, response.status_code):
        cls = error_class_for(response.status_code, code if isinstance(code, str) else None)
    # Made without the class's own constructor (which builds the message from its
    # arguments): the server's message is the message.
    exc = cls.__new__(cls)
    Exception.__init__(exc, detail)
    exc.retry_after = parse_retry_after(response.headers.get("Retry-After"))  # type: ignore[attr-defined]
    exc.status = response.status_code  # type: ignore[attr-defined]
    exc.problem = problem  # type: ignore[attr-defined]
    tenant = problem.get("tenant") or tenant_id
    if tenant is not None:
        exc.tenant_id = tenant  # type: ignore[attr-defined]
    if "tenant_state" in problem:
        exc.state = problem["tenant_state"]  # type: ignore[attr-defined]
    exc.lost = False  # type: ignore[attr-defined]
    return exc


def _fits(cls: type[TenantvecError], status: int) -> bool:
    """A code names a class only if the status agrees (a 404 is never OverCapacity)."""
    expected = error_class_for(status)
    return issubclass(cls, expected) or expected is TenantvecError or status in (413, 503, 502)
