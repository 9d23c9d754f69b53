"""A faithful fake of the OpenAI (and Voyage) embeddings API: a real HTTP server on loopback.

It speaks the wire format of ``POST /v1/embeddings``: bearer keys (401 with OpenAI's
error body, echoing the key half-masked the way OpenAI does), ``input`` as a string or
list, ``dimensions`` (OpenAI) and ``input_type`` / ``output_dimension`` (Voyage), the
batch-size limit (400), and answers ``{"object": "list", "data": [{"object":
"embedding", "index": i, "embedding": [...]}], "model": ..., "usage": {...}}``.

Tests queue faults that the next requests meet, in order: an HTTP status (429 with a
Retry-After header, 500, ...), a delay longer than the client's timeout, an answer with
the wrong number of dimensions or a NaN. Vectors are deterministic per (model, text):
a unit vector seeded from a hash of both. Start one by hand for local trials::

    python -m tests.fakes.embeddings --port 8099
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.http import LoopbackService, send_json

__all__ = ["Fault", "FakeEmbeddings", "fake_vector"]

MAX_INPUTS = 2048


def fake_vector(model: str, text: str, dims: int) -> list[float]:
    seed = hashlib.sha256(f"{model}\x00{text}".encode()).digest()
    rng = random.Random(seed)
    values = [rng.gauss(0, 1) for _ in range(dims)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


@dataclass
class Fault:
    """What the next request meets instead of a normal answer."""

    status: int | None = None  # answer with this status and an error body
    retry_after: str | None = None  # the Retry-After header to send with it
    delay: float = 0.0  # sleep this long first (past the client's timeout: a timeout)
    dims: int | None = None  # answer with vectors of this length
    nan: bool = False  # put a NaN in the first vector


@dataclass
class Call:
    path: str
    body: dict[str, Any]
    authorization: str | None


@dataclass
class FakeEmbeddings(LoopbackService):
    api_key: str | None = "sk-test-0123456789abcdefghij"
    native_dims: int = 8  # dims of a model that is not asked for others
    calls: list[Call] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"{self.origin}/v1"

    def fail_next(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def texts_embedded(self) -> list[str]:
        return [t for c in self.calls if c.body.get("input") for t in _inputs(c.body)]

    def _handle(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        if not handler.path.endswith("/embeddings"):
            return send_json(handler, 404, _error("Not found", "invalid_request_error"))
        try:
            body = json.loads(raw)
        except ValueError:
            return send_json(
                handler, 400, _error("We could not parse the JSON body", "invalid_request_error")
            )
        auth = handler.headers.get("Authorization")
        with self._lock:
            self.calls.append(Call(handler.path, body, auth))
            fault = self.faults.popleft() if self.faults else Fault()
        if fault.delay:
            time.sleep(fault.delay)
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            given = (auth or "").removeprefix("Bearer ")
            masked = f"{given[:3]}*****{given[-4:]}" if given else ""
            return send_json(
                handler,
                401,
                _error(
                    f"Incorrect API key provided: {masked}. You can find your API key in "
                    "your account settings.",
                    "invalid_request_error",
                    code="invalid_api_key",
                ),
            )
        if fault.status is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            kind = "rate_limit_exceeded" if fault.status == 429 else "server_error"
            return send_json(handler, fault.status, _error(f"fault {fault.status}", kind), headers)
        inputs = _inputs(body)
        if not inputs or not body.get("model"):
            return send_json(
                handler, 400, _error("'input' and 'model' are required", "invalid_request_error")
            )
        if len(inputs) > MAX_INPUTS:
            return send_json(
                handler,
                400,
                _error(f"'input' must have at most {MAX_INPUTS} items", "invalid_request_error"),
            )
        model = str(body["model"])
        dims = body.get("dimensions") or body.get("output_dimension") or self.native_dims
        if fault.dims is not None:
            dims = fault.dims
        data = []
        for i, text in enumerate(inputs):
            vector = fake_vector(model, text, int(dims))
            if fault.nan and i == 0:
                vector[0] = math.nan
            data.append({"object": "embedding", "index": i, "embedding": vector})
        tokens = sum(len(t.split()) for t in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        if "input_type" in body:  # Voyage's answer has no prompt_tokens
            usage = {"total_tokens": tokens}
        send_json(handler, 200, {"object": "list", "data": data, "model": model, "usage": usage})


def _inputs(body: dict[str, Any]) -> list[str]:
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--key", default=None, help="Require this bearer key.")
    parser.add_argument("--dims", type=int, default=8, help="Native dimensions of every model.")
    args = parser.parse_args()
    fake = FakeEmbeddings(api_key=args.key, native_dims=args.dims).start(args.port)
    print(f"fake embeddings API on {fake.url} (POST /embeddings); Ctrl-C stops it")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
