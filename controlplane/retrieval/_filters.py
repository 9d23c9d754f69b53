"""The metadata filter language, compiled to one condition Postgres can use an index for.

A filter is a JSON object over a chunk's metadata, in the operators other vector stores
use (Pinecone, Chroma, Qdrant, LangChain's PGVector)::

    {"lang": "en"}                                   equality (also {"lang": {"$eq": "en"}})
    {"year": {"$gte": 2020, "$lt": 2025}}            $gt $gte $lt $lte $ne
    {"lang": {"$in": ["en", "de"]}}                  $in $nin
    {"draft": {"$exists": false}}                    $exists
    {"$or": [{"lang": "en"}, {"tags": "faq"}]}       $and $or $not

Fields are top-level metadata keys, taken literally ("a.b" is the key ``a.b``); an array
field matches when any element does (``{"tags": "faq"}`` matches ``["faq", "billing"]``).
``$ne`` and ``$nin`` match chunks without the field. Comparisons hold between values of
one type (a number is never greater than a string).

A filter without operators -- plain keys and values -- keeps its meaning from before the
operators (JSON containment, ``metadata @> filter``: nested objects and arrays too). One
with operators compiles to a SQL/JSON path predicate, ``metadata @@ jsonpath``. Both are
answered by the tenant's ``jsonb_path_ops`` GIN index on ``metadata`` for their equality
parts. Values are written into the path as JSON literals (``json.dumps``: quoted and
escaped) and the path travels as a bound parameter, so nothing a caller sends becomes
SQL or path syntax. A bad filter is InvalidRequest naming the operator.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from controlplane.errors import InvalidRequest

__all__ = ["OPERATORS", "CompiledFilter", "compile_filter"]

_COMPARE = {"$eq": "==", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_FIELD_OPS = {*_COMPARE, "$in", "$nin", "$exists"}
_LOGIC = {"$and", "$or", "$not"}
OPERATORS = tuple(sorted(_FIELD_OPS | _LOGIC))
_MAX_DEPTH = 16
_MAX_TERMS = 256


@dataclass(frozen=True)
class CompiledFilter:
    kind: Literal["containment", "jsonpath"]
    value: Any  # the containment object, or the jsonpath text


def compile_filter(spec: Any) -> CompiledFilter:
    """``spec`` as the condition a query uses; InvalidRequest if it is not a filter."""
    if not isinstance(spec, dict):
        raise InvalidRequest("filter must be a JSON object")
    if not _has_operator(spec, 0):
        return CompiledFilter("containment", spec)
    compiler = _Compiler()
    return CompiledFilter("jsonpath", compiler.conjunction(spec, 0, positive=True))


def _has_operator(node: Any, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        raise InvalidRequest(f"filter: nested deeper than {_MAX_DEPTH} levels")
    if isinstance(node, dict):
        return any(
            (isinstance(key, str) and key.startswith("$")) or _has_operator(value, depth + 1)
            for key, value in node.items()
        )
    if isinstance(node, list):
        return any(_has_operator(item, depth + 1) for item in node)
    return False


class _Compiler:
    def __init__(self) -> None:
        self.terms = 0

    # ``positive``: no $not above. There a comparison may be written plainly
    # ($."lang" == "en"), which the GIN index can answer: a comparison between different
    # types is "unknown" in SQL/JSON path, and with no negation above, unknown ends up
    # as not matching, as it should. Under a $not every comparison is written exactly
    # (exists(... ? (...)): true or false, never unknown), so negating it is exact.

    def conjunction(self, node: Any, depth: int, *, positive: bool) -> str:
        """An object of field conditions and logical operators, all of which must hold."""
        if not isinstance(node, dict) or not node:
            raise InvalidRequest("filter: each condition must be a non-empty JSON object")
        self._deeper(depth)
        parts = [self.entry(key, value, depth, positive) for key, value in node.items()]
        return parts[0] if len(parts) == 1 else "(" + " && ".join(parts) + ")"

    def entry(self, key: str, value: Any, depth: int, positive: bool) -> str:
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise InvalidRequest(f"filter: {key} takes a non-empty list of conditions")
            joined = (" && " if key == "$and" else " || ").join(
                self.conjunction(item, depth + 1, positive=positive) for item in value
            )
            return f"({joined})"
        if key == "$not":
            return f"!({self.conjunction(value, depth + 1, positive=False)})"
        if key.startswith("$"):
            raise InvalidRequest(f"filter: unknown operator {key!r} (use {', '.join(OPERATORS)})")
        path = "$." + _literal(key)
        ops = value if isinstance(value, dict) and any(k.startswith("$") for k in value) else None
        return self.field(path, key, ops if ops is not None else {"$eq": value}, positive)

    def field(self, path: str, key: str, ops: dict[str, Any], positive: bool) -> str:
        parts = []
        for op, value in ops.items():
            if op not in _FIELD_OPS:
                hint = f"; {op} applies to conditions, not to a field" if op in _LOGIC else ""
                raise InvalidRequest(
                    f"filter: unknown operator {op!r} on {key!r} "
                    f"(use {', '.join(sorted(_FIELD_OPS))}){hint}"
                )
            if op == "$exists":
                if not isinstance(value, bool):
                    raise InvalidRequest(f"filter: $exists on {key!r} takes true or false")
                self._count()
                parts.append(f"exists({path})" if value else f"!exists({path})")
            elif op in ("$in", "$nin"):
                if not isinstance(value, list) or not value:
                    raise InvalidRequest(f"filter: {op} on {key!r} takes a non-empty list")
                tests = [self.test("$eq", item, key) for item in value]
                if positive and op == "$in":
                    parts.append("(" + " || ".join(path + t[1:] for t in tests) + ")")
                else:
                    parts.append(_some(path, " || ".join(tests), negate=op == "$nin"))
            elif positive and op != "$ne":
                parts.append(path + self.test(op, value, key)[1:])  # $."k" == "v"
            else:
                parts.append(_some(path, self.test(op, value, key), negate=op == "$ne"))
        return parts[0] if len(parts) == 1 else "(" + " && ".join(parts) + ")"

    def test(self, op: str, value: Any, key: str) -> str:
        """``@ <op> value`` for a filter expression (``$ne`` tests equality: the caller
        negates the whole)."""
        self._count()
        if isinstance(value, bool) or value is None:
            if op not in ("$eq", "$ne"):
                raise InvalidRequest(f"filter: {op} on {key!r} compares numbers or strings")
        elif isinstance(value, int | float):
            if not math.isfinite(value):
                raise InvalidRequest(f"filter: {op} on {key!r}: numbers must be finite")
        elif not isinstance(value, str):
            raise InvalidRequest(
                f"filter: {op} on {key!r} takes a string, number, boolean or null "
                "(objects and lists only as plain containment filters, without operators)"
            )
        return f"@ {_COMPARE['$eq' if op == '$ne' else op]} {_literal(value)}"

    def _count(self) -> None:
        self.terms += 1
        if self.terms > _MAX_TERMS:
            raise InvalidRequest(f"filter: more than {_MAX_TERMS} conditions")

    def _deeper(self, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise InvalidRequest(f"filter: nested deeper than {_MAX_DEPTH} levels")


def _some(path: str, test: str, *, negate: bool) -> str:
    """Whether some value of the field (each element, when it holds an array) passes
    ``test``. A filter expression counts a comparison between different types as not
    passing, so this is always true or false, and its negation is exact."""
    found = f"exists({path} ? ({test}))"
    return f"!{found}" if negate else found


def _literal(value: Any) -> str:
    """A JSON value as a SQL/JSON path literal: strings quoted and escaped (ASCII only,
    \\uXXXX beyond), numbers as JSON writes them, true/false/null."""
    if isinstance(value, str) and "\x00" in value:
        raise InvalidRequest("filter: strings cannot hold NUL bytes")
    return json.dumps(value, ensure_ascii=True, allow_nan=False)
