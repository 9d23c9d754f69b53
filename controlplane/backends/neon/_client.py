"""An async Neon API v2 client that reads what tenantvec needs and ignores the rest.

httpx underneath, not neon-api. neon-api (0.3.0, unchanged since March 2025) was the
plan, but against today's API it stands in the way on every call tenantvec makes: its
pydantic models reject values Neon sends now (``owner.subscription_type`` ``free_v3``
and the other v3 plans, eleven operation ``action``\\ s it does not know, a missing
``pooler_mode``), it calls ``.json()`` on the 204 of deleting a branch that is gone,
it keeps no status code in its errors, and it is synchronous (a thread per request).
What it would have given -- paths and field names -- is Neon's published OpenAPI
document, which the tests hold the fake to (``tests/fakes/neon_openapi``).

So every answer is read leniently: the members tenantvec uses must be there with the
right type (else :class:`ProvisioningError` says which), unknown members and unknown
enum values are ignored (an operation's ``action`` is a string). Lists follow their
cursors to the end.

One try per call, no retries here: the lifecycle's step is the one retry layer
(``lifecycle.retry``), bounded by its deadline. Failures say whether another try can
help, as Neon documents it: 423 Locked and 429 (with ``Retry-After``) are refusals --
nothing happened, any request may be sent again -- and 503 is always safe to retry;
for a GET, any 5xx, a timeout or a lost connection is :class:`BackendUnavailable`; for
a mutation (Neon counts POST, PATCH, DELETE and PUT as not idempotent) the outcome is
unknown (:class:`NeonOutcomeUnknown`: the step looks for what it may have made before
making it again). 401/403 are a configuration error; other 4xx fail with Neon's
message. Waiting on operations ends at the step's deadline
(``deadlines.remaining``). Every request passes the :class:`NeonRateLimiter`, and
mutations of one project are serialised in-process (:meth:`NeonClient.project_lock`)
because Neon answers 423 to a second mutation while one runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from controlplane.backends.neon._errors import NeonOutcomeUnknown, http_error, translate
from controlplane.backends.neon._ratelimit import NeonRateLimiter
from controlplane.deadlines import remaining
from controlplane.errors import BackendUnavailable, NotConfigured, ProvisioningError
from controlplane.settings import Settings

__all__ = ["KNOWN_STATUSES", "Created", "Deleted", "NeonClient", "Operation", "normalise_base_url"]

logger = logging.getLogger(__name__)

_SENDERS = 16  # Neon API requests in flight at once, per client
_PAGE = 400  # list page size (Neon's limit is 1-400 for projects, up to 10,000 elsewhere)

# Operation statuses. "error" is not final: Neon retries the operation itself (it
# sets retry_at); "failed" and "cancelled" are. Unknown statuses count as running.
_DONE = {"finished", "skipped"}
_FAILED = {"failed", "cancelled"}
KNOWN_STATUSES = _DONE | _FAILED | {"scheduling", "running", "error", "cancelling"}


def normalise_base_url(url: str) -> str:
    """Paths are joined onto the base URL, so it ends with exactly one '/'."""
    return url.rstrip("/") + "/"


@dataclass(frozen=True)
class Operation:
    """One Neon operation, as much of it as waiting on it needs."""

    id: str
    action: str  # any string: Neon adds actions (and starts operations of its own)
    status: str
    branch_id: str | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.status in _DONE

    @property
    def failed(self) -> bool:
        return self.status in _FAILED

    @classmethod
    def parse(cls, data: Any) -> Operation:
        op = _object(data, "an operation")
        branch_id, error = op.get("branch_id"), op.get("error")
        return cls(
            id=_text(op, "id", "an operation"),
            action=_text(op, "action", "an operation"),
            status=_text(op, "status", "an operation"),
            branch_id=branch_id if isinstance(branch_id, str) else None,
            error=error if isinstance(error, str) and error else None,
        )


@dataclass(frozen=True)
class Created:
    """What a mutation answered: the object's raw JSON and the operations it started."""

    body: dict[str, Any]
    operations: list[Operation]


@dataclass(frozen=True)
class Deleted:
    """What deleting answered: None for both when it was already gone."""

    body: dict[str, Any] | None
    operations: list[Operation]


class NeonClient:
    """Neon API v2 for the neon backend: lenient, rate-limited, async, one try a call."""

    def __init__(self, settings: Settings) -> None:
        if not settings.neon.api_key:
            raise NotConfigured(
                "the neon backend is not configured here: it needs TENANTVEC_NEON_API_KEY "
                "(or NEON_API_KEY); choose another backend or ask the operator"
            )
        self._http = httpx.AsyncClient(
            base_url=normalise_base_url(settings.neon.api_url),
            headers={
                "Authorization": f"Bearer {settings.neon.api_key}",
                "Accept": "application/json",
                "User-Agent": "tenantvec",
            },
            timeout=settings.neon.request_timeout,
            limits=httpx.Limits(max_connections=_SENDERS, max_keepalive_connections=_SENDERS),
        )
        self._limiter = NeonRateLimiter(
            settings.neon.requests_per_minute, settings.neon.route_requests_per_second
        )
        # A request takes its rate-limit slot only once it can be sent at once: counted
        # at send time, as Neon counts it, not while queued behind other requests.
        self._senders = asyncio.Semaphore(_SENDERS)
        self._operation_timeout = settings.neon.operation_timeout
        self._project_locks: dict[str, asyncio.Lock] = {}
        self.calls: Counter[str] = Counter()  # requests sent, by route

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    @property
    def limiter_wait_seconds(self) -> float:
        """How long the rate limiter has held this client's requests back, in total."""
        return self._limiter.waited_seconds

    async def aclose(self) -> None:
        await self._http.aclose()

    @asynccontextmanager
    async def project_lock(self, project_id: str) -> AsyncIterator[None]:
        """Hold while mutating ``project_id`` and waiting on the operations started."""
        lock = self._project_locks.setdefault(project_id, asyncio.Lock())
        async with lock:
            yield

    # -- projects -----------------------------------------------------------------

    async def create_project(self, project: dict[str, Any]) -> Created:
        body = await self._call("project_create", "POST", "projects", payload={"project": project})
        _object(body.get("project"), "the created project")
        return Created(body, _operations(body))

    async def find_projects(self, *, search: str, org_id: str | None) -> list[dict[str, Any]]:
        """Every project whose name or id contains ``search`` (all pages)."""
        params: dict[str, Any] = {"search": search}
        if org_id:
            params["org_id"] = org_id
        return await self._all_pages("projects", "projects", "projects", params, "cursor")

    async def some_projects(self, limit: int) -> list[dict[str, Any]]:
        """The first ``limit`` projects the key sees (one page): for probing the API."""
        body = await self._call("projects", "GET", "projects", params={"limit": limit})
        return _objects(body.get("projects"), "the projects list")

    async def get_project(self, project_id: str) -> dict[str, Any] | None:
        body = await self._get("project", f"projects/{project_id}")
        return None if body is None else _object(body.get("project"), "the project")

    async def delete_project(self, project_id: str) -> Deleted:
        """Delete the project (Neon keeps it recoverable for a while: the answer's
        ``deleted_at`` and ``recoverable_until`` say so where Neon sends them)."""
        body = await self._send("project_delete", "DELETE", f"projects/{project_id}", gone_ok=True)
        if body is None:
            return Deleted(None, [])
        return Deleted(_object(body.get("project"), "the deleted project"), _operations(body))

    # -- branches -----------------------------------------------------------------

    async def create_branch(self, project_id: str, request: dict[str, Any]) -> Created:
        body = await self._call(
            "branch_create", "POST", f"projects/{project_id}/branches", payload=request
        )
        _object(body.get("branch"), "the created branch")
        _objects(body.get("endpoints", []), "the branch's endpoints")
        return Created(body, _operations(body))

    async def find_branches(self, project_id: str, *, search: str) -> list[dict[str, Any]]:
        """Every branch of the project whose name or id contains ``search`` (all pages)."""
        return await self._all_pages(
            "branches", f"projects/{project_id}/branches", "branches", {"search": search}, "next"
        )

    async def get_branch(self, project_id: str, branch_id: str) -> dict[str, Any] | None:
        body = await self._get("branch", f"projects/{project_id}/branches/{branch_id}")
        return None if body is None else _object(body.get("branch"), "the branch")

    async def delete_branch(self, project_id: str, branch_id: str) -> Deleted:
        """Delete the branch and its computes at once, for good (``hard_delete``: no
        recovery window); Deleted(None, []) if it was already gone (Neon: 204)."""
        body = await self._send(
            "branch_delete",
            "DELETE",
            f"projects/{project_id}/branches/{branch_id}",
            params={"hard_delete": "true"},
            gone_ok=True,
        )
        if body is None:
            return Deleted(None, [])
        return Deleted(_object(body.get("branch"), "the deleted branch"), _operations(body))

    async def branch_endpoints(self, project_id: str, branch_id: str) -> list[dict[str, Any]]:
        body = await self._call(
            "branch_endpoints", "GET", f"projects/{project_id}/branches/{branch_id}/endpoints"
        )
        return _objects(body.get("endpoints"), "the branch's endpoints")

    # -- roles and databases ------------------------------------------------------

    async def get_role(self, project_id: str, branch_id: str, name: str) -> dict[str, Any] | None:
        body = await self._get("role", f"projects/{project_id}/branches/{branch_id}/roles/{name}")
        return None if body is None else _object(body.get("role"), "the role")

    async def create_role(self, project_id: str, branch_id: str, name: str) -> Created:
        body = await self._call(
            "role_create",
            "POST",
            f"projects/{project_id}/branches/{branch_id}/roles",
            payload={"role": {"name": name}},
        )
        _object(body.get("role"), "the created role")
        return Created(body, _operations(body))

    async def get_database(
        self, project_id: str, branch_id: str, name: str
    ) -> dict[str, Any] | None:
        body = await self._get(
            "database", f"projects/{project_id}/branches/{branch_id}/databases/{name}"
        )
        if body is None:
            return None
        database = _object(body.get("database"), "the database")
        _text(database, "owner_name", "the database")
        return database

    async def create_database(
        self, project_id: str, branch_id: str, name: str, owner: str
    ) -> Created:
        body = await self._call(
            "database_create",
            "POST",
            f"projects/{project_id}/branches/{branch_id}/databases",
            payload={"database": {"name": name, "owner_name": owner}},
        )
        _object(body.get("database"), "the created database")
        return Created(body, _operations(body))

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
        params = {
            "branch_id": branch_id,
            "endpoint_id": endpoint_id,
            "database_name": database,
            "role_name": role,
            "pooled": "true" if pooled else "false",
        }
        body = await self._call(
            "connection_uri", "GET", f"projects/{project_id}/connection_uri", params=params
        )
        return _text(body, "uri", "the connection URI")

    # -- endpoints ----------------------------------------------------------------

    async def get_endpoint(self, project_id: str, endpoint_id: str) -> dict[str, Any] | None:
        body = await self._get("endpoint", f"projects/{project_id}/endpoints/{endpoint_id}")
        return None if body is None else _object(body.get("endpoint"), "the endpoint")

    async def start_endpoint(self, project_id: str, endpoint_id: str) -> list[Operation]:
        body = await self._call(
            "endpoint_start", "POST", f"projects/{project_id}/endpoints/{endpoint_id}/start"
        )
        return _operations(body)

    async def suspend_endpoint(self, project_id: str, endpoint_id: str) -> list[Operation]:
        body = await self._call(
            "endpoint_suspend", "POST", f"projects/{project_id}/endpoints/{endpoint_id}/suspend"
        )
        return _operations(body)

    # -- operations ---------------------------------------------------------------

    async def operations(self, project_id: str) -> list[Operation]:
        """The project's most recent operations (one page: what may still run)."""
        body = await self._call(
            "operations", "GET", f"projects/{project_id}/operations", params={"limit": 100}
        )
        return _operations(body)

    async def wait(self, project_id: str, operations: list[Operation]) -> None:
        """Poll until every operation is finished; raise on a failed one, or when the
        operation timeout -- or the step's deadline, if sooner -- has passed."""
        budget = remaining(self._operation_timeout)
        deadline = time.monotonic() + budget
        delay = 0.1
        pending = [op for op in operations if not op.done]
        while pending:
            _raise_if_failed(pending[0])
            if time.monotonic() + delay > deadline:
                raise BackendUnavailable(
                    f"Neon operation {pending[0].action} ({pending[0].id}) of project "
                    f"{project_id} still {pending[0].status} after {budget:.0f}s"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            body = await self._call(
                "operation", "GET", f"projects/{project_id}/operations/{pending[0].id}"
            )
            current = Operation.parse(body.get("operation"))
            _raise_if_failed(current)
            if current.done:
                pending.pop(0)
                delay = 0.1  # the next one has been running meanwhile
            else:
                pending[0] = current

    # -- plumbing -----------------------------------------------------------------

    async def _call(
        self,
        route: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One request whose answer must be a JSON object."""
        body = await self._send(route, method, path, params=params, payload=payload)
        if body is None:
            raise ProvisioningError(f"Neon answered {route} with an empty body")
        return body

    async def _get(self, route: str, path: str) -> dict[str, Any] | None:
        """A GET whose 404 means 'not there' (None)."""
        return await self._send(route, "GET", path, gone_ok=True)

    async def _all_pages(
        self, route: str, path: str, key: str, params: dict[str, Any], cursor_key: str
    ) -> list[dict[str, Any]]:
        """Every item of a list, page after page: the cursor Neon answers
        (``pagination.<cursor_key>``) goes back as ``cursor`` until a page is empty or
        comes without a cursor -- and never the same cursor twice. (A short page does not
        end the list: a server may cap pages below the limit asked for.)"""
        found: list[dict[str, Any]] = []
        seen: set[str] = set()
        query = {**params, "limit": _PAGE}
        while True:
            body = await self._call(route, "GET", path, params=query)
            page = _objects(body.get(key), f"the {key} list")
            found.extend(page)
            pagination = body.get("pagination")
            cursor = pagination.get(cursor_key) if isinstance(pagination, dict) else None
            if not page or not isinstance(cursor, str) or not cursor or cursor in seen:
                return found
            seen.add(cursor)
            query = {**params, "limit": _PAGE, "cursor": cursor}

    async def _send(
        self,
        route: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        payload: dict[str, Any] | None = None,
        gone_ok: bool = False,
    ) -> dict[str, Any] | None:
        """One request. The decoded JSON object; None for 204 or an empty body, and --
        with ``gone_ok`` -- for 404. Failures as the module docstring says."""
        idempotent = method == "GET"
        try:
            async with self._senders:
                await self._limiter.acquire(route)
                self.calls[route] += 1
                response = await self._http.request(method, path, params=params, json=payload)
        except httpx.TransportError as exc:  # timeouts included
            kind = type(exc).__name__
            if not idempotent:
                raise NeonOutcomeUnknown(
                    f"Neon API {route}: {kind}; the request may or may not have taken effect"
                ) from None
            raise BackendUnavailable(f"Neon API unreachable ({route}): {kind}") from None
        if response.status_code == 404 and gone_ok:
            return None
        if not response.is_success:
            raise translate(http_error(method, path, response), idempotent=idempotent)
        if response.status_code == 204 or not response.content:
            return None
        return _json_object(response, route)


def _json_object(response: httpx.Response, route: str) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        raise ProvisioningError(f"Neon answered {route} with something other than JSON") from None
    if not isinstance(body, dict):
        raise ProvisioningError(f"Neon answered {route} with a non-object")
    return body


def _object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ProvisioningError(f"Neon answered {what} in an unexpected shape (no object)")
    if "id" in data and not isinstance(data["id"], str | int):
        raise ProvisioningError(f"Neon answered {what} with a malformed id")
    return data


def _objects(items: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(items, list):
        raise ProvisioningError(f"Neon answered {what} without a list")
    return [_object(item, what) for item in items]


def _text(data: dict[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ProvisioningError(f"Neon answered {what} without {key!r}")
    return value


def _operations(body: Any) -> list[Operation]:
    items = body.get("operations", []) if isinstance(body, dict) else []
    if not isinstance(items, list):
        raise ProvisioningError("Neon answered operations without a list")
    return [Operation.parse(item) for item in items]


def _raise_if_failed(op: Operation) -> None:
    if op.failed:
        raise ProvisioningError(
            f"Neon operation {op.action} ({op.id}) {op.status}: {op.error or 'no reason given'}"
        )
