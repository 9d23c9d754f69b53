"""An async Neon API client: neon-api underneath, made safe to drive thousands of tenants.

neon-api (0.3.0) supplies the transport, the paths and the pydantic models of Neon's
API v2. Used as is, it has three traps this module closes:

* ``NeonAPIError`` carries only the response body, not the status code, so a caller
  cannot tell 423 Locked (retry) from 404 (gone) from 400 (give up). The transport
  below keeps the response (a per-request hook) and raises :class:`NeonHTTPError`
  with the status, Neon's ``code`` and ``message`` and any ``Retry-After``.
* Its methods validate responses into models that silently drop fields they do not
  declare -- ``connection_uris``, ``operations``, ``endpoints`` of a project create --
  which are exactly what a provisioner needs. Calls here go to the unwrapped methods
  (``inspect.unwrap``) for the raw JSON and validate the parts used with the same
  ``neon_api.schema`` models, so a malformed answer still fails loudly.
* ``base_url`` must end with ``/`` (paths are appended to it); it is normalised here.

On top: every request passes the :class:`NeonRateLimiter`; 423, 429, 5xx and timeouts
are retried with exponential backoff and jitter (honouring ``Retry-After``) within
``TENANTVEC_NEON_RETRY_SECONDS``, except that a create (POST) whose outcome is unknown
(a 5xx or a timeout after it was sent) is *not* repeated blindly: it surfaces as
:class:`NeonOutcomeUnknown` so the caller can look for what it may have made first.
Other 4xx fail at once with Neon's message. Mutations on one project are serialised
in-process (:meth:`NeonClient.project_lock`) because Neon answers 423 to a second
mutation while one runs.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
import types
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic
import requests
from neon_api import NeonAPI, NeonAPIError, schema
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from controlplane.backends.neon.errors import (
    NeonHTTPError,
    NeonOutcomeUnknown,
    http_error,
    translate,
)
from controlplane.backends.neon.ratelimit import NeonRateLimiter
from controlplane.errors import (
    BackendUnavailable,
    NotConfigured,
    ProvisioningError,
)
from controlplane.settings import Settings

__all__ = [
    "Created",
    "NeonClient",
    "normalise_base_url",
]

logger = logging.getLogger("tenantvec.neon")
M = TypeVar("M")

_SENDERS = 16  # Neon API requests in flight at once, per client

# Operation statuses. "error" is not final: Neon retries the operation itself (it
# sets retry_at); "failed" and "cancelled" are.
_DONE = {schema.OperationStatus.finished, schema.OperationStatus.skipped}
_FAILED = {schema.OperationStatus.failed, schema.OperationStatus.cancelled}


def normalise_base_url(url: str) -> str:
    """neon-api appends paths to ``base_url`` verbatim, so it must end with '/'."""
    return url if url.endswith("/") else url + "/"


class _Transport(NeonAPI):  # type: ignore[misc]
    """neon-api's client with a timeout on every request and the status code kept."""

    def __init__(self, api_key: str, *, base_url: str, timeout: float) -> None:
        super().__init__(api_key, base_url=normalise_base_url(base_url))
        self._timeout = timeout
        self.user_agent: str = f"tenantvec {self.user_agent}"

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        seen: list[requests.Response] = []
        kwargs.setdefault("timeout", self._timeout)
        kwargs["hooks"] = {"response": lambda response, *args, **kw: seen.append(response)}
        try:
            return super()._request(method, path, **kwargs)
        except NeonAPIError as exc:
            raise http_error(method, path, seen[-1] if seen else None, str(exc)) from None


def _model(model: type[M], data: Any, what: str) -> M:
    try:
        return model(**data)
    except (TypeError, pydantic.ValidationError) as exc:
        raise ProvisioningError(f"Neon answered {what} in an unexpected shape: {exc}") from None


def _models(model: type[M], items: Any, what: str) -> list[M]:
    if not isinstance(items, list):
        raise ProvisioningError(f"Neon answered {what} without a list")
    return [_model(model, item, what) for item in items]


@dataclass(frozen=True)
class Created:
    """What a mutation answered: the object's raw JSON and the operations it started."""

    body: dict[str, Any]
    operations: list[schema.Operation]


class _Wait:
    """Exponential backoff with jitter, but never shorter than the server's Retry-After."""

    def __init__(self) -> None:
        self._backoff = wait_exponential_jitter(multiplier=0.25, max=8.0, jitter=0.5)

    def __call__(self, state: RetryCallState) -> float:
        wait = float(self._backoff(state))
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, NeonHTTPError) and exc.retry_after is not None:
            wait = max(wait, exc.retry_after)
        return wait


class NeonClient:
    """Neon API v2 for the neon backend: typed, rate-limited, retrying, async."""

    def __init__(self, settings: Settings) -> None:
        if not settings.neon_api_key:
            raise NotConfigured(
                "the neon backend is not configured here: it needs TENANTVEC_NEON_API_KEY "
                "(or NEON_API_KEY); choose another backend or ask the operator"
            )
        self._api = _Transport(
            settings.neon_api_key,
            base_url=settings.neon_api_url,
            timeout=settings.neon_request_timeout,
        )
        self._limiter = NeonRateLimiter(
            settings.neon_requests_per_minute, settings.neon_route_requests_per_second
        )
        # Requests run on threads of their own (neon-api is synchronous). A request takes
        # its rate-limit slot only once a thread is free to send it at once: counted at
        # send time, as Neon counts it, not while queued behind other requests.
        self._threads = ThreadPoolExecutor(_SENDERS, thread_name_prefix="neon-api")
        self._senders = asyncio.Semaphore(_SENDERS)
        self._retry_seconds = settings.neon_retry_seconds
        self._operation_timeout = settings.neon_operation_timeout
        self._project_locks: dict[str, asyncio.Lock] = {}
        self.calls: Counter[str] = Counter()  # requests sent, by route

    @property
    def base_url(self) -> str:
        return str(self._api.base_url)

    @property
    def limiter_wait_seconds(self) -> float:
        """How long the rate limiter has held this client's requests back, in total."""
        return self._limiter.waited_seconds

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._api._session.close()

    @asynccontextmanager
    async def project_lock(self, project_id: str) -> AsyncIterator[None]:
        """Hold while mutating ``project_id`` and waiting on the operations started."""
        lock = self._project_locks.setdefault(project_id, asyncio.Lock())
        async with lock:
            yield

    # -- projects -----------------------------------------------------------------

    async def create_project(self, project: dict[str, Any]) -> Created:
        body = await self._call(
            "project_create", self._raw("project_create"), project=project, idempotent=False
        )
        _model(schema.Project, body.get("project"), "the created project")
        return Created(body, self._operations(body))

    async def find_projects(self, *, search: str, org_id: str | None) -> list[dict[str, Any]]:
        """Every project whose name or id contains ``search`` (all pages)."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"search": search, "limit": 400}
            if org_id:
                params["org_id"] = org_id
            if cursor:
                params["cursor"] = cursor
            body = await self._call(
                "projects", self._api._request, "GET", "projects", params=params
            )
            _models(schema.ProjectListItem, body.get("projects"), "the project list")
            page: list[dict[str, Any]] = body["projects"]
            found.extend(page)
            cursor = (body.get("pagination") or {}).get("cursor")
            if not page or not cursor:
                return found

    async def get_project(self, project_id: str) -> dict[str, Any] | None:
        body = await self._get("project", self._raw("project"), project_id)
        if body is None:
            return None
        _model(schema.Project, body.get("project"), "the project")
        return dict(body["project"])

    async def delete_project(self, project_id: str) -> bool:
        """Delete the project; False if it was already gone."""
        return (
            await self._get("project_delete", self._raw("project_delete"), project_id) is not None
        )

    # -- branches -----------------------------------------------------------------

    async def create_branch(self, project_id: str, request: dict[str, Any]) -> Created:
        body = await self._call(
            "branch_create",
            self._raw("branch_create"),
            project_id,
            idempotent=False,
            **request,
        )
        _model(schema.Branch1, body.get("branch"), "the created branch")
        _models(schema.Endpoint, body.get("endpoints", []), "the branch's endpoints")
        return Created(body, self._operations(body))

    async def find_branches(self, project_id: str, *, search: str) -> list[dict[str, Any]]:
        body = await self._call(
            "branches",
            self._api._request,
            "GET",
            f"projects/{project_id}/branches",
            params={"search": search},
        )
        _models(schema.Branch1, body.get("branches"), "the branch list")
        return list(body["branches"])

    async def get_branch(self, project_id: str, branch_id: str) -> dict[str, Any] | None:
        body = await self._get("branch", self._raw("branch"), project_id, branch_id)
        if body is None:
            return None
        _model(schema.Branch1, body.get("branch"), "the branch")
        return dict(body["branch"])

    async def delete_branch(self, project_id: str, branch_id: str) -> list[schema.Operation] | None:
        """Delete the branch (and its computes); None if it was already gone."""
        body = await self._get("branch_delete", self._raw("branch_delete"), project_id, branch_id)
        return None if body is None else self._operations(body)

    async def branch_endpoints(self, project_id: str, branch_id: str) -> list[dict[str, Any]]:
        body = await self._call(
            "branch_endpoints",
            self._api._request,
            "GET",
            f"projects/{project_id}/branches/{branch_id}/endpoints",
        )
        _models(schema.Endpoint, body.get("endpoints"), "the branch's endpoints")
        return list(body["endpoints"])

    # -- roles and databases ------------------------------------------------------

    async def get_role(self, project_id: str, branch_id: str, name: str) -> dict[str, Any] | None:
        body = await self._get("role", self._raw("role"), project_id, branch_id, name)
        return None if body is None else dict(_checked(body, "role", schema.Role))

    async def create_role(self, project_id: str, branch_id: str, name: str) -> Created:
        body = await self._call(
            "role_create",
            self._raw("role_create"),
            project_id,
            branch_id,
            name,
            idempotent=False,
        )
        _checked(body, "role", schema.Role)
        return Created(body, self._operations(body))

    async def get_database(
        self, project_id: str, branch_id: str, name: str
    ) -> dict[str, Any] | None:
        body = await self._get("database", self._raw("database"), project_id, branch_id, name)
        return None if body is None else dict(_checked(body, "database", schema.Database))

    async def create_database(
        self, project_id: str, branch_id: str, name: str, owner: str
    ) -> Created:
        body = await self._call(
            "database_create",
            self._raw("database_create"),
            project_id,
            branch_id,
            idempotent=False,
            database={"name": name, "owner_name": owner},
        )
        _checked(body, "database", schema.Database)
        return Created(body, self._operations(body))

    async def connection_uri(
        self,
        project_id: str,
        *,
        branch_id: str,
        endpoint_id: str,
        database: str,
        role: str,
        pooled: bool,
    ) -> str:
        # neon-api's connection_uri() cannot name a branch or endpoint: it would answer
        # for the project's default branch, which in branch mode is the template.
        params = {
            "branch_id": branch_id,
            "endpoint_id": endpoint_id,
            "database_name": database,
            "role_name": role,
            "pooled": "true" if pooled else "false",
        }
        body = await self._call(
            "connection_uri",
            self._api._request,
            "GET",
            f"projects/{project_id}/connection_uri",
            params=params,
        )
        return str(_model(schema.ConnectionURIResponse, body, "the connection URI").uri)

    # -- endpoints ----------------------------------------------------------------

    async def get_endpoint(self, project_id: str, endpoint_id: str) -> dict[str, Any] | None:
        body = await self._get("endpoint", self._raw("endpoint"), project_id, endpoint_id)
        return None if body is None else dict(_checked(body, "endpoint", schema.Endpoint))

    async def start_endpoint(self, project_id: str, endpoint_id: str) -> list[schema.Operation]:
        body = await self._call(
            "endpoint_start", self._raw("endpoint_start"), project_id, endpoint_id
        )
        return self._operations(body)

    async def suspend_endpoint(self, project_id: str, endpoint_id: str) -> list[schema.Operation]:
        body = await self._call(
            "endpoint_suspend", self._raw("endpoint_suspend"), project_id, endpoint_id
        )
        return self._operations(body)

    # -- operations ---------------------------------------------------------------

    async def operations(self, project_id: str) -> list[schema.Operation]:
        """The project's most recent operations (one page)."""
        body = await self._call("operations", self._raw("operations"), project_id, limit=100)
        return self._operations(body)

    async def wait(self, project_id: str, operations: list[schema.Operation]) -> None:
        """Poll until every operation is finished; raise on a failed one or timeout."""
        deadline = time.monotonic() + self._operation_timeout
        delay = 0.1
        pending = [op for op in operations if op.status not in _DONE]
        while pending:
            _raise_if_failed(pending[0])
            if time.monotonic() + delay > deadline:
                raise BackendUnavailable(
                    f"Neon operation {pending[0].action.value} ({pending[0].id}) of project "
                    f"{project_id} still {pending[0].status.value} after "
                    f"{self._operation_timeout:.0f}s"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            body = await self._call("operation", self._raw("operation"), project_id, pending[0].id)
            current = _model(schema.OperationResponse, body, "the operation").operation
            _raise_if_failed(current)
            if current.status in _DONE:
                pending.pop(0)
                delay = 0.1  # the next one has been running meanwhile
            else:
                pending[0] = current

    # -- plumbing -----------------------------------------------------------------

    def _raw(self, name: str) -> Callable[..., Any]:
        """neon-api's method ``name`` without its response model (which drops fields)."""
        return types.MethodType(inspect.unwrap(getattr(NeonAPI, name)), self._api)

    def _operations(self, body: dict[str, Any]) -> list[schema.Operation]:
        return _models(schema.Operation, body.get("operations", []), "operations")

    async def _get(self, route: str, fn: Callable[..., Any], *args: Any) -> Any:
        """An idempotent call whose 404 means 'not there' (None)."""
        try:
            return await self._call(route, fn, *args, not_found_ok=True)
        except _NotThere:
            return None

    async def _call(
        self,
        route: str,
        fn: Callable[..., Any],
        *args: Any,
        idempotent: bool = True,
        not_found_ok: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        def transient(exc: BaseException) -> bool:
            if isinstance(exc, NeonHTTPError):
                # 423 and 429 are refusals: nothing happened, any request may be resent.
                return exc.status in (423, 429) or (idempotent and exc.transient)
            return idempotent and isinstance(exc, requests.RequestException)

        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(transient),
                stop=stop_after_delay(self._retry_seconds),
                wait=_Wait(),
                before_sleep=_log_retry,
                reraise=True,
            ):
                with attempt:
                    async with self._senders:
                        await self._limiter.acquire(route)
                        self.calls[route] += 1
                        loop = asyncio.get_running_loop()
                        answer = await loop.run_in_executor(
                            self._threads, functools.partial(fn, *args, **kwargs)
                        )
                    if not isinstance(answer, dict):
                        raise ProvisioningError(f"Neon answered {route} with a non-object")
                    return answer
        except NeonHTTPError as exc:
            if exc.status == 404 and not_found_ok:
                raise _NotThere from None
            raise translate(exc, idempotent) from None
        except requests.RequestException as exc:
            kind = type(exc).__name__
            if not idempotent:
                raise NeonOutcomeUnknown(
                    f"Neon API {route}: {kind}; the request may or may not have taken effect"
                ) from None
            raise BackendUnavailable(f"Neon API unreachable ({route}): {kind}") from None
        raise AssertionError("unreachable: tenacity re-raises the last error")


class _NotThere(Exception):
    pass


def _checked(body: dict[str, Any], key: str, model: type[Any]) -> dict[str, Any]:
    _model(model, body.get(key), f"the {key}")
    return dict(body[key])


def _raise_if_failed(op: schema.Operation) -> None:
    if op.status in _FAILED:
        raise ProvisioningError(
            f"Neon operation {op.action.value} ({op.id}) {op.status.value}: "
            f"{op.error or 'no reason given'}"
        )


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    logger.info("retrying in %.2fs after %s", wait, exc)
