"""The one place CLI exit codes are derived from the error tree."""

from __future__ import annotations

from controlplane.errors import (
    AuthenticationFailed,
    BackendUnavailable,
    ConfigurationError,
    Conflict,
    InvalidRequest,
    NotFound,
    OverCapacity,
    PermissionDenied,
    TenantvecError,
)

__all__ = ["EXIT_CODES_HELP", "CommandFailed", "exit_code_for"]


class CommandFailed(TenantvecError):
    """The command ran but reports failures (already printed): exit 1, say it once."""


OK = 0
FAILURE = 1  # the request was fine, carrying it out failed
USAGE = 2  # bad arguments or settings: fix the command
NOT_FOUND = 3
CONFLICT = 4  # exists already, busy, wrong state
UNAVAILABLE = 5  # a server is unreachable or full: retry later
DENIED = 6  # the API refused the credentials

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 failure, 2 bad usage or input, 3 not found, "
    "4 conflict (exists, busy, wrong state), 5 unavailable or over capacity (retry later), "
    "6 credentials refused by the API."
)


def exit_code_for(exc: TenantvecError) -> int:
    if isinstance(exc, InvalidRequest | ConfigurationError):
        return USAGE
    if isinstance(exc, AuthenticationFailed | PermissionDenied):
        return DENIED
    if isinstance(exc, NotFound):
        return NOT_FOUND
    if isinstance(exc, Conflict):
        return CONFLICT
    if isinstance(exc, BackendUnavailable | OverCapacity):
        return UNAVAILABLE
    return FAILURE
