"""What the sync and the async client share: settings, encoding a call, reading an answer."""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
import msgspec

from controlplane.client._calls import Call
from controlplane.client._errors import error_from
from controlplane.errors import BackendUnavailable, InvalidRequest

__all__ = ["DEFAULT_RETRY_SECONDS", "encode", "read", "unreachable"]

T = TypeVar("T")

DEFAULT_RETRY_SECONDS = 10.0


def encode(call: Call[Any]) -> tuple[bytes | None, dict[str, str]]:
    """The call's body as JSON, and the headers that go with it."""
    if call.body is None:
        return None, {}
    if isinstance(call.body, bytes):  # a backup file
        return call.body, {"Content-Type": "application/x-tar"}
    try:
        content = msgspec.json.encode(call.body)
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidRequest(f"{call.method} {call.path}: the body is not JSON: {exc}") from None
    return content, {"Content-Type": "application/json"}


def read(call: Call[T], response: httpx.Response) -> T:
    """The answer as the call's type, or the library error it stands for."""
    if response.status_code >= 400:
        raise error_from(response, tenant_id=call.tenant_id)
    if response.status_code == 204 or not response.content:
        return call.read(None)
    if response.headers.get("content-type", "").startswith(
        ("application/json", "application/problem+json")
    ):
        return call.read(msgspec.json.decode(response.content))
    if response.headers.get("content-type", "").startswith("application/x-tar"):
        return call.read(response.content)
    return call.read(response.text)


def unreachable(base_url: str, exc: httpx.HTTPError) -> BackendUnavailable:
    return BackendUnavailable(f"the API at {base_url} is unreachable: {type(exc).__name__}")


def headers(token: str | None) -> dict[str, str]:
    found = {"User-Agent": "tenantvec-client", "Accept": "application/json"}
    if token:
        found["Authorization"] = f"Bearer {token}"
    return found
