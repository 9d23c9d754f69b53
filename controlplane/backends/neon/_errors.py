"""The Neon API's failures, as tenantvec tells them apart.

:class:`NeonHTTPError` keeps the status, Neon's message and ``Retry-After`` of a non-2xx
answer; :func:`translate` turns it into an error of tenantvec's one tree, saying what
Neon's API description says about trying again: 423 Locked and 429 are refusals
(nothing happened) and 503 is always safe to retry -- :class:`NeonRefused`, with the
wait Neon asked for; other 5xx are transient for a GET and of unknown outcome for a
mutation (:class:`NeonOutcomeUnknown`); 401/403 are a configuration error; any other
4xx is permanent.
"""

from __future__ import annotations

import httpx

from controlplane.errors import (
    BackendUnavailable,
    ConfigurationError,
    ProvisioningError,
    TenantvecError,
)
from controlplane.httpstatus import parse_retry_after

__all__ = ["NeonHTTPError", "NeonOutcomeUnknown", "NeonRefused", "http_error", "translate"]

_MAX_RETRY_AFTER = 60.0  # a Retry-After beyond this is taken as this (one minute window)


class NeonHTTPError(Exception):
    """A non-2xx answer of the Neon API."""

    def __init__(
        self, method: str, path: str, status: int, message: str, retry_after: float | None
    ) -> None:
        super().__init__(f"Neon API {method} {path}: {status} {message}")
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        self.retry_after = retry_after


class NeonRefused(BackendUnavailable):
    """Neon refused for now (423 Locked, 429, 503): nothing happened, try again after
    ``retry_after`` seconds (Neon's Retry-After, when it sent one)."""

    def __init__(self, message: str, *, status: int, retry_after: float | None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class NeonOutcomeUnknown(BackendUnavailable):
    """A mutation may or may not have happened (5xx or timeout after sending it).

    Transient: retrying the *step* -- look for the object by name, create it if
    absent -- is safe; resending the same request is not.
    """


def http_error(method: str, path: str, response: httpx.Response) -> NeonHTTPError:
    message = response.text.strip()[:300] or "(empty body)"
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str) and parsed["message"]:
        message = parsed["message"][:300]
    return NeonHTTPError(
        method,
        path,
        response.status_code,
        message,
        parse_retry_after(response.headers.get("Retry-After"), most=_MAX_RETRY_AFTER),
    )


def translate(exc: NeonHTTPError, *, idempotent: bool) -> TenantvecError:
    if exc.status in (401, 403):
        return ConfigurationError(
            f"Neon refused the API key ({exc.status}): {exc.message}; check "
            "TENANTVEC_NEON_API_KEY and its organization"
        )
    if exc.status in (423, 429, 503):
        return NeonRefused(str(exc), status=exc.status, retry_after=exc.retry_after)
    if exc.status >= 500:
        if not idempotent:
            return NeonOutcomeUnknown(f"{exc}; the request may or may not have taken effect")
        return BackendUnavailable(str(exc))
    return ProvisioningError(str(exc))
