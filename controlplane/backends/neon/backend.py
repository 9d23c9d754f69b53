"""The ``neon`` backend: a Neon project, or a Neon branch, per tenant.

Two modes (``TENANTVEC_NEON_MODE``), recorded per tenant in its placement so a change
of setting never confuses tenants made before it:

* ``project``: one Neon project per tenant, in the tenant's region (``--region``), with
  a role and a database named after the tenant. Own compute, storage, region and
  point-in-time restore: the strongest isolation Neon offers.
* ``branch``: one branch per tenant, cut from a template branch of one project, with
  its own read-write compute, and a role and database of the tenant's made on it.
  Creates are fast (copy-on-write), but every tenant shares the project's region and
  plan limits, and Neon runs one mutation at a time per project.

Every Neon object tenantvec makes is named ``<TENANTVEC_NEON_NAME_PREFIX><tenant id>``,
which is how reconcile finds them. Ids are recorded in the catalog the moment Neon
answers, before waiting on its operations; a create that died before even that is
found again by name, so nothing is made twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from controlplane.backends.base import ApiProbe, Checkpoint, OwnedResource, ProvisionPlan
from controlplane.backends.neon import _erasure as erasure
from controlplane.backends.neon._client import NeonClient, Operation
from controlplane.backends.neon._probe import probe
from controlplane.dsn import ConnInfo
from controlplane.errors import (
    ConfigurationError,
    InvalidRequest,
    NotConfigured,
    ProvisioningError,
)
from controlplane.failpoints import failpoint
from controlplane.model.backends import BackendKind
from controlplane.model.erasure import Erasure
from controlplane.model.limits import RoleLimits
from controlplane.model.placement import NeonPlacement
from controlplane.model.records import Server, Tenant, validate_tenant_id
from controlplane.model.request import TenantRequest
from controlplane.settings import Settings

__all__ = ["NeonBackend"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
PROJECT = "project"
BRANCH = "branch"
_MAX_PROJECT_NAME = 64


class NeonBackend:
    kind = BackendKind.NEON
    uses_servers = False
    regional = True
    sized = False
    supervises = False

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # Neon's own waits (a project locked by a running operation, rate limits) are
        # longer than a local server's: the lifecycle retries its steps this long.
        self.retry_seconds = max(settings.retry_seconds, settings.neon.retry_seconds)
        # Neon's pooler (PgBouncer) refuses start-up options.
        self.session_options = not settings.neon.pooled
        self._client: NeonClient | None = None
        self._template: dict[str, str] | None = None  # region and parent branch, cached

    @property
    def client(self) -> NeonClient:
        """The API client, made on first use (refused clearly without an API key)."""
        if self._client is None:
            self._client = NeonClient(self._settings)
        return self._client

    @property
    def configured(self) -> bool:
        return bool(self._settings.neon.api_key)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def name_of(self, tenant_id: str) -> str:
        return self._settings.neon.name_prefix + tenant_id

    def tenant_of(self, name: str) -> str | None:
        """The tenant id a Neon object's name carries, or None if it is not ours."""
        prefix = self._settings.neon.name_prefix
        if not name.startswith(prefix):
            return None
        try:
            return validate_tenant_id(name[len(prefix) :])
        except InvalidRequest:
            return None

    # -- plan ---------------------------------------------------------------------

    async def plan(self, request: TenantRequest, server: Server | None) -> ProvisionPlan:
        tenant_id, region = request.id, request.region
        assert server is None, "the lifecycle places only server backends on servers"
        self.client  # noqa: B018 -- refuses now, before a catalog row, if there is no key
        name = self.name_of(tenant_id)
        if len(name) > _MAX_PROJECT_NAME:
            raise InvalidRequest(
                f"Neon names are at most {_MAX_PROJECT_NAME} characters and {name!r} is "
                f"{len(name)}; use a shorter tenant id or TENANTVEC_NEON_NAME_PREFIX"
            )
        placement = NeonPlacement(name=name, database=tenant_id, role=tenant_id)
        if self._settings.neon.mode == PROJECT:
            placement = placement.replace(
                mode=PROJECT,
                region=region or self._settings.neon.region,
                pg_version=self._settings.neon.pg_version,
            )
        else:
            template = await self._template_facts()
            if region is not None and region != template["region"]:
                raise InvalidRequest(
                    f"branch mode places every tenant in the template project's region "
                    f"({template['region']}); a tenant in {region} needs "
                    "TENANTVEC_NEON_MODE=project"
                )
            placement = placement.replace(
                mode=BRANCH,
                project_id=template["project_id"],
                parent_id=template["parent_id"],
                region=template["region"],
            )
        return ProvisionPlan(server=None, placement=placement, conninfo=None)

    async def _template_facts(self) -> dict[str, str]:
        if self._template is None:
            project_id = self._settings.neon.template_project
            if not project_id:
                raise NotConfigured(
                    "TENANTVEC_NEON_MODE=branch needs TENANTVEC_NEON_TEMPLATE_PROJECT (the "
                    "project whose branches are tenants)"
                )
            project = await self.client.get_project(project_id)
            if project is None:
                raise ConfigurationError(f"Neon template project {project_id!r} does not exist")
            parent = self._settings.neon.template_branch
            if parent is None:
                branches = await self.client.find_branches(project_id, search="")
                parent = next((b["id"] for b in branches if b.get("default")), None)
                if parent is None:
                    raise ConfigurationError(
                        f"Neon project {project_id!r} has no default branch; set "
                        "TENANTVEC_NEON_TEMPLATE_BRANCH"
                    )
            self._template = {
                "project_id": project_id,
                "parent_id": parent,
                "region": str(project["region_id"]),
            }
        return self._template

    # -- create -------------------------------------------------------------------

    async def create(self, tenant: Tenant, checkpoint: Checkpoint) -> None:
        if NeonPlacement.of(tenant.placement).mode == BRANCH:
            await self._create_branch(tenant, checkpoint)
        else:
            await self._create_project(tenant, checkpoint)

    async def _create_project(self, tenant: Tenant, checkpoint: Checkpoint) -> None:
        client = self.client
        project_id = NeonPlacement.of(checkpoint.placement).project_id
        if project_id and await client.get_project(project_id) is None:
            project_id = None  # removed behind our back: make it again
        if project_id:
            pending = await client.operations(project_id)
        else:
            pending = await self._step(
                lambda search: self._ensure_project(checkpoint, search=search),
                resuming=checkpoint.resuming,
            )
            project_id = _recorded(checkpoint, "project_id")
        async with client.project_lock(project_id):
            await client.wait(project_id, pending)
        if checkpoint.conninfo is None or self._settings.neon.pooled:
            uri = await client.connection_uri(
                project_id,
                branch_id=_recorded(checkpoint, "branch_id"),
                endpoint_id=_recorded(checkpoint, "endpoint_id"),
                database=_recorded(checkpoint, "database"),
                role=_recorded(checkpoint, "role"),
                pooled=self._settings.neon.pooled,
            )
            await checkpoint.record(conninfo=ConnInfo.parse(uri))
        logger.info("tenant %s: Neon project %s ready", tenant.id, project_id)

    async def _ensure_project(self, checkpoint: Checkpoint, *, search: bool) -> list[Operation]:
        """Adopt the tenant's project if a lost answer made it already, else create it.

        Returns the operations to wait for.
        """
        placement = NeonPlacement.of(checkpoint.placement)
        name = _recorded(checkpoint, "name")
        if search:
            found = await self._find_project(name)
            if found is not None:
                branch_id, endpoint_id = await self._main_ids(found["id"])
                await checkpoint.record(
                    placement.replace(
                        project_id=found["id"], branch_id=branch_id, endpoint_id=endpoint_id
                    )
                )
                return await self.client.operations(found["id"])
        request: dict[str, Any] = {
            "name": name,
            "region_id": placement.region,
            "pg_version": placement.pg_version,
            "branch": {"role_name": placement.role, "database_name": placement.database},
        }
        if self._settings.neon.org_id:
            request["org_id"] = self._settings.neon.org_id
        created = await self.client.create_project(request)
        body = created.body
        failpoint(self._settings, "neon.before_record")
        uris = body.get("connection_uris") or []
        await checkpoint.record(
            placement.replace(
                project_id=body["project"]["id"],
                branch_id=body["branch"]["id"],
                endpoint_id=_read_write(body.get("endpoints") or [])["id"],
            ),
            conninfo=ConnInfo.parse(uris[0]["connection_uri"]) if uris else None,
        )
        failpoint(self._settings, "neon.after_record")
        return created.operations

    async def _main_ids(self, project_id: str) -> tuple[str, str]:
        """The ids of the project's default branch and its read-write endpoint."""
        branches = await self.client.find_branches(project_id, search="")
        branch = next((b for b in branches if b.get("default")), None)
        if branch is None:
            raise ProvisioningError(f"Neon project {project_id} has no default branch")
        endpoints = await self.client.branch_endpoints(project_id, branch["id"])
        return str(branch["id"]), str(_read_write(endpoints)["id"])

    async def _find_project(self, name: str) -> dict[str, Any] | None:
        matches = [
            p
            for p in await self.client.find_projects(search=name, org_id=self._settings.neon.org_id)
            if p["name"] == name
        ]
        if len(matches) > 1:
            raise ProvisioningError(
                f"{len(matches)} Neon projects are named {name!r}; remove all but one"
            )
        return matches[0] if matches else None

    async def _create_branch(self, tenant: Tenant, checkpoint: Checkpoint) -> None:
        client = self.client
        project_id = _recorded(checkpoint, "project_id")
        branch_id = NeonPlacement.of(checkpoint.placement).branch_id
        if branch_id and await client.get_branch(project_id, branch_id) is None:
            branch_id = None
        if branch_id:
            pending = await self._operations_of(project_id, branch_id)
        else:
            pending = await self._step(
                lambda search: self._ensure_branch(checkpoint, search=search),
                resuming=checkpoint.resuming,
            )
        branch_id = _recorded(checkpoint, "branch_id")
        role, database = _recorded(checkpoint, "role"), _recorded(checkpoint, "database")
        async with client.project_lock(project_id):
            await client.wait(project_id, pending)
            await self._ensure_role(project_id, branch_id, role, check=checkpoint.resuming)
            await self._ensure_database(
                project_id, branch_id, database, role, check=checkpoint.resuming
            )
        uri = await client.connection_uri(
            project_id,
            branch_id=branch_id,
            endpoint_id=_recorded(checkpoint, "endpoint_id"),
            database=database,
            role=role,
            pooled=self._settings.neon.pooled,
        )
        await checkpoint.record(conninfo=ConnInfo.parse(uri))
        logger.info("tenant %s: Neon branch %s ready", tenant.id, branch_id)

    async def _operations_of(self, project_id: str, branch_id: str) -> list[Operation]:
        """The project's recent operations on one branch (others' are none of ours)."""
        return [op for op in await self.client.operations(project_id) if op.branch_id == branch_id]

    async def _ensure_branch(self, checkpoint: Checkpoint, *, search: bool) -> list[Operation]:
        client = self.client
        placement = NeonPlacement.of(checkpoint.placement)
        project_id = _recorded(checkpoint, "project_id")
        name = _recorded(checkpoint, "name")
        if search:
            found = [
                b for b in await client.find_branches(project_id, search=name) if b["name"] == name
            ]
            if found:
                endpoints = await client.branch_endpoints(project_id, found[0]["id"])
                await checkpoint.record(
                    placement.replace(
                        branch_id=found[0]["id"], endpoint_id=_read_write(endpoints)["id"]
                    )
                )
                return await self._operations_of(project_id, found[0]["id"])
        async with client.project_lock(project_id):
            created = await client.create_branch(
                project_id,
                {
                    "branch": {"name": name, "parent_id": placement.parent_id},
                    "endpoints": [{"type": "read_write"}],
                },
            )
            failpoint(self._settings, "neon.before_record")
            await checkpoint.record(
                placement.replace(
                    branch_id=created.body["branch"]["id"],
                    endpoint_id=_read_write(created.body.get("endpoints") or [])["id"],
                )
            )
            failpoint(self._settings, "neon.after_record")
            await client.wait(project_id, created.operations)
        return []

    async def _ensure_role(
        self, project_id: str, branch_id: str, role: str, *, check: bool
    ) -> None:
        client = self.client

        async def once(search: bool) -> None:
            if search and await client.get_role(project_id, branch_id, role) is not None:
                return
            created = await client.create_role(project_id, branch_id, role)
            await client.wait(project_id, created.operations)

        await self._step(once, resuming=check)

    async def _ensure_database(
        self, project_id: str, branch_id: str, database: str, owner: str, *, check: bool
    ) -> None:
        client = self.client

        async def once(search: bool) -> None:
            if search:
                existing = await client.get_database(project_id, branch_id, database)
                if existing is not None:
                    if existing["owner_name"] != owner:
                        raise ProvisioningError(
                            f"database {database!r} on Neon branch {branch_id} is owned by "
                            f"{existing['owner_name']!r}, not the tenant's role; remove it"
                        )
                    return
            created = await client.create_database(project_id, branch_id, database, owner)
            await client.wait(project_id, created.operations)

        await self._step(once, resuming=check)

    async def _step(self, once: Callable[[bool], Awaitable[T]], *, resuming: bool) -> T:
        """Run a make-it step once; ``once(search)`` looks first for what an earlier
        attempt may have made (a resumed create, or the lifecycle's retry of one whose
        answer never came). Retries are the lifecycle's alone: one layer, one deadline."""
        return await once(resuming)

    # -- delete, suspend, resume, describe ----------------------------------------

    async def delete(self, tenant: Tenant) -> Erasure:
        if NeonPlacement.of(tenant.placement).mode == BRANCH:
            return await self._delete_branch(tenant)
        return await self._delete_project(tenant)

    async def _delete_project(self, tenant: Tenant) -> Erasure:
        client = self.client
        placement = NeonPlacement.of(tenant.placement)
        name = placement.name or self.name_of(tenant.id)
        project_id = placement.project_id
        if project_id:
            project = await client.get_project(project_id)
        else:  # the create died before Neon's answer was recorded
            project = await self._find_project(name)
        if project is None:
            return erasure.project_already_gone()
        if project["name"] != name:
            raise ProvisioningError(
                f"Neon project {project['id']} is named {project['name']!r}, not {name!r}; "
                "refusing to delete it"
            )
        deleted = await client.delete_project(project["id"])
        logger.info("tenant %s: deleted Neon project %s", tenant.id, project["id"])
        return erasure.project_deleted(project["id"], deleted.body)

    async def _delete_branch(self, tenant: Tenant) -> Erasure:
        client = self.client
        placement = NeonPlacement.of(tenant.placement)
        project_id = placement.project_id
        if project_id is None:
            raise ProvisioningError(f"tenant {tenant.id!r} has no Neon project recorded")
        name = placement.name or self.name_of(tenant.id)
        branch_id = placement.branch_id
        branch = await client.get_branch(project_id, branch_id) if branch_id else None
        if branch is None and not branch_id:
            found = await client.find_branches(project_id, search=name)
            branch = next((b for b in found if b["name"] == name), None)
        if branch is None:
            return erasure.BRANCH_DELETED
        if branch["name"] != name or branch["id"] == placement.parent_id:
            raise ProvisioningError(
                f"Neon branch {branch['id']} is {branch['name']!r}, not tenant {tenant.id!r}'s "
                f"{name!r}; refusing to delete it"
            )
        async with client.project_lock(project_id):
            deleted = await client.delete_branch(project_id, branch["id"])
            await client.wait(project_id, deleted.operations)
        logger.info("tenant %s: deleted Neon branch %s", tenant.id, branch["id"])
        return erasure.BRANCH_DELETED

    async def suspend(self, tenant: Tenant) -> None:
        project_id, endpoint_id = _endpoint_of(tenant)
        async with self.client.project_lock(project_id):
            operations = await self.client.suspend_endpoint(project_id, endpoint_id)
            await self.client.wait(project_id, operations)

    async def resume(self, tenant: Tenant) -> None:
        project_id, endpoint_id = _endpoint_of(tenant)
        async with self.client.project_lock(project_id):
            operations = await self.client.start_endpoint(project_id, endpoint_id)
            await self.client.wait(project_id, operations)

    async def running(self, tenant: Tenant) -> bool:
        return True  # Neon runs (and restarts) the compute

    async def describe(self, tenant: Tenant) -> dict[str, Any]:
        project_id, endpoint_id = _endpoint_of(tenant)
        endpoint = await self.client.get_endpoint(project_id, endpoint_id)
        if endpoint is None:
            return {"exists": False}
        return {
            "exists": True,
            "mode": NeonPlacement.of(tenant.placement).mode,
            "project_id": project_id,
            "branch_id": endpoint["branch_id"],
            "endpoint_id": endpoint_id,
            "endpoint_state": endpoint["current_state"],
            "region": endpoint["region_id"],
            "host": endpoint["host"],
        }

    # -- probing the API -------------------------------------------------------------

    async def probe_api(self) -> ApiProbe:
        """Read, never write, one of each answer the backend relies on (``probe``)."""
        return await probe(self.client, template_project=self._settings.neon.template_project)

    # -- layout and limits ----------------------------------------------------------

    async def conform(self, tenant: Tenant, checkpoint: Checkpoint) -> None:
        pass  # Neon chooses its own names and roles: nothing to rename or add

    async def set_limits(self, tenant: Tenant, limits: RoleLimits) -> None:
        # The role is Neon's; its compute size bounds connections. The timeouts still
        # reach the router's connections (connection options).
        logger.info("tenant %s: Neon roles keep Neon's connection limits", tenant.id)

    # -- reconcile ----------------------------------------------------------------

    async def list_resources(self) -> list[OwnedResource]:
        """Prefixed projects (and branches of the template project) on the Neon account."""
        if not self.configured:
            return []
        client = self.client
        prefix = self._settings.neon.name_prefix
        found: list[OwnedResource] = []
        for project in await client.find_projects(search=prefix, org_id=self._settings.neon.org_id):
            if project["name"].startswith(prefix):
                found.append(
                    OwnedResource(
                        backend=self.kind,
                        kind="project",
                        name=project["id"],
                        location=project["region_id"],
                        tenant_id=self.tenant_of(project["name"]),
                    )
                )
        template = self._settings.neon.template_project
        if template:
            for branch in await client.find_branches(template, search=prefix):
                if branch["name"].startswith(prefix):
                    found.append(
                        OwnedResource(
                            backend=self.kind,
                            kind="branch",
                            name=branch["id"],
                            location=template,
                            tenant_id=self.tenant_of(branch["name"]),
                        )
                    )
        return found

    async def remove_resource(self, resource: OwnedResource) -> None:
        client = self.client
        if resource.kind == "project":
            await client.delete_project(resource.name)  # soft: recoverable for a while
        elif resource.kind == "branch":
            async with client.project_lock(resource.location):
                deleted = await client.delete_branch(resource.location, resource.name)
                await client.wait(resource.location, deleted.operations)
        else:
            raise ProvisioningError(f"unknown Neon resource kind {resource.kind!r}")


def _read_write(endpoints: list[dict[str, Any]]) -> dict[str, Any]:
    for endpoint in endpoints:
        if endpoint.get("type") == "read_write":
            return endpoint
    raise ProvisioningError("Neon made no read-write compute endpoint for the tenant")


def _endpoint_of(tenant: Tenant) -> tuple[str, str]:
    placement = NeonPlacement.of(tenant.placement)
    project_id, endpoint_id = placement.project_id, placement.endpoint_id
    if not project_id or not endpoint_id:
        raise ProvisioningError(f"tenant {tenant.id!r} has no Neon compute endpoint recorded")
    return project_id, endpoint_id


def _recorded(checkpoint: Checkpoint, key: str) -> str:
    """A fact of the tenant's Neon placement that this step needs recorded already (an
    earlier step of the create wrote it)."""
    value = getattr(NeonPlacement.of(checkpoint.placement), key)
    if value is None:
        raise ProvisioningError(
            f"tenant {checkpoint.tenant.id!r} has no Neon {key} recorded; run reconcile"
        )
    return str(value)
