"""What every value from outside must satisfy before it reaches SQL, a file or a log.

Three kinds of input, three checks:

* **identifiers** (tenant ids, label keys, key ids, server names...) match their pattern
  as a whole string -- ``re.fullmatch``, never ``$``, which also matches before a
  trailing newline: ``"acme\\n"`` is not ``"acme"``;
* **text** (titles, names, search text, label values) holds no NUL -- Postgres cannot
  store one -- and, where it names something (``single_line``), no control character
  at all, so it cannot split a table row or forge a log line;
* **JSON values** (metadata, filters) are bounded: nesting depth, integers a 64-bit
  signed integer holds, finite numbers, no NUL in keys or strings.

Each check raises :class:`InvalidRequest` naming the field, so the caller can fix it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from controlplane.errors import InvalidRequest

# The most chunks a search may ever ask for; TENANTVEC_MAX_K bounds it lower (1000 by
# default). A hybrid search fuses up to 2-4 times as many of each ranking.
K_CEILING = 10_000

__all__ = [
    "MAX_JSON_DEPTH",
    "check_identifier",
    "check_json",
    "check_text",
    "has_control",
    "printable",
]

# Deeper than any metadata a person writes; shallow enough that no recursive walk --
# ours, json's, Postgres's -- comes near its limit.
MAX_JSON_DEPTH = 32
_INT64 = (-(2**63), 2**63 - 1)
# C0 controls, DEL and C1 controls.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NUL = "\x00"
# Keys quoted as they are in a field path ("metadata.lang"); others are escaped.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,40}")


def has_control(text: str) -> bool:
    return _CONTROL_RE.search(text) is not None


def printable(text: str, limit: int = 80) -> str:
    """``text`` as it may be quoted in a message: control characters escaped, cut short."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return repr(shown)


def check_identifier(value: object, pattern: re.Pattern[str], what: str, rule: str) -> str:
    """``value`` if the whole of it matches ``pattern``; else InvalidRequest.

    ``what`` names the thing ("tenant id"), ``rule`` says what is allowed.
    """
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        shown = printable(value) if isinstance(value, str) else type(value).__name__
        raise InvalidRequest(f"invalid {what} {shown}: {rule}")
    return value


def check_text(value: str, where: str, *, single_line: bool = False) -> str:
    """``value`` if it holds no NUL (and, ``single_line``, no control character at all)."""
    if single_line:
        if has_control(value):
            raise InvalidRequest(f"{where} contains a control character (newline, tab, NUL...)")
    elif _NUL in value:
        raise InvalidRequest(f"{where} contains a NUL character")
    return value


def check_json(value: Any, where: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``value`` if it is JSON Postgres stores and every client reads back unchanged."""
    _walk(value, where, max_depth)
    return value


def _walk(value: Any, where: str, depth: int) -> None:
    # bool is an int: test it first.
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if _NUL in value:
            raise InvalidRequest(f"{where} contains a NUL character")
        return
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise InvalidRequest(
                f"{where} is an integer beyond 64 bits; send it as a string or a float"
            )
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequest(f"{where} must be a finite number")
        return
    if depth <= 0:
        raise InvalidRequest(f"{where} is nested more than {MAX_JSON_DEPTH} levels deep")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRequest(f"{where} has a key that is not a string")
            if _NUL in key:
                raise InvalidRequest(f"{where} has a key containing a NUL character")
            shown = f".{key}" if _PLAIN_KEY.fullmatch(key) else f"[{printable(key, 20)}]"
            _walk(item, where + shown, depth - 1)
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _walk(item, f"{where}[{i}]", depth - 1)
        return
    raise InvalidRequest(f"{where} holds a {type(value).__name__}, which is not JSON")
