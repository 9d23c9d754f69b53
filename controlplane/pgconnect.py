"""Control-plane connections to Postgres, and the one place psycopg errors become ours.

Provisioning, migrations and server checks connect through :func:`connect`. Errors that
may pass (unreachable server, too many connections, deadlocks, lock timeouts, a server
starting up or shutting down) become :class:`BackendUnavailable`, which the lifecycle
retries; anything else is a :class:`ProvisioningError` carrying Postgres's own message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg

from controlplane.dsn import ConnInfo
from controlplane.errors import BackendUnavailable, ProvisioningError, TenantvecError

__all__ = [
    "CONTROLPLANE_APPLICATION",
    "PINNED_OPTIONS",
    "ROUTER_APPLICATION",
    "TRANSIENT_SQLSTATES",
    "connect",
    "describe_pg_error",
    "translate_pg_error",
]

# How tenantvec's own sessions name themselves (pg_stat_activity.application_name):
# anything else in a tenant database is a client of its own (see client_sessions).
CONTROLPLANE_APPLICATION = "tenantvec-controlplane"
ROUTER_APPLICATION = "tenantvec-router"
# Every control-plane session names tenantvec's tables unqualified and calls built-in
# functions: its search_path is fixed at connection time (pg_catalog first, implicitly,
# then public, which only the service role may create in), above anything a database
# or role setting says.
PINNED_OPTIONS = "-c search_path=public"

TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available
        "55006",  # object_in_use (e.g. template busy during CREATE DATABASE)
        "53300",  # too_many_connections
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up)
    }
)


def translate_pg_error(exc: psycopg.Error, where: str) -> TenantvecError:
    """Our error for a psycopg error raised while talking to ``where`` (a server name)."""
    sqlstate = exc.sqlstate or ""
    reason = describe_pg_error(exc)
    if (
        isinstance(exc, psycopg.OperationalError)
        and not sqlstate
        or (sqlstate in TRANSIENT_SQLSTATES or sqlstate.startswith("08"))
    ):
        return BackendUnavailable(f"{where}: {reason}")
    return ProvisioningError(f"{where}: {reason}")


@asynccontextmanager
async def connect(
    conninfo: ConnInfo,
    *,
    where: str,
    timeout: int,
    autocommit: bool = True,
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An open connection; closed on exit; psycopg errors inside are translated."""
    try:
        conn = await psycopg.AsyncConnection.connect(
            conninfo.dsn,
            autocommit=autocommit,
            connect_timeout=timeout,
            application_name=CONTROLPLANE_APPLICATION,
            options=PINNED_OPTIONS,
        )
    except psycopg.OperationalError as exc:
        raise _unreachable(conninfo, where, exc) from None
    try:
        async with conn:
            yield conn
    except psycopg.Error as exc:
        raise translate_pg_error(exc, where) from exc


def _unreachable(conninfo: ConnInfo, where: str, exc: psycopg.Error) -> TenantvecError:
    reason = describe_pg_error(exc)
    if "password authentication failed" in reason or "no pg_hba.conf entry" in reason:
        # Wrong credentials will not fix themselves: do not retry.
        return ProvisioningError(f"{where}: {reason}")
    if "does not exist" in reason:
        return ProvisioningError(f"{where}: {reason}")
    return BackendUnavailable(f"{where} ({conninfo.host}:{conninfo.port}) is unreachable: {reason}")


def describe_pg_error(exc: BaseException) -> str:
    """Postgres's own one-line message for ``exc`` (never holds a password)."""
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    if primary:
        return str(primary)
    # libpq writes one line per attempt ("connection to server at ... failed: ..."),
    # the last holding the cause, and indents the lines that go on a message ("server
    # closed the connection unexpectedly" + two of guesswork): those are not causes.
    # None of it contains the password.
    lines = [line.strip() for line in str(exc).splitlines() if line[:1] not in ("\t", " ")]
    lines = [line for line in lines if line]
    return lines[-1] if lines else type(exc).__name__
