"""``Client`` (sync) and ``AsyncClient``: every API call, typed, one definition each.

Each method is the call of :mod:`controlplane.client._calls` of the same name, sent:
``client.get_tenant("acme")`` sends ``calls.get_tenant("acme")``. The methods are made
from the calls (``_sync`` / ``_async`` keep their signatures and docstrings), so the two
clients cannot drift apart, from each other or from the API.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from controlplane.client._base import DEFAULT_RETRY_SECONDS, encode, headers, read, unreachable
from controlplane.client._calls import Call, calls
from controlplane.client._retry import RetryBudget
from controlplane.httpstatus import parse_retry_after

__all__ = ["AsyncClient", "Client"]

P = ParamSpec("P")
T = TypeVar("T")


def _sync(build: Callable[P, Call[T]]) -> Callable[Concatenate[Client, P], T]:
    @functools.wraps(build)
    def method(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.send(build(*args, **kwargs))

    return method


def _async(
    build: Callable[P, Call[T]],
) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]]:
    @functools.wraps(build)
    async def method(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.send(build(*args, **kwargs))

    return method


class _Settings:
    def __init__(self, base_url: str, token: str | None, retry_seconds: float) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be http(s)://host[:port], got {base_url!r}")
        if retry_seconds < 0:
            raise ValueError("retry_seconds must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.headers = headers(token)
        self.retry_seconds = retry_seconds

    def http(self, timeout: float) -> dict[str, Any]:
        """What the httpx client is made with."""
        return {"base_url": self.base_url, "headers": self.headers, "timeout": timeout}

    def request(self, call: Call[Any]) -> dict[str, Any]:
        """What ``build_request`` takes for ``call``."""
        content, extra = encode(call)
        return {
            "method": call.method,
            "url": call.path,
            "params": dict(call.params),
            "content": content,
            "headers": extra,
        }


class Client:
    """The tenantvec API, synchronously::

        with Client("http://127.0.0.1:8000", token) as api:
            api.search("acme", SearchRequest(text="refund policy"))

    ``token``: the admin token or a tenant key (``tvk_...``). Errors are the library's
    own (``TenantNotFound``, ``OverCapacity`` with ``retry_after``...); 503s are sent
    again after ``Retry-After`` for up to ``retry_seconds`` (0: never).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._settings = _Settings(base_url, token, retry_seconds)
        self._http = httpx.Client(**self._settings.http(timeout), transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, call: Call[T]) -> T:
        """Send one call (retrying as the class says) and read its answer."""
        request = self._http.build_request(**self._settings.request(call))
        budget = RetryBudget(self._settings.retry_seconds)
        while True:
            try:
                response: httpx.Response | None = self._http.send(request)
            except httpx.HTTPError as exc:
                response, failure = None, exc
            wait = _wait(call, budget, response)
            if wait is None:
                if response is None:
                    raise unreachable(self._settings.base_url, failure) from None
                return read(call, response)
            time.sleep(wait)

    create_tenant = _sync(calls.create_tenant)
    list_tenants = _sync(calls.list_tenants)
    get_tenant = _sync(calls.get_tenant)
    delete_tenant = _sync(calls.delete_tenant)
    suspend_tenant = _sync(calls.suspend_tenant)
    backup_tenant = _sync(calls.backup_tenant)
    restore_tenant = _sync(calls.restore_tenant)
    move_tenant = _sync(calls.move_tenant)
    resume_tenant = _sync(calls.resume_tenant)
    set_limits = _sync(calls.set_limits)
    tune_recall = _sync(calls.tune_recall)
    set_embedder = _sync(calls.set_embedder)
    create_key = _sync(calls.create_key)
    list_keys = _sync(calls.list_keys)
    revoke_key = _sync(calls.revoke_key)
    list_operations = _sync(calls.list_operations)
    upsert = _sync(calls.upsert)
    get_job = _sync(calls.get_job)
    list_jobs = _sync(calls.list_jobs)
    get_document = _sync(calls.get_document)
    delete_document = _sync(calls.delete_document)
    search = _sync(calls.search)
    list_document_ids = _sync(calls.list_document_ids)
    count_documents = _sync(calls.count_documents)
    fetch_documents = _sync(calls.fetch_documents)
    delete_documents = _sync(calls.delete_documents)
    upsert_chunks = _sync(calls.upsert_chunks)
    fetch_chunks = _sync(calls.fetch_chunks)
    delete_chunks = _sync(calls.delete_chunks)
    stats = _sync(calls.stats)
    whoami = _sync(calls.whoami)
    healthz = _sync(calls.healthz)
    readyz = _sync(calls.readyz)
    metrics = _sync(calls.metrics)


class AsyncClient:
    """The tenantvec API, with asyncio: ``async with AsyncClient(url, token) as api:``
    and ``await api.search(...)``; otherwise as :class:`Client`."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = _Settings(base_url, token, retry_seconds)
        self._http = httpx.AsyncClient(**self._settings.http(timeout), transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def send(self, call: Call[T]) -> T:
        """Send one call (retrying as :class:`Client` says) and read its answer."""
        request = self._http.build_request(**self._settings.request(call))
        budget = RetryBudget(self._settings.retry_seconds)
        while True:
            try:
                response: httpx.Response | None = await self._http.send(request)
            except httpx.HTTPError as exc:
                response, failure = None, exc
            wait = _wait(call, budget, response)
            if wait is None:
                if response is None:
                    raise unreachable(self._settings.base_url, failure) from None
                return read(call, response)
            await asyncio.sleep(wait)

    create_tenant = _async(calls.create_tenant)
    list_tenants = _async(calls.list_tenants)
    get_tenant = _async(calls.get_tenant)
    delete_tenant = _async(calls.delete_tenant)
    suspend_tenant = _async(calls.suspend_tenant)
    backup_tenant = _async(calls.backup_tenant)
    restore_tenant = _async(calls.restore_tenant)
    move_tenant = _async(calls.move_tenant)
    resume_tenant = _async(calls.resume_tenant)
    set_limits = _async(calls.set_limits)
    tune_recall = _async(calls.tune_recall)
    set_embedder = _async(calls.set_embedder)
    create_key = _async(calls.create_key)
    list_keys = _async(calls.list_keys)
    revoke_key = _async(calls.revoke_key)
    list_operations = _async(calls.list_operations)
    upsert = _async(calls.upsert)
    get_job = _async(calls.get_job)
    list_jobs = _async(calls.list_jobs)
    get_document = _async(calls.get_document)
    delete_document = _async(calls.delete_document)
    search = _async(calls.search)
    list_document_ids = _async(calls.list_document_ids)
    count_documents = _async(calls.count_documents)
    fetch_documents = _async(calls.fetch_documents)
    delete_documents = _async(calls.delete_documents)
    upsert_chunks = _async(calls.upsert_chunks)
    fetch_chunks = _async(calls.fetch_chunks)
    delete_chunks = _async(calls.delete_chunks)
    stats = _async(calls.stats)
    whoami = _async(calls.whoami)
    healthz = _async(calls.healthz)
    readyz = _async(calls.readyz)
    metrics = _async(calls.metrics)


def _wait(call: Call[Any], budget: RetryBudget, response: httpx.Response | None) -> float | None:
    """How long to wait before sending ``call`` again -- None: do not. ``response`` is
    None when no answer came."""
    if response is None:
        return budget.next(None) if call.idempotent else None
    if response.status_code == 503:
        return budget.next(parse_retry_after(response.headers.get("Retry-After")))
    return None
