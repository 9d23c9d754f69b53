"""A read-only probe of the Neon API endpoints the backend uses (``tenantctl doctor``).

It reads one of each answer the backend relies on -- the project list, a project (the
template, or the first the key sees), its operations, its branches, a branch's
endpoints, an endpoint -- through the same client and the same lenient reading, and
reports what could not be read (a failure) and values tenantvec does not know (a
warning), so an operator learns of a change of Neon's before a create fails.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from controlplane.backends.base import ApiProbe
from controlplane.backends.neon._client import KNOWN_STATUSES, NeonClient
from controlplane.errors import TenantvecError

__all__ = ["probe"]

T = TypeVar("T")


async def probe(client: NeonClient, *, template_project: str | None) -> ApiProbe:
    asked: list[str] = []
    problems: list[str] = []
    notes: list[str] = []

    async def ask(what: str, call: Awaitable[T]) -> T | None:
        asked.append(what)
        try:
            return await call
        except TenantvecError as exc:
            problems.append(f"{what}: {exc}")
            return None

    def need(obj: dict[str, Any], keys: tuple[str, ...], what: str) -> None:
        missing = [key for key in keys if obj.get(key) in (None, "")]
        if missing:
            problems.append(f"{what}: no {', '.join(missing)}")

    projects = await ask("list projects", client.some_projects(limit=1))
    project_id = template_project or (str(projects[0]["id"]) if projects else None)
    if project_id is None:
        notes.append("the key sees no project: only the project list was probed")
        return ApiProbe(asked, problems, notes)
    project = await ask(f"project {project_id}", client.get_project(project_id))
    if project is not None:
        need(project, ("id", "name", "region_id"), f"project {project_id}")
    operations = await ask("operations", client.operations(project_id))
    for op in operations or []:
        if op.status not in KNOWN_STATUSES:
            notes.append(f"operation {op.id}: status {op.status!r} is new to tenantvec")
    branches = await ask("branches", client.find_branches(project_id, search=""))
    if not branches:
        return ApiProbe(asked, problems, notes)
    branch = next((b for b in branches if b.get("default")), branches[0])
    need(branch, ("id", "name"), f"branch {branch.get('id')}")
    endpoints = await ask(
        "branch endpoints", client.branch_endpoints(project_id, str(branch["id"]))
    )
    if endpoints:
        endpoint_id = str(endpoints[0].get("id"))
        endpoint = await ask(
            f"endpoint {endpoint_id}", client.get_endpoint(project_id, endpoint_id)
        )
        if endpoint is not None:
            fields = ("id", "type", "current_state", "host", "region_id", "branch_id")
            need(endpoint, fields, f"endpoint {endpoint_id}")
    return ApiProbe(asked, problems, notes)
