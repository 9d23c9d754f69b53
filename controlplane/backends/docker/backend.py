"""The ``docker`` backend: a container per tenant from the pgvector image.

Each tenant gets a container ``tenantvec-<tenant id>-<suffix>`` (a new suffix for every
tenant made with that id) running ``TENANTVEC_DOCKER_IMAGE`` (Postgres + pgvector), its
data in the named volume ``<container>-data``, its port published on 127.0.0.1
(reserved like an instance's, ``lifecycle.ports``), sized by the tenant's
:class:`ComputeSpec` through ``postgres -c`` arguments. Its superuser password lives in
``TENANTVEC_HOME/docker/<container>/superuser.password`` (0600); the tenant's role and
database are made as on any server (``lifecycle.tenantdb``).

Suspend stops the container, resume starts it; the control plane restarts one that
died, like an instance. Where no Docker engine answers, :meth:`plan` refuses at once,
so nothing is written to the catalog.

The Docker SDK is synchronous (every call runs in a thread) and imported on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import time
from typing import Any

from controlplane.backends._tenantdb import apply_limits, provision_own_server
from controlplane.backends.base import Checkpoint, OwnedResource, ProvisionPlan
from controlplane.backends.markers import LAYOUT, owner_role
from controlplane.backends.ports import PortRegistry, own_server_name
from controlplane.dsn import ConnInfo
from controlplane.errors import BackendUnavailable, NotConfigured, ProvisioningError
from controlplane.localpg.cluster import LISTEN_HOST, SUPERUSER
from controlplane.model.backends import BackendKind
from controlplane.model.compute import ComputeSpec
from controlplane.model.erasure import Erasure
from controlplane.model.limits import RoleLimits
from controlplane.model.placement import DockerPlacement
from controlplane.model.records import Server, Tenant
from controlplane.model.request import TenantRequest
from controlplane.pgconnect import connect
from controlplane.secretbox import new_password, read_or_create_secret_file
from controlplane.settings import Settings

__all__ = ["DockerBackend"]

logger = logging.getLogger(__name__)

_LABEL = "tenantvec.tenant"
_UID_LABEL = "tenantvec.uid"
_DATA_MOUNT = "/var/lib/postgresql"  # the pgvector (postgres) image's data volume
_READY_TIMEOUT = 120.0  # the first start runs initdb inside the container
_API_TIMEOUT = 30
_NO_SOCKET = "no such socket"


class DockerBackend:
    kind = BackendKind.DOCKER
    uses_servers = False
    regional = False
    sized = True
    supervises = True
    session_options = True

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.retry_seconds = settings.retry_seconds
        self._ports = PortRegistry(settings)
        self._dir = self._ports.directory("docker")
        self._client: Any = None  # docker.DockerClient, connected on first use

    async def plan(self, request: TenantRequest, server: Server | None) -> ProvisionPlan:
        compute = request.compute(self._settings.default_tier)
        await asyncio.to_thread(self._docker)  # refuse now if no engine answers
        container = f"tenantvec-{own_server_name(request.id)}"
        return ProvisionPlan(
            server=None,
            placement=DockerPlacement(
                container=container,
                volume=_volume_name(container),
                image=self._settings.docker.image,
                compute=compute.to_json(),
            ),
            conninfo=None,
        )

    async def create(self, tenant: Tenant, checkpoint: Checkpoint) -> None:
        root = self._dir / _name(tenant)
        placement = DockerPlacement.of(checkpoint.placement)
        if placement.port is None:
            port = await asyncio.to_thread(self._ports.reserve, root, tenant)
            await checkpoint.record(placement.replace(port=port))
        await asyncio.to_thread(self._ensure_container, checkpoint.tenant)
        await self._provision(checkpoint)

    async def delete(self, tenant: Tenant) -> Erasure:
        await asyncio.to_thread(self._remove, _name(tenant), tenant.uid)
        return Erasure(
            immediate=True,
            detail="the tenant's container and its data volume were removed",
        )

    async def conform(self, tenant: Tenant, checkpoint: Checkpoint) -> None:
        if tenant.where.layout >= LAYOUT:
            return
        await self._provision(checkpoint)

    async def set_limits(self, tenant: Tenant, limits: RoleLimits) -> None:
        where = f"container {_name(tenant)!r}"
        async with connect(
            self._admin(tenant), where=where, timeout=self._settings.connect_timeout
        ) as conn:
            await apply_limits(conn, owner_role(tenant), limits)

    async def suspend(self, tenant: Tenant) -> None:
        container = await asyncio.to_thread(self._container, _name(tenant))
        if container is not None:
            await asyncio.to_thread(container.stop, timeout=30)

    async def resume(self, tenant: Tenant) -> None:
        container = await asyncio.to_thread(self._container, _name(tenant))
        if container is None:
            raise ProvisioningError(
                f"tenant {tenant.id!r}'s container is gone; delete the tenant and create it again"
            )
        await asyncio.to_thread(container.start)
        await self._wait_ready(tenant, self._admin(tenant))

    async def running(self, tenant: Tenant) -> bool:
        container = await asyncio.to_thread(self._container, _name(tenant))
        return container is not None and container.status == "running"

    async def describe(self, tenant: Tenant) -> dict[str, Any]:
        container = await asyncio.to_thread(self._container, _name(tenant))
        if container is None:
            return {"exists": False}
        recorded = DockerPlacement.of(tenant.placement)
        return {
            "exists": True,
            "running": container.status == "running",
            "container": container.name,
            "status": container.status,
            "image": self._settings.docker.image,
            "port": recorded.port,
            "started_at": container.attrs.get("State", {}).get("StartedAt"),
            "compute": ComputeSpec.from_json(recorded.compute).to_json(),
        }

    async def list_resources(self) -> list[OwnedResource]:
        if not await asyncio.to_thread(self._engine_answers):
            return []  # no engine, no containers; tenants' rows say what should exist
        containers = await asyncio.to_thread(
            lambda: self._docker().containers.list(all=True, filters={"label": _LABEL})
        )
        return [
            OwnedResource(
                backend=self.kind,
                kind="container",
                name=c.name,
                location="docker",
                tenant_id=c.labels.get(_LABEL),
                tenant_uid=c.labels.get(_UID_LABEL),
            )
            for c in containers
        ]

    async def remove_resource(self, resource: OwnedResource) -> None:
        await asyncio.to_thread(self._remove, resource.name, None)

    async def aclose(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)

    async def _provision(self, checkpoint: Checkpoint) -> None:
        """Wait for the tenant's container to answer, then make its roles and database."""
        tenant = checkpoint.tenant
        admin = self._admin(tenant)
        await self._wait_ready(tenant, admin)
        await provision_own_server(
            admin,
            checkpoint,
            where=f"container {_name(tenant)!r}",
            timeout=self._settings.connect_timeout,
        )

    # -- internals (run in threads) ----------------------------------------------------

    def _docker(self) -> Any:
        if self._client is None:
            host = self._settings.docker.host
            # Probe a unix socket ourselves first: the SDK leaks its socket when the
            # engine is not there, which is the common case on machines without Docker.
            problem = _unix_socket_problem(host)
            client = None
            try:
                if problem is None:
                    client = _sdk().DockerClient(base_url=host, timeout=_API_TIMEOUT)
                    client.ping()
            except _sdk().errors.DockerException as exc:
                if client is not None:
                    client.close()
                problem = _short(exc)
            if problem is not None:
                message = (
                    f"the docker backend needs a Docker engine and none answers at {host} "
                    f"({problem}); start Docker or set TENANTVEC_DOCKER_HOST, or use "
                    "--backend instance"
                )
                if problem == _NO_SOCKET:
                    # No engine on this machine at all: retrying will not help.
                    raise NotConfigured(message)
                raise BackendUnavailable(message)
            self._client = client
        return self._client

    def _engine_answers(self) -> bool:
        try:
            self._docker()
        except (BackendUnavailable, NotConfigured):
            return False
        return True

    def _container(self, name: str) -> Any:
        try:
            return self._docker().containers.get(name)
        except _sdk().errors.NotFound:
            return None

    def _ensure_container(self, tenant: Tenant) -> None:
        name = _name(tenant)
        existing = self._container(name)
        if existing is not None:
            if existing.labels.get(_UID_LABEL) != tenant.uid:
                raise ProvisioningError(
                    f"container {existing.name!r} belongs to another tenant; remove it with "
                    "'tenantctl reconcile --fix'"
                )
            if existing.status != "running":
                existing.start()
            return
        client = self._docker()
        image = self._settings.docker.image
        try:
            client.images.get(image)
        except _sdk().errors.ImageNotFound:
            logger.info("pulling %s", image)
            client.images.pull(image)
        compute = ComputeSpec.from_json(DockerPlacement.of(tenant.placement).compute)
        command = ["postgres"]
        for name, value in compute.server_settings().items():
            command += ["-c", f"{name}={value}"]
        password = self._password(name)
        client.containers.run(
            image,
            command=command,
            name=name,
            detach=True,
            environment={
                "POSTGRES_USER": SUPERUSER,
                "POSTGRES_PASSWORD": password,
                "POSTGRES_DB": "postgres",
                "POSTGRES_INITDB_ARGS": "--auth=scram-sha-256",
            },
            labels={_LABEL: tenant.id, _UID_LABEL: tenant.uid},
            ports={"5432/tcp": (LISTEN_HOST, _port(tenant))},
            volumes={_volume_name(name): {"bind": _DATA_MOUNT, "mode": "rw"}},
            # Docker does not restart it: the control plane does, and records it.
            restart_policy={"Name": "no"},
        )
        logger.info("tenant %s: container started", tenant.id)

    def _remove(self, name: str, uid: str | None) -> None:
        container = self._container(name)
        if container is not None:
            if uid is not None and container.labels.get(_UID_LABEL) not in (None, uid):
                raise ProvisioningError(
                    f"container {container.name!r} belongs to another tenant; not removing it"
                )
            container.remove(force=True, v=True)
        with contextlib.suppress(_sdk().errors.NotFound):
            self._docker().volumes.get(_volume_name(name)).remove(force=True)
        shutil.rmtree(self._dir / name, ignore_errors=True)

    def _password(self, name: str) -> str:
        root = self._dir / name
        root.mkdir(parents=True, exist_ok=True)
        return read_or_create_secret_file(root / "superuser.password", new_password)

    def _admin(self, tenant: Tenant) -> ConnInfo:
        return ConnInfo(
            host=LISTEN_HOST,
            port=_port(tenant),
            user=SUPERUSER,
            dbname="postgres",
            password=self._password(_name(tenant)),
        )

    async def _wait_ready(self, tenant: Tenant, admin: ConnInfo) -> None:
        where = f"container {_name(tenant)!r}"
        deadline = time.monotonic() + _READY_TIMEOUT
        while True:
            try:
                async with connect(admin, where=where, timeout=2) as conn:
                    await conn.execute("SELECT 1")
                    return
            except BackendUnavailable:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)


def _sdk() -> Any:
    """The Docker SDK, imported on first use: most processes never need it (and its
    import costs a tenth of a second at every CLI start)."""
    import docker
    import docker.errors

    return docker


def _name(tenant: Tenant) -> str:
    """The tenant's container name, as its placement records it."""
    container = DockerPlacement.of(tenant.placement).container
    if container is None:
        raise ProvisioningError(f"tenant {tenant.id!r} has no container in the catalog")
    return container


def _port(tenant: Tenant) -> int:
    """The port its container publishes on the loopback interface, as recorded."""
    port = DockerPlacement.of(tenant.placement).port
    if port is None:
        raise ProvisioningError(f"tenant {tenant.id!r} has no container port in the catalog")
    return port


def _volume_name(container: str) -> str:
    return f"{container}-data"


def _unix_socket_problem(host: str) -> str | None:
    """Why the engine's unix socket takes no connection; None if it does (or is not one)."""
    if not host.startswith("unix://"):
        return None
    path = host.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(path)
        except FileNotFoundError:
            return _NO_SOCKET
        except OSError as exc:
            return exc.strerror or type(exc).__name__
    return None


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
