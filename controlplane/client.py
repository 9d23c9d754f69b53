"""A small async client for the tenantvec HTTP API (used by ``tenantctl --api`` and the demo).

It speaks the API's shapes and turns its problem+json answers back into the library's
errors -- the one place httpx errors become ours -- so a script sees the same
``TenantNotFound`` whether it went through HTTP or the library.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx
import msgspec

from controlplane.errors import BackendUnavailable, OverCapacity, TenantvecError
from controlplane.httpstatus import error_class_for
from controlplane.retrieval.models import SearchRequest, SearchResponse, UpsertRequest

__all__ = ["ApiClient"]


class ApiClient:
    """``async with ApiClient(url, token) as api: await api.search(...)``."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        content = msgspec.json.encode(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            response = await self._http.request(method, path, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"the API at {self._base_url} is unreachable: {exc.__class__.__name__}"
            ) from None
        if response.status_code >= 400:
            raise _error(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def create_tenant(self, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", "/v1/tenants", options)
        return result

    async def create_key(self, tenant_id: str, name: str | None = None) -> dict[str, Any]:
        body = {"name": name} if name else None
        result: dict[str, Any] = await self.request("POST", f"/v1/tenants/{tenant_id}/keys", body)
        return result

    async def upsert(self, tenant_id: str, request: UpsertRequest) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "PUT", f"/v1/tenants/{tenant_id}/documents", request
        )
        return result

    async def search(self, tenant_id: str, request: SearchRequest) -> SearchResponse:
        data = await self.request("POST", f"/v1/tenants/{tenant_id}/search", request)
        return msgspec.convert(data, SearchResponse)


def _error(response: httpx.Response) -> TenantvecError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = str(body.get("detail") or response.reason_phrase or f"HTTP {response.status_code}")
    cls = error_class_for(response.status_code, body.get("code"))
    if cls is OverCapacity:
        retry = response.headers.get("Retry-After")
        return OverCapacity(detail, retry_after=float(retry) if retry else None)
    return cls(detail)
