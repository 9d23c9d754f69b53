"""A faithful fake of the Neon API v2: a real HTTP server on loopback, real databases behind it.

It answers, under ``/api/v2/``, every endpoint tenantvec's neon backend calls --
projects, branches, endpoints, roles, databases, connection URIs and operations --
with bodies that carry every field ``neon_api.schema`` requires, shaped as Neon shapes
them (``{"project": ..., "connection_uris": [...], "operations": [...]}`` for a
create, ``{"uri": ...}`` for a connection URI, ``{"code", "message", "request_id"}``
for an error). What it emulates of Neon's behaviour:

* mutations start operations that are ``running`` for ``operation_seconds`` and then
  ``finished``; a mutation on a project while one of its operations runs gets
  ``423 Locked``;
* Neon's rate limits (``per_minute`` per key, ``per_route_per_second`` per route),
  answered with 429 when exceeded;
* bearer-key authentication (401), 404 for unknown objects, 409 for duplicate branch,
  role and database names, 400 for unknown regions -- while project names, as on Neon,
  may repeat (which is why a lost answer can make a duplicate);
* what real Neon does that a kinder fake would hide, each answer held to Neon's
  published API description (``tests/fakes/neon_spec``; the fixture checks every answer
  at teardown): deleting a branch that is gone answers ``204`` with no body; accounts
  are on the ``*_v3`` plans (``owner.subscription_type``); Neon starts operations of its
  own, with actions tenantvec has no name for (``own_operation_action``); lists are
  paginated by cursor, pages capped at ``page_size``; a deleted project is soft-deleted
  -- gone from reads, listed with ``recoverable=true`` and its data kept for the
  recovery window -- and a deleted branch too unless ``hard_delete=true`` is asked;
* every database is a real database on the Postgres given as ``admin_dsn`` (with
  pgvector installed, as Neon lets its owner do), owned by a real login role with the
  password the API reports, so the connection URI it returns works end to end. A branch
  copies its parent's databases and roles, as Neon's copy-on-write branches do.

Physical names on that Postgres are prefixed (``nf_<branch>_<name>``) because one
server stands in for many computes; the URIs name them. Tests queue :class:`Fault`\\ s
that the next matching requests meet: a status (423, 429, 500), a lost answer (the work
is done, then 500 or a long delay), a slow answer, an operation that fails. Start one
by hand for local trials (against any Postgres superuser DSN)::

    python -m tests.fakes.neon --admin-dsn postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg import sql

from tests.fakes.http import LoopbackService, send_empty, send_json
from tests.fakes.neon_spec import Answer, NeonSpec

__all__ = ["Fault", "FakeNeon", "Request"]

REGIONS = {
    "aws-us-east-1",
    "aws-us-east-2",
    "aws-us-west-2",
    "aws-eu-central-1",
    "aws-eu-west-2",
    "aws-ap-southeast-1",
    "aws-ap-southeast-2",
    "aws-sa-east-1",
    "azure-eastus2",
    "azure-westus3",
    "azure-gwc",
}
_WORDS = ("quiet", "misty", "bold", "young", "wild", "calm", "dry", "late", "still", "bitter")
_NOUNS = ("river", "frog", "moon", "leaf", "rain", "sun", "field", "snow", "wave", "pine")
LOCKED = "project already has running operations, scheduling of new ones is prohibited"
RECOVERY_WINDOW = timedelta(days=7)  # how long Neon keeps what was soft-deleted


@dataclass
class Fault:
    """What the next request matching ``method`` and ``path`` meets."""

    status: int | None = None  # answer this status (and do nothing, unless after_work)
    after_work: bool = False  # do the work first, then answer ``status`` (a lost answer)
    delay: float = 0.0  # sleep this long before answering (past a timeout: a lost answer)
    fail_operation: bool = False  # the operations this request starts end up 'failed'
    retry_after: float | None = None  # sent as Retry-After with the injected status
    method: str | None = None
    path: str | None = None  # a regex searched in the path below /api/v2/

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or re.search(self.path, path) is not None
        )


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    route: str
    at: float
    status: int


@dataclass
class _Operation:
    body: dict[str, Any]
    finishes_at: float
    fails: bool

    def render(self, now: float) -> dict[str, Any]:
        done = now >= self.finishes_at
        status = ("failed" if self.fails else "finished") if done else "running"
        failed = done and self.fails
        return {
            **self.body,
            "status": status,
            **({"error": "injected failure (fake Neon)"} if failed else {}),
            "failures_count": 1 if failed else 0,
            "updated_at": _iso(),
        }


@dataclass
class _Branch:
    body: dict[str, Any]
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> body (+password)
    databases: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Project:
    body: dict[str, Any]
    branches: dict[str, _Branch] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, _Operation] = field(default_factory=dict)
    deleted_branches: dict[str, _Branch] = field(default_factory=dict)  # soft-deleted


class _Answer(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FakeNeon(LoopbackService):
    def __init__(
        self,
        admin_dsn: str,
        *,
        api_key: str = "neon-test-key-0123456789",
        operation_seconds: float = 0.05,
        latency: float = 0.0,
        per_minute: int = 700,
        per_route_per_second: int = 40,
        page_size: int = 400,
        subscription_type: str = "launch_v3",
        own_operation_action: str | None = "update_catalog",
    ) -> None:
        self.admin_dsn = admin_dsn
        self.api_key = api_key
        self.operation_seconds = operation_seconds
        self.latency = latency
        self.per_minute = per_minute
        self.per_route_per_second = per_route_per_second
        self.page_size = page_size  # the most items a list answers per page
        self.subscription_type = subscription_type
        # Neon's own operation on every new project (None: none); an action neon-api
        # 0.3 has no name for, as Neon starts them by itself.
        self.own_operation_action = own_operation_action
        self.deleted_projects: dict[str, _Project] = {}  # soft-deleted: data kept
        self.requests: list[Request] = []
        self.answers: list[Answer] = []  # every answer given, for tests/fakes/neon_spec
        self.projects: dict[str, _Project] = {}
        self._faults: deque[Fault] = deque()
        self._accepted: deque[tuple[float, str]] = deque()  # (arrival, route) within limits
        self._lock = threading.RLock()
        info = psycopg.conninfo.conninfo_to_dict(admin_dsn)
        self._pg_host = str(info.get("host", "127.0.0.1"))
        self._pg_port = int(str(info.get("port", 5432)))

    # -- running it -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """The API base URL -- without the trailing '/' neon-api needs, on purpose."""
        return f"{self.origin}/api/v2"

    def remove_everything(self) -> None:
        """Drop every database and role the fake made (end of a test)."""
        with self._lock:
            for project_id in list(self.projects):
                self._drop_project(project_id)
            for project in self.deleted_projects.values():
                self._drop_objects(project)
            self.deleted_projects.clear()

    def fail_next(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def clear_faults(self) -> None:
        """Forget the faults no request has met yet."""
        with self._lock:
            self._faults.clear()

    # -- what tests look at -----------------------------------------------------------

    def project_names(self) -> list[str]:
        with self._lock:
            return sorted(p.body["name"] for p in self.projects.values())

    def branch_names(self, project_id: str) -> list[str]:
        with self._lock:
            return sorted(b.body["name"] for b in self.projects[project_id].branches.values())

    def endpoint_state(self, project_id: str, endpoint_id: str) -> str:
        with self._lock:
            return str(self.projects[project_id].endpoints[endpoint_id]["current_state"])

    def spec_problems(self) -> list[str]:
        """Every way an answer given so far departs from Neon's published API
        description (``tests/fakes/neon_spec``); empty when the fake was faithful."""
        spec = NeonSpec.load()
        with self._lock:
            answers = list(self.answers)
        return [problem for answer in answers for problem in spec.problems(answer)]

    def answered(self, status: int) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.status == status]

    def max_in_window(self, window: float, route: str | None = None) -> int:
        """The most requests (to ``route``, or all) that arrived within any ``window`` s."""
        with self._lock:
            times = sorted(r.at for r in self.requests if route is None or r.route == route)
        best, start = 0, 0
        for end, at in enumerate(times):
            while at - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def create_template_project(
        self, name: str = "templates", region: str = "aws-us-east-2", project_id: str | None = None
    ) -> str:
        """A project made as an operator would (neondb / neondb_owner); its id (``project_id``
        if given)."""
        with self._lock:
            body, _ = self._create_project(
                {"project": {"name": name, "region_id": region}}, fails=False, project_id=project_id
            )
            project = self.projects[body["project"]["id"]]
            for op in project.operations.values():
                op.finishes_at = 0.0
            return str(body["project"]["id"])

    # -- the HTTP side ------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        url = urlsplit(handler.path)
        method = handler.command
        path = url.path.removeprefix("/api/v2/").rstrip("/")
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        route = _route_of(method, path)
        now = time.monotonic()
        status, body, headers = self._answer(handler, method, path, route, query, raw, now)
        with self._lock:
            self.requests.append(Request(method, path, route, now, status))
            # As sent (a JSON round trip): the fake changes its objects in place later.
            sent = None if body is None else json.loads(json.dumps(body))
            self.answers.append(
                Answer(method, path, status, sent, None if body is None else "application/json")
            )
        if body is None:
            send_empty(handler, status)
        else:
            send_json(handler, status, body, headers)

    def _answer(
        self,
        handler: BaseHTTPRequestHandler,
        method: str,
        path: str,
        route: str,
        query: dict[str, str],
        raw: bytes,
        now: float,
    ) -> tuple[int, Any, dict[str, str]]:
        if not handler.path.startswith("/api/v2/"):
            return 404, _error("not found"), {}
        if handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, _error("authentication required"), {}
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            if self._over_rate_limit(route, now):
                return 429, _error("rate limit exceeded"), {}
            fault = next((f for f in self._faults if f.matches(method, path)), None)
            if fault is not None:
                self._faults.remove(fault)
        fault = fault or Fault()
        headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
        if fault.status is not None and not fault.after_work:
            return fault.status, _error(f"injected {fault.status} (fake Neon)"), headers
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            return 400, _error("request body is not valid JSON"), {}
        try:
            with self._lock:
                status, body = self._dispatch(method, path, query, payload, fault.fail_operation)
        except _Answer as answer:
            status, body = answer.status, _error(answer.message)
        if fault.delay:
            time.sleep(fault.delay)
        if fault.status is not None:  # after_work: the work is done, the answer is lost
            message = f"injected {fault.status} after the work (fake Neon)"
            return fault.status, _error(message), headers
        return status, body, {}

    def _over_rate_limit(self, route: str, now: float) -> bool:
        """Neon's limits over the requests it accepted in the minute / second before this
        one arrived. Handler threads can reach this out of arrival order (one waits for
        the lock while another creates a database), so only earlier arrivals count."""
        while self._accepted and self._accepted[0][0] <= now - 61.0:
            self._accepted.popleft()
        minute = sum(1 for at, _ in self._accepted if now - 60.0 < at <= now)
        second = sum(1 for at, r in self._accepted if r == route and now - 1.0 < at <= now)
        if minute >= self.per_minute or second >= self.per_route_per_second:
            return True
        self._accepted.append((now, route))
        return False

    def _dispatch(
        self, method: str, path: str, query: dict[str, str], payload: Any, fails: bool
    ) -> tuple[int, Any]:
        parts = path.split("/")
        if parts[0] != "projects":
            raise _Answer(404, "not found")
        if len(parts) == 1:
            if method == "GET":
                return 200, self._list_projects(query)
            if method == "POST":
                return 201, self._create_project(payload, fails)[0]
        project = self._project(parts[1]) if len(parts) > 1 else None
        assert project is not None
        rest = parts[2:]
        mutating = method in ("POST", "DELETE", "PATCH")
        if mutating and self._running(project) and rest[:1] != ["operations"]:
            raise _Answer(423, LOCKED)
        handler = self._routes().get((method, _shape(rest)))
        if handler is None:
            raise _Answer(404, "not found")
        return handler(project, rest, query, payload, fails)

    def _routes(self) -> dict[tuple[str, str], Callable[..., tuple[int, Any]]]:
        return {
            ("GET", ""): lambda p, r, q, b, f: (200, {"project": self._full_project(p)}),
            ("DELETE", ""): lambda p, r, q, b, f: (200, self._delete_project(p)),
            ("GET", "branches"): self._list_branches,
            ("POST", "branches"): self._create_branch,
            ("GET", "branches/*"): lambda p, r, q, b, f: (
                200,
                {
                    "branch": self._branch(p, r[1]).body,
                    "annotation": {"object": {"type": "console/branch", "id": r[1]}, "value": {}},
                },
            ),
            ("DELETE", "branches/*"): self._delete_branch,
            ("GET", "branches/*/endpoints"): lambda p, r, q, b, f: (
                200,
                {"endpoints": [e for e in p.endpoints.values() if e["branch_id"] == r[1]]},
            ),
            ("GET", "branches/*/roles/*"): self._get_role,
            ("POST", "branches/*/roles"): self._create_role,
            ("GET", "branches/*/databases/*"): self._get_database,
            ("POST", "branches/*/databases"): self._create_database,
            ("GET", "connection_uri"): self._connection_uri,
            ("GET", "endpoints"): lambda p, r, q, b, f: (
                200,
                {"endpoints": list(p.endpoints.values())},
            ),
            ("GET", "endpoints/*"): lambda p, r, q, b, f: (
                200,
                {"endpoint": self._endpoint(p, r[1])},
            ),
            ("POST", "endpoints/*/start"): self._start_endpoint,
            ("POST", "endpoints/*/suspend"): self._suspend_endpoint,
            ("GET", "operations"): self._list_operations,
            ("GET", "operations/*"): self._get_operation,
        }

    # -- projects ---------------------------------------------------------------------

    def _list_projects(self, query: dict[str, str]) -> dict[str, Any]:
        # Neon's cursor here is the id of the last project of the page before; deleted
        # projects are listed only with recoverable=true (and then only they are).
        pool = self.deleted_projects if query.get("recoverable") == "true" else self.projects
        page, _ = self._page([p.body for p in pool.values()], query, default=10, most=400)
        listed = [{k: v for k, v in body.items() if k in _LIST_ITEM_FIELDS} for body in page]
        answer: dict[str, Any] = {"projects": listed, "applications": {}, "integrations": {}}
        if page:
            answer["pagination"] = {"cursor": page[-1]["id"]}
        return answer

    def _page(
        self, bodies: list[dict[str, Any]], query: dict[str, str], *, default: int, most: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """The page a list request asks for -- objects whose name or id contains
        ``search``, in id order, after the ``cursor`` id -- and whether more follow."""
        search = query.get("search", "")
        matching = sorted(
            (body for body in bodies if search in body["name"] or search in body["id"]),
            key=lambda body: str(body["id"]),
        )
        after = query.get("cursor")
        if after:
            matching = [body for body in matching if body["id"] > after]
        limit = self._limit(query, default, most=most)
        return matching[:limit], len(matching) > limit

    def _limit(self, query: dict[str, str], default: int, *, most: int) -> int:
        try:
            limit = int(query.get("limit", default))
        except ValueError:
            raise _Answer(400, "limit must be an integer") from None
        if not 1 <= limit <= most:
            raise _Answer(400, f"limit must be between 1 and {most}")
        return min(limit, self.page_size)

    def _full_project(self, project: _Project) -> dict[str, Any]:
        """A project as GET /projects/{id} shows it: with its owner (a v3 plan)."""
        owner = {
            "email": "owner@example.com",
            "name": "Fake Owner",
            "branches_limit": 5000,
            "subscription_type": self.subscription_type,
        }
        return {**project.body, "owner": owner}

    def _list_operations(
        self, project: _Project, rest: list[str], query: dict[str, str], payload: Any, fails: bool
    ) -> tuple[int, Any]:
        now = time.monotonic()
        newest_first = [o.render(now) for o in reversed(project.operations.values())]
        page = newest_first[: self._limit(query, 10, most=1000)]
        answer: dict[str, Any] = {"operations": page}
        if page:
            answer["pagination"] = {"cursor": page[-1]["created_at"]}
        return 200, answer

    def _create_project(
        self, payload: Any, fails: bool, project_id: str | None = None
    ) -> tuple[dict[str, Any], str]:
        spec = payload.get("project") if isinstance(payload, dict) else None
        if not isinstance(spec, dict):
            raise _Answer(400, "request body must have a 'project' object")
        region = spec.get("region_id") or "aws-us-east-2"
        if region not in REGIONS:
            raise _Answer(400, f"region '{region}' is not available")
        project_id = project_id or f"{_word()}-{_noun()}-{secrets.randbelow(10**8):08d}"
        now = _iso()
        body = {
            "id": project_id,
            "platform_id": "aws" if region.startswith("aws") else "azure",
            "region_id": region,
            "name": spec.get("name") or project_id,
            "provisioner": "k8s-neonvm",
            "pg_version": int(spec.get("pg_version") or 17),
            "proxy_host": f"{region}.aws.neon.tech",
            "branch_logical_size_limit": 0,
            "branch_logical_size_limit_bytes": -1,
            "store_passwords": True,
            "creation_source": "console",
            "history_retention_seconds": 86400,
            "created_at": now,
            "updated_at": now,
            "consumption_period_start": now,
            "consumption_period_end": now,
            "owner_id": "fake-owner",
            "active_time": 0,
            "cpu_used_sec": 0,
            "data_storage_bytes_hour": 0,
            "data_transfer_bytes": 0,
            "written_data_bytes": 0,
            "compute_time_seconds": 0,
            "active_time_seconds": 0,
        }
        if spec.get("org_id"):
            body["org_id"] = spec["org_id"]
        project = self.projects[project_id] = _Project(body=body)
        branch_spec = spec.get("branch") or {}
        branch = self._new_branch(project, "main", parent=None, default=True)
        endpoint = self._new_endpoint(project, branch.body["id"])
        role = self._add_role(project, branch, branch_spec.get("role_name") or "neondb_owner")
        database = self._add_database(
            project, branch, branch_spec.get("database_name") or "neondb", role["name"]
        )
        operations = [
            self._operation(project, "create_timeline", branch.body["id"], None, fails),
            self._operation(project, "start_compute", branch.body["id"], endpoint["id"], fails),
        ]
        if self.own_operation_action is not None:
            # Not in the answer: Neon's own, seen only by listing operations.
            self._operation(project, self.own_operation_action, None, None, fails=False)
        uri = self._uri(branch, database["name"], role["name"])
        answer = {
            "project": body,
            "connection_uris": [
                {
                    "connection_uri": uri,
                    "connection_parameters": {
                        "database": database["name"],
                        "password": branch.roles[role["name"]]["password"],
                        "role": role["name"],
                        "host": endpoint["host"],
                        "pooler_host": endpoint["host"].replace(".", "-pooler.", 1),
                    },
                }
            ],
            "roles": [_public_role(r) for r in branch.roles.values()],
            "databases": [_public_database(d) for d in branch.databases.values()],
            "operations": operations,
            "branch": branch.body,
            "endpoints": [endpoint],
        }
        return answer, project_id

    def _delete_project(self, project: _Project) -> dict[str, Any]:
        # Soft: Neon keeps a deleted project, data and all, recoverable for 7 days.
        del self.projects[project.body["id"]]
        deleted_at = datetime.now(UTC)
        project.body["deleted_at"] = deleted_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        project.body["recoverable_until"] = (deleted_at + RECOVERY_WINDOW).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        self.deleted_projects[project.body["id"]] = project
        return {"project": project.body}

    def _drop_project(self, project_id: str) -> None:
        self._drop_objects(self.projects.pop(project_id))

    def _drop_objects(self, project: _Project) -> None:
        for branch in project.branches.values():
            self._drop_branch_objects(branch)
        for branch in project.deleted_branches.values():
            self._drop_branch_objects(branch)

    # -- branches -----------------------------------------------------------------------

    def _list_branches(
        self, project: _Project, rest: list[str], query: dict[str, str], payload: Any, fails: bool
    ) -> tuple[int, Any]:
        # Neon's cursor is opaque; here it is the id of the last branch of the page.
        pool = dict(project.branches)
        if query.get("include_deleted") == "true":
            pool.update(project.deleted_branches)
        bodies = [b.body for b in pool.values()]
        page, more = self._page(bodies, query, default=10_000, most=10_000)
        answer: dict[str, Any] = {"branches": page, "annotations": {}}
        if more:
            answer["pagination"] = {"next": page[-1]["id"], "sort_by": "id", "sort_order": "ASC"}
        return 200, answer

    def _create_branch(
        self, project: _Project, rest: list[str], query: dict[str, str], payload: Any, fails: bool
    ) -> tuple[int, Any]:
        spec = (payload or {}).get("branch") or {}
        parent_id = spec.get("parent_id") or next(
            b.body["id"] for b in project.branches.values() if b.body["default"]
        )
        parent = self._branch(project, parent_id)
        name = spec.get("name") or f"br-{_word()}-{_noun()}"
        if any(b.body["name"] == name for b in project.branches.values()):
            raise _Answer(409, f"branch with name '{name}' already exists")
        branch = self._new_branch(project, name, parent=parent, default=False)
        for role in parent.roles.values():
            self._add_role(project, branch, role["name"], password=role["password"])
        for database in parent.databases.values():
            self._add_database(
                project, branch, database["name"], database["owner_name"], template=parent
            )
        endpoints = [
            self._new_endpoint(project, branch.body["id"])
            for e in (payload or {}).get("endpoints", [])
            if e.get("type") == "read_write"
        ]
        operations = [self._operation(project, "create_branch", branch.body["id"], None, fails)]
        operations += [
            self._operation(project, "start_compute", branch.body["id"], e["id"], fails)
            for e in endpoints
        ]
        return 201, {
            "branch": branch.body,
            "endpoints": endpoints,
            "operations": operations,
            "roles": [_public_role(r) for r in branch.roles.values()],
            "databases": list(branch.databases.values()),
            "connection_uris": [],
        }

    def _delete_branch(
        self, project: _Project, rest: list[str], query: dict[str, str], payload: Any, fails: bool
    ) -> tuple[int, Any]:
        branch = project.branches.get(rest[1])
        if branch is None:
            return 204, None  # Neon: "the branch doesn't exist or has already been deleted"
        if branch.body["default"]:
            raise _Answer(400, "cannot delete the project's default branch")
        operations = []
        for endpoint_id in [e for e, v in project.endpoints.items() if v["branch_id"] == rest[1]]:
            operations.append(
                self._operation(project, "suspend_compute", rest[1], endpoint_id, fails)
            )
            del project.endpoints[endpoint_id]
        operations.append(self._operation(project, "delete_timeline", rest[1], None, fails))
        del project.branches[rest[1]]
        if query.get("hard_delete") == "true":
            self._drop_branch_objects(branch)  # gone for good, at once
        else:  # soft: recoverable for the window, its data kept meanwhile
            deleted_at = datetime.now(UTC)
            branch.body["deleted_at"] = deleted_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            branch.body["recoverable_until"] = (deleted_at + RECOVERY_WINDOW).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
            project.deleted_branches[rest[1]] = branch
        return 200, {"branch": branch.body, "operations": operations}

    # -- roles and databases ------------------------------------------------------------

    def _get_role(
        self, project: _Project, rest: list[str], query: dict[str, str], payload: Any, fails: bool
    ) -> tuple[int, Any]:
        branch = self._branch(project, rest[1])
        role = branch.roles.get(rest[3])
        if role is None:
            raise _Answer(404, "role not found")
        return 200, {"role": _public_role(role)}

    def _create_role(
        self, project: _Project, rest: list[str], query: dict[str, str], payload: Any, fails: bool
    ) -> tuple[int, Any]:
        branch = self._branch(project, rest[1])
        name = ((payload or {}).get("role") or {}).get("name")
        if not name:
            raise _Answer(400, "role name is required")
        if name in branch.roles:
            raise _Answer(409, f"role '{name}' already exists")
        role = self._add_role(project, branch, name)
        return 201, {
            "role": role,
            "operations": [
                self._operation(
                    project, "apply_config", rest[1], self._endpoint_of(project, rest[1]), fails
                )
            ],
        }

    def _get_database(
        self, project: _Project, rest: list[str], query: dict[str, str], payload: Any, fails: bool
    ) -> tuple[int, Any]:
        branch = self._branch(project, rest[1])
        database = branch.databases.get(rest[3])
        if database is None:
            raise _Answer(404, "database not found")
        return 200, {"database": _public_database(database)}

    def _create_database(
        self, project: _Project, rest: list[str], query: dict[str, str], payload: Any, fails: bool
    ) -> tuple[int, Any]:
        branch = self._branch(project, rest[1])
        spec = (payload or {}).get("database") or {}
        name, owner = spec.get("name"), spec.get("owner_name")
        if not name or not owner:
            raise _Answer(400, "database name and owner_name are required")
        if owner not in branch.roles:
            raise _Answer(400, f"role '{owner}' does not exist")
        if name in branch.databases:
            raise _Answer(409, f"database '{name}' already exists")
        database = self._add_database(project, branch, name, owner)
        return 201, {
            "database": database,
            "operations": [
                self._operation(
                    project, "apply_config", rest[1], self._endpoint_of(project, rest[1]), fails
                )
            ],
        }

    def _connection_uri(
        self, project: _Project, rest: list[str], query: dict[str, str], payload: Any, fails: bool
    ) -> tuple[int, Any]:
        branch_id = query.get("branch_id") or next(
            b.body["id"] for b in project.branches.values() if b.body["default"]
        )
        branch = self._branch(project, branch_id)
        database, role = query.get("database_name"), query.get("role_name")
        if not database or not role:
            raise _Answer(400, "database_name and role_name are required")
        if database not in branch.databases:
            raise _Answer(404, "database not found")
        if role not in branch.roles:
            raise _Answer(404, "role not found")
        return 200, {"uri": self._uri(branch, database, role)}

    # -- endpoints ----------------------------------------------------------------------

    def _start_endpoint(
        self, project: _Project, rest: list[str], query: dict[str, str], payload: Any, fails: bool
    ) -> tuple[int, Any]:
        endpoint = self._endpoint(project, rest[1])
        endpoint["current_state"] = "active"
        op = self._operation(project, "start_compute", endpoint["branch_id"], rest[1], fails)
        return 200, {"endpoint": endpoint, "operations": [op]}

    def _suspend_endpoint(
        self, project: _Project, rest: list[str], query: dict[str, str], payload: Any, fails: bool
    ) -> tuple[int, Any]:
        endpoint = self._endpoint(project, rest[1])
        endpoint["current_state"] = "idle"
        # The compute stops: its sessions end. (A new connection would wake it, as on Neon.)
        with self._admin() as conn:
            for database in self._branch(project, endpoint["branch_id"]).databases.values():
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (database["_physical"],),
                )
        op = self._operation(project, "suspend_compute", endpoint["branch_id"], rest[1], fails)
        return 200, {"endpoint": endpoint, "operations": [op]}

    def _get_operation(
        self, project: _Project, rest: list[str], query: dict[str, str], payload: Any, fails: bool
    ) -> tuple[int, Any]:
        op = project.operations.get(rest[1])
        if op is None:
            raise _Answer(404, "operation not found")
        return 200, {"operation": op.render(time.monotonic())}

    # -- state and Postgres -------------------------------------------------------------

    def _project(self, project_id: str) -> _Project:
        project = self.projects.get(project_id)
        if project is None:
            raise _Answer(404, "project not found")
        return project

    def _branch(self, project: _Project, branch_id: str) -> _Branch:
        branch = project.branches.get(branch_id)
        if branch is None:
            raise _Answer(404, "branch not found")
        return branch

    def _endpoint(self, project: _Project, endpoint_id: str) -> dict[str, Any]:
        endpoint = project.endpoints.get(endpoint_id)
        if endpoint is None:
            raise _Answer(404, "endpoint not found")
        return endpoint

    def _endpoint_of(self, project: _Project, branch_id: str) -> str | None:
        return next(
            (e["id"] for e in project.endpoints.values() if e["branch_id"] == branch_id), None
        )

    def _running(self, project: _Project) -> bool:
        now = time.monotonic()
        return any(op.finishes_at > now for op in project.operations.values())

    def _operation(
        self,
        project: _Project,
        action: str,
        branch_id: str | None,
        endpoint_id: str | None,
        fails: bool,
    ) -> dict[str, Any]:
        op_id = str(uuid.uuid4())
        now = _iso()
        op = _Operation(
            body={
                "id": op_id,
                "project_id": project.body["id"],
                **({"branch_id": branch_id} if branch_id else {}),
                **({"endpoint_id": endpoint_id} if endpoint_id else {}),
                "action": action,
                "created_at": now,
                "total_duration_ms": int(self.operation_seconds * 1000),
            },
            finishes_at=time.monotonic() + self.operation_seconds,
            fails=fails,
        )
        project.operations[op_id] = op
        return op.render(time.monotonic())

    def _new_branch(
        self, project: _Project, name: str, *, parent: _Branch | None, default: bool
    ) -> _Branch:
        branch_id = f"br-{_word()}-{_noun()}-{secrets.token_hex(4)}"
        now = _iso()
        body = {
            "id": branch_id,
            "project_id": project.body["id"],
            "name": name,
            "current_state": "ready",
            "state_changed_at": now,
            "creation_source": "console",
            "default": default,
            "protected": False,
            "primary": default,
            "cpu_used_sec": 0,
            "compute_time_seconds": 0,
            "active_time_seconds": 0,
            "written_data_bytes": 0,
            "data_transfer_bytes": 0,
            "created_at": now,
            "updated_at": now,
        }
        if parent is not None:
            body["parent_id"] = parent.body["id"]
        branch = project.branches[branch_id] = _Branch(body=body)
        return branch

    def _new_endpoint(self, project: _Project, branch_id: str) -> dict[str, Any]:
        endpoint_id = f"ep-{_word()}-{_noun()}-{secrets.token_hex(4)}"
        region = project.body["region_id"]
        now = _iso()
        endpoint = {
            "host": f"{endpoint_id}.{region}.aws.neon.tech",
            "id": endpoint_id,
            "project_id": project.body["id"],
            "branch_id": branch_id,
            "autoscaling_limit_min_cu": 0.25,
            "autoscaling_limit_max_cu": 2.0,
            "region_id": region,
            "type": "read_write",
            "current_state": "active",
            "settings": {"pg_settings": {}},
            "pooler_enabled": False,
            "pooler_mode": "transaction",
            "disabled": False,
            "passwordless_access": True,
            "creation_source": "console",
            "created_at": now,
            "updated_at": now,
            "proxy_host": f"{region}.aws.neon.tech",
            "suspend_timeout_seconds": 0,
            "provisioner": "k8s-neonvm",
        }
        project.endpoints[endpoint_id] = endpoint
        return endpoint

    def _add_role(
        self, project: _Project, branch: _Branch, name: str, *, password: str | None = None
    ) -> dict[str, Any]:
        password = password or secrets.token_urlsafe(12)
        physical = _physical(branch, name)
        with self._admin() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(physical), sql.Literal(password)
                )
            )
        now = _iso()
        role = {
            "branch_id": branch.body["id"],
            "name": name,
            "password": password,
            "protected": False,
            "created_at": now,
            "updated_at": now,
        }
        branch.roles[name] = role
        return role

    def _add_database(
        self,
        project: _Project,
        branch: _Branch,
        name: str,
        owner: str,
        *,
        template: _Branch | None = None,
    ) -> dict[str, Any]:
        physical = _physical(branch, name)
        with self._admin() as conn:
            statement = sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(physical), sql.Identifier(_physical(branch, owner))
            )
            if template is not None:
                statement += sql.SQL(" TEMPLATE {}").format(
                    sql.Identifier(template.databases[name]["_physical"])
                )
            conn.execute(statement)
            conn.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(physical))
            )
        dsn = psycopg.conninfo.make_conninfo(self.admin_dsn, dbname=physical)
        with psycopg.connect(dsn, autocommit=True) as conn:
            # Neon lets a database's owner create pgvector; a plain role here cannot.
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        now = _iso()
        database = {
            "id": len(branch.databases) + 1,
            "branch_id": branch.body["id"],
            "name": name,
            "owner_name": owner,
            "created_at": now,
            "updated_at": now,
            "_physical": physical,
        }
        branch.databases[name] = database
        return _public_database(database)

    def _drop_branch_objects(self, branch: _Branch) -> None:
        with self._admin() as conn:
            for database in branch.databases.values():
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(database["_physical"])
                    )
                )
            for name in branch.roles:
                conn.execute(
                    sql.SQL("DROP ROLE IF EXISTS {}").format(
                        sql.Identifier(_physical(branch, name))
                    )
                )

    def _uri(self, branch: _Branch, database: str, role: str) -> str:
        password = branch.roles[role]["password"]
        physical_db = branch.databases[database]["_physical"]
        return (
            f"postgresql://{_physical(branch, role)}:{password}@{self._pg_host}:{self._pg_port}/"
            f"{physical_db}?sslmode=disable"
        )

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.admin_dsn, autocommit=True)


_LIST_ITEM_FIELDS = {
    "id",
    "platform_id",
    "region_id",
    "name",
    "provisioner",
    "pg_version",
    "proxy_host",
    "branch_logical_size_limit",
    "branch_logical_size_limit_bytes",
    "store_passwords",
    "active_time",
    "cpu_used_sec",
    "creation_source",
    "created_at",
    "updated_at",
    "owner_id",
    "org_id",
}


def _public_database(database: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in database.items() if not k.startswith("_")}


def _public_role(role: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in role.items() if k != "password"}


def _physical(branch: _Branch, name: str) -> str:
    tag = hashlib.sha1(branch.body["id"].encode()).hexdigest()[:8]
    return f"nf_{tag}_{name}"[:63]


def _route_of(method: str, path: str) -> str:
    """The route a request counts against for rate limits: ids replaced by '*'."""
    parts = path.split("/")
    shape = [parts[0]] + ["*" if i % 2 else p for i, p in enumerate(parts[1:], start=1)]
    return f"{method} {'/'.join(shape)}"


def _shape(rest: list[str]) -> str:
    return "/".join("*" if i % 2 else p for i, p in enumerate(rest))


def _error(message: str) -> dict[str, Any]:
    return {"code": "", "message": message, "request_id": str(uuid.uuid4())}


def _iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _word() -> str:
    return _WORDS[secrets.randbelow(len(_WORDS))]


def _noun() -> str:
    return _NOUNS[secrets.randbelow(len(_NOUNS))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-dsn", required=True, help="Postgres superuser DSN to create on.")
    parser.add_argument("--port", type=int, default=8098)
    parser.add_argument("--key", default="neon-test-key-0123456789", help="Bearer key to require.")
    parser.add_argument("--operation-seconds", type=float, default=1.0)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument(
        "--template-project", default=None, help="Make a project with this id (branch mode)."
    )
    args = parser.parse_args()
    fake = FakeNeon(
        args.admin_dsn,
        api_key=args.key,
        operation_seconds=args.operation_seconds,
        latency=args.latency,
    ).start(args.port)
    if args.template_project:
        fake.create_template_project(project_id=args.template_project)
    print(f"fake Neon API on {fake.url}/ (key {args.key}); Ctrl-C stops it and drops its databases")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.remove_everything()
        fake.stop()


if __name__ == "__main__":
    main()
