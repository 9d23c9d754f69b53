"""The Neon API's failures, as tenantvec tells them apart.

neon-api's ``NeonAPIError`` keeps only the body text; :class:`NeonHTTPError` keeps the
status, Neon's message and ``Retry-After`` so that callers can decide: retry (423, 429,
5xx), not there (404), give up (other 4xx). At the client's boundary they become errors
of tenantvec's one tree (:func:`translate`).
"""

from __future__ import annotations

import requests

from controlplane.errors import (
    BackendUnavailable,
    ConfigurationError,
    ProvisioningError,
    TenantvecError,
)

__all__ = ["NeonHTTPError", "NeonOutcomeUnknown", "http_error", "translate"]


class NeonHTTPError(Exception):
    """A non-2xx answer, with what neon-api's NeonAPIError leaves out."""

    def __init__(
        self, method: str, path: str, status: int, message: str, retry_after: float | None
    ) -> None:
        super().__init__(f"Neon API {method} {path}: {status} {message}")
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        return self.status in (423, 429) or self.status >= 500


class NeonOutcomeUnknown(BackendUnavailable):
    """A create may or may not have happened (5xx or timeout after sending it).

    Transient: retrying the *step* -- look for the object by name, create it if
    absent -- is safe; resending the same POST is not.
    """


def http_error(
    method: str, path: str, response: requests.Response | None, body: str
) -> NeonHTTPError:
    status = response.status_code if response is not None else 0
    message = body.strip()[:300] or "(empty body)"
    try:
        parsed = response.json() if response is not None else None
        if isinstance(parsed, dict) and parsed.get("message"):
            message = str(parsed["message"])
    except ValueError:
        pass
    retry_after: float | None = None
    if response is not None and response.headers.get("Retry-After"):
        try:
            retry_after = float(response.headers["Retry-After"])
        except ValueError:
            retry_after = None
    return NeonHTTPError(method, path, status, message, retry_after)


def translate(exc: NeonHTTPError, idempotent: bool) -> TenantvecError:
    if exc.status in (401, 403):
        return ConfigurationError(
            f"Neon refused the API key ({exc.status}): {exc.message}; check "
            "TENANTVEC_NEON_API_KEY and its organization"
        )
    if exc.status in (423, 429):
        return BackendUnavailable(f"{exc} (still refused after retrying)")
    if exc.status >= 500 or exc.status == 0:
        if not idempotent:
            return NeonOutcomeUnknown(f"{exc}; the request may or may not have taken effect")
        return BackendUnavailable(str(exc))
    return ProvisioningError(str(exc))
