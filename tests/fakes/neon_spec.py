"""Neon's published OpenAPI document (vendored, see ``neon_openapi/ORIGIN.md``) as a
checker of answers: is this status, and this body, what the spec says the operation
answers?

OpenAPI 3.0 schemas are JSON Schema draft 4 plus ``nullable``; the document is turned
into plain draft 4 once (``nullable: true`` becomes a ``null`` alternative) and every
``$ref`` resolves inside it. Formats (``uuid``, ``date-time``) are not asserted, as
JSON Schema validators do not by default; everything else is: types, required members,
enums, patterns, lengths and ranges.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

__all__ = ["SPEC_FILE", "Answer", "NeonSpec"]

SPEC_FILE = Path(__file__).parent / "neon_openapi" / "public-v2-for-users.gen.yaml"
_ROOT = "urn:neon-api-v2"
_METHODS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Answer:
    """One answer of an API, as a checker needs it."""

    method: str
    path: str  # below the API root, without a leading '/': "projects/x/branches"
    status: int
    body: Any  # the decoded JSON, or None for an empty body
    content_type: str | None


@dataclass(frozen=True)
class _Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    literal_segments: int
    responses: dict[str, Any]
    pointer: str  # JSON pointer of the operation in the document


class NeonSpec:
    """``NeonSpec.load().problems(answer)``: what in ``answer`` the spec does not allow."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = _draft4(document)
        self._registry: Registry[Any] = Registry().with_resource(
            _ROOT, Resource.from_contents(self.document, default_specification=DRAFT4)
        )
        self._operations = sorted(
            (
                _Operation(
                    method=method.upper(),
                    template=template,
                    pattern=re.compile(
                        re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template.lstrip("/")))
                    ),
                    literal_segments=sum(1 for s in template.split("/") if s and "{" not in s),
                    responses=item[method]["responses"],
                    pointer=f"/paths/{_escape(template)}/{method}",
                )
                for template, item in self.document["paths"].items()
                for method in _METHODS
                if method in item
            ),
            key=lambda op: -op.literal_segments,  # /projects/x/branches before /projects/{id}
        )
        self._validators: dict[str, Draft4Validator] = {}

    @classmethod
    @functools.cache
    def load(cls) -> NeonSpec:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        with SPEC_FILE.open() as fh:
            return cls(yaml.load(fh, Loader=loader))  # noqa: S506 -- a safe loader

    @property
    def version(self) -> str:
        return str(self.document["info"]["version"])

    def operation(self, method: str, path: str) -> str | None:
        """The spec's ``METHOD /template`` that ``path`` is an instance of, if any."""
        op = self._find(method, path)
        return None if op is None else f"{op.method} {op.template}"

    def problems(self, answer: Answer) -> list[str]:
        where = f"{answer.method} /{answer.path} -> {answer.status}"
        op = self._find(answer.method, answer.path)
        if op is None:
            return [f"{where}: no such operation in Neon's API"]
        key = str(answer.status)
        if key not in op.responses:
            if "default" not in op.responses:
                return [f"{where}: {op.template} documents no {answer.status} answer"]
            key = "default"
        response, pointer = op.responses[key], f"{op.pointer}/responses/{_escape(key)}"
        while "$ref" in response:  # a shared answer: #/components/responses/...
            pointer = response["$ref"].removeprefix("#")
            response = self._at(pointer)
        content = response.get("content") or {}
        if not content:
            if answer.body is not None:
                return [f"{where}: the spec answers no body here, the fake sent one"]
            return []
        if answer.body is None:
            return [f"{where}: the spec answers a body here, the fake sent none"]
        if answer.content_type is None or not answer.content_type.startswith("application/json"):
            return [f"{where}: Content-Type {answer.content_type!r}, not application/json"]
        pointer = f"{pointer}/content/application~1json/schema"
        return [
            f"{where}: at {'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in self._validator(pointer).iter_errors(answer.body)
        ]

    def _find(self, method: str, path: str) -> _Operation | None:
        path = path.strip("/")
        for op in self._operations:
            if op.method == method.upper() and op.pattern.fullmatch(path):
                return op
        return None

    def _at(self, pointer: str) -> Any:
        node: Any = self.document
        for token in pointer.strip("/").split("/"):
            node = node[token.replace("~1", "/").replace("~0", "~")]
        return node

    def _validator(self, pointer: str) -> Draft4Validator:
        validator = self._validators.get(pointer)
        if validator is None:
            validator = self._validators[pointer] = Draft4Validator(
                {"$ref": f"{_ROOT}#{pointer}"}, registry=self._registry
            )
        return validator


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _draft4(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable`` as draft 4 says it, keys as JSON has them (YAML reads
    ``200:`` as a number); everything else as it is."""
    if isinstance(node, list):
        return [_draft4(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {str(key): _draft4(value) for key, value in node.items()}
    if converted.pop("nullable", False) is True:
        if "type" in converted:
            types = (
                converted["type"] if isinstance(converted["type"], list) else [converted["type"]]
            )
            converted["type"] = [*types, "null"]
            if "enum" in converted:
                converted["enum"] = [*converted["enum"], None]
        else:
            return {"anyOf": [converted, {"type": "null"}]}
    return converted


def main() -> None:
    """``python -m tests.fakes.neon_spec METHOD PATH STATUS < body.json``: check one."""
    import sys

    method, path, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
    raw = sys.stdin.read()
    body = json.loads(raw) if raw.strip() else None
    found = NeonSpec.load().problems(Answer(method, path, status, body, "application/json"))
    print("\n".join(found) or "conforms")
    raise SystemExit(1 if found else 0)


if __name__ == "__main__":
    main()
