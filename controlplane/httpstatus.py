"""The one table between the error tree and HTTP statuses, read in both directions.

The API answers an error with :func:`status_for`; the client turns a status back into
the error class with :func:`error_class_for`, so a caller of either sees the same tree.
"""

from __future__ import annotations

import math

from controlplane.errors import (
    AuthenticationFailed,
    BackendUnavailable,
    Conflict,
    EmbedderUnavailable,
    EmbeddingFailed,
    InvalidRequest,
    MigrationError,
    NotFound,
    OverCapacity,
    PermissionDenied,
    ProvisioningError,
    TenantvecError,
)

__all__ = ["error_class_for", "parse_retry_after", "status_for"]

# Most specific first: the first class an error is an instance of decides.
_TABLE: list[tuple[type[TenantvecError], int]] = [
    (InvalidRequest, 400),
    (AuthenticationFailed, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (OverCapacity, 503),
    (BackendUnavailable, 503),
    (ProvisioningError, 502),
    (EmbeddingFailed, 502),
    (MigrationError, 502),
]


def status_for(exc: TenantvecError) -> int:
    for cls, status in _TABLE:
        if isinstance(exc, cls):
            return status
    return 500


def error_class_for(status: int, code: str | None = None) -> type[TenantvecError]:
    """The error class for an HTTP error status (``code``: the problem's code member)."""
    if status == 503:
        if code == "over_capacity":
            return OverCapacity
        return EmbedderUnavailable if code == "embedder_unavailable" else BackendUnavailable
    if status == 502 and code == "embedding_failed":
        return EmbeddingFailed
    if status == 413:
        return InvalidRequest
    for cls, known in _TABLE:
        if known == status:
            return cls
    return TenantvecError


def parse_retry_after(value: str | None, *, most: float | None = None) -> float | None:
    """A ``Retry-After`` header in seconds (an HTTP date is not worth a guess): None if
    absent, unreadable, negative or not finite; at most ``most`` when given."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds if most is None else min(seconds, most)
