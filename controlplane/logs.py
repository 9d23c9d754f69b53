"""Log records that stay one line each, whatever the values in them.

Request paths, tenant ids of refused requests and error messages from outside reach
log messages; a newline or carriage return among them would start a line of the
attacker's choosing in the server log. :class:`SafeFormatter` escapes every control
character of a record's message (``\\n`` becomes ``\\\\n``); a traceback that follows
keeps its lines. The CLI and ``tenantctl serve`` (uvicorn's loggers included) use it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["SafeFormatter", "logging_config"]

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\x{ord(char):02x}")


class SafeFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 -- logging's name
        return _CONTROL_RE.sub(_escape, super().formatMessage(record))


def logging_config(level: str, *, access_log: bool) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the API server: tenantvec's and uvicorn's
    loggers on stderr through :class:`SafeFormatter`."""
    formatter = {"()": SafeFormatter, "fmt": "%(levelname)s %(name)s: %(message)s"}
    handler = {"class": "logging.StreamHandler", "formatter": "safe", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"safe": formatter},
        "handlers": {"stderr": handler},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"level": level},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"level": level if access_log else "WARNING"},
        },
    }
