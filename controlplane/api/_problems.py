"""The one place HTTP statuses are derived from errors: RFC 9457 problem details.

Every error response is ``application/problem+json``::

    {"type": "about:blank", "title": "Not Found", "status": 404,
     "detail": "tenant 'acme' not found", "code": "tenant_not_found"}

``detail`` is the library's message, written for the person reading it; ``code`` is
stable for programs. Unexpected errors are logged with a traceback and answered with
a generic 500 that reveals nothing of the internals.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from controlplane.errors import TenantUnavailable, TenantvecError
from controlplane.httpstatus import status_for

__all__ = [
    "BODY_TOO_LARGE",
    "PROBLEM_JSON",
    "Problem",
    "error_problem",
    "exception_handlers",
    "problem",
    "unexpected_problem",
]

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


BODY_TOO_LARGE = "request body is larger than TENANTVEC_MAX_BODY_BYTES allows; send smaller batches"


@dataclass(frozen=True)
class Problem:
    """One error answer: its status, its RFC 9457 body, the headers that go with it."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, status: int, detail: str, *, code: str, headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> Problem:  # fmt: skip
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
            "code": code,
            **extra,
        }
        return cls(status, body, dict(headers or {}))

    def response(self) -> Response[dict[str, Any]]:
        return Response(
            self.body, status_code=self.status, media_type=PROBLEM_JSON, headers=self.headers
        )


def problem(
    status: int,
    detail: str,
    *,
    code: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    return Problem.of(status, detail, code=code, headers=headers, **extra).response()


def _code(exc: BaseException) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def error_problem(exc: TenantvecError, method: str, path: str) -> Problem:
    """The answer to a library error, wherever in the API it was raised."""
    status = status_for(exc)
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="tenantvec"'
    retry_after = getattr(exc, "retry_after", None)
    if status == 503:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after or 1)))
    if isinstance(exc, TenantUnavailable):
        extra = {"tenant": exc.tenant_id, "tenant_state": exc.state}
    if status >= 500:
        logger.warning("%s %s: %s", method, path, exc)
    return Problem.of(status, str(exc), code=_code(exc), headers=headers, **extra)


def unexpected_problem(method: str, path: str) -> Problem:
    """The answer to an error nobody expected: logged with its traceback (call it in the
    ``except``), answered with nothing of the internals."""
    logger.exception("%s %s failed", method, path)
    return Problem.of(500, "internal error; the server log has the details", code="internal_error")


def _tenantvec_error(request: Request[Any, Any, Any], exc: TenantvecError) -> Response[Any]:
    return error_problem(exc, request.method, request.url.path).response()


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    errors = exc.extra if isinstance(exc.extra, list) else []
    messages = [_field_message(e) for e in errors]
    detail = "; ".join(messages) or str(exc.detail)
    return problem(400, f"invalid request: {detail}", code="invalid_request", errors=errors)


def _field_message(error: object) -> str:
    """``key: message`` -- which field is wrong, not only how."""
    if not isinstance(error, dict):
        return str(error)
    message = str(error.get("message", error))
    key = error.get("key")
    if message == "'data'" or (key == "data" and error.get("source") == "body"):
        return "the request needs a JSON body"  # an empty body never reached the decoder
    return f"{key}: {message}" if key and key not in message else message


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    detail = exc.detail
    if status == 413 and "TENANTVEC_" not in (detail or ""):  # Litestar's own limit
        detail = BODY_TOO_LARGE
    elif status == 404 and detail == HTTPStatus.NOT_FOUND.phrase:
        detail = f"no route for {request.url.path}"
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem(status, detail, code=_code(exc), headers=exc.headers)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return unexpected_problem(request.method, request.url.path).response()


exception_handlers: ExceptionHandlersMap = {
    TenantvecError: _tenantvec_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
