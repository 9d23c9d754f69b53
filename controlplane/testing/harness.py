"""A control plane for a test run: throwaway tenants on demand, from any thread.

:class:`Harness` owns an event loop on a thread of its own. On it runs a
:class:`ControlPlane` opened from the given settings -- starting the embedded Postgres
when those settings hold no catalog URL -- and, unless an API URL is given, a tenantvec
API server on a free loopback port. Tests (sync or async, on any loop) call it through
plain methods that hand the work to that loop: nothing here shares a loop with a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import string
import threading
from collections.abc import Awaitable, Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from controlplane.errors import ConfigurationError, InvalidRequest, TenantNotFound
from controlplane.model.request import TenantOptions
from controlplane.settings import Settings
from controlplane.testing._reaper import OwnerLock, make_home, reap, start_watchdog
from controlplane.testing.servers import throwaway_settings

if TYPE_CHECKING:
    import uvicorn

    from controlplane.client import AsyncClient, Client
    from controlplane.plane import ControlPlane

__all__ = ["Harness", "ThrowawayTenant"]


T = TypeVar("T")
ACTOR = "pytest"
# What a tenant made here is labelled with, so that an operator can find (and a run's
# teardown delete) every one: tenantctl tenants list --label created-by=pytest.
CREATED_BY = {"created-by": "pytest"}
_ID_ALPHABET = string.ascii_lowercase + string.digits
_START_TIMEOUT = 120.0
_CALL_TIMEOUT = 300.0


@dataclass
class ThrowawayTenant:
    """A tenant database for one test (or one session): its id, its own DSN, an API key
    bound to it, and the API's URL. ``client()`` is ready to use and closed with it."""

    id: str
    dsn: str = field(repr=False)  # the tenant role's password is in it
    api_key: str = field(repr=False)
    api_url: str  # the running API given, or the one the harness serves
    _clients: list[Client] = field(default_factory=list, repr=False)

    def client(self) -> Client:
        """A sync :class:`~controlplane.client.Client` with this tenant's key (closed at
        teardown)."""
        from controlplane.client import Client

        client = Client(self.api_url, self.api_key)
        self._clients.append(client)
        return client

    def async_client(self) -> AsyncClient:
        """An :class:`~controlplane.client.AsyncClient` with this tenant's key; use it as
        ``async with tenant.async_client() as client:`` on the test's own loop."""
        from controlplane.client import AsyncClient

        return AsyncClient(self.api_url, self.api_key)

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()


class Harness:
    """Throwaway tenants on one control plane; ``start()`` it, ``close()`` it."""

    def __init__(
        self,
        settings: Settings,
        *,
        api_url: str | None = None,
        ttl: str = "1h",
        owned_home: tuple[Path, OwnerLock] | None = None,
    ) -> None:
        """``api_url``: a running API to hand clients to (None: serve one here).
        ``ttl``: every tenant's expiry, so that ``tenantctl gc`` deletes what a run
        that died left. ``owned_home``: a throwaway home (and its owner lock) to stop
        and remove at close -- or, should this process die, that its watchdog reaps."""
        self.settings = settings
        self.api_url = api_url
        self.ttl = ttl
        self._owned_home = owned_home
        # Made by start(): a harness never started holds no loop and no thread.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._plane: ControlPlane | None = None
        self._server: uvicorn.Server | None = None
        self._stack = contextlib.AsyncExitStack()
        self._live: dict[str, ThrowawayTenant] = {}

    @classmethod
    def throwaway(cls, base: Settings | None = None, **options: Any) -> Harness:
        """A harness on an embedded server of its own in a temporary home, stopped and
        removed at close -- what the pytest plugin uses unless told otherwise. ``base``
        (default: the TENANTVEC_* environment) gives every other setting: embedder,
        provider keys, tiers."""
        home, lock = make_home()
        settings = throwaway_settings(home, base=base or Settings.from_env())
        return cls(settings, owned_home=(home, lock), **options)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Harness:
        """Start the control plane (and its API); a start that fails leaves nothing."""
        if self._thread is not None:
            raise RuntimeError("this harness is started already")
        if self._owned_home is not None:
            start_watchdog(self._owned_home[0])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tenantvec-harness", daemon=True
        )
        self._thread.start()
        try:
            self._call(self._open(), _START_TIMEOUT)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Delete every tenant still live, stop what was started here."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            self._remove_owned_home()
            return
        for tenant in list(self._live.values()):
            with contextlib.suppress(Exception):  # close the rest even if one fails
                self.drop(tenant)
        try:
            self._call(self._stack.aclose(), _CALL_TIMEOUT)
            self._call(loop.shutdown_asyncgens(), _CALL_TIMEOUT)
            self._call(loop.shutdown_default_executor(), _CALL_TIMEOUT)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            if not thread.is_alive():
                loop.close()
            self._remove_owned_home()

    def _remove_owned_home(self) -> None:
        """Stop what a throwaway home runs (if it ever started) and remove it; then let
        go of its lock, which ends its watchdog."""
        if self._owned_home is None:
            return
        home, lock = self._owned_home
        self._owned_home = None
        try:
            reap(home, self.settings)
        finally:
            lock.release()

    def __enter__(self) -> Harness:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- tenants ---------------------------------------------------------------------

    def new_tenant(self, **options: Any) -> ThrowawayTenant:
        """Create a tenant with ``options`` (those of ``POST /v1/tenants``: dims,
        embedder, index, labels, ...; id and ttl have defaults) and a key for it."""
        fields: dict[str, Any] = {"id": _tenant_id(), "ttl": self.ttl, **options}
        fields["labels"] = {**CREATED_BY, **fields.get("labels", {})}
        try:
            request = msgspec.convert(fields, TenantOptions).to_request()
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"tenant options: {exc}") from None
        tenant = self._call(self._create(request), _CALL_TIMEOUT)
        self._live[tenant.id] = tenant
        return tenant

    def drop(self, tenant: ThrowawayTenant) -> None:
        """Delete the tenant (DROP DATABASE and ROLE); a tenant already gone is fine."""
        tenant.close()
        self._live.pop(tenant.id, None)
        self._call(self._delete(tenant.id), _CALL_TIMEOUT)

    @contextlib.contextmanager
    def tenant(self, **options: Any) -> Iterator[ThrowawayTenant]:
        """``with harness.tenant(dims=8) as t:`` -- created, then deleted."""
        created = self.new_tenant(**options)
        try:
            yield created
        finally:
            self.drop(created)

    # -- on the harness's loop ------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("start() the harness first")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    async def _open(self) -> None:
        from controlplane.plane import ControlPlane

        self._plane = await self._stack.enter_async_context(ControlPlane.open(self.settings))
        if self.api_url is None:
            self.api_url = await self._serve()

    async def _serve(self) -> str:
        import uvicorn

        from controlplane.api import create_app

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        port = int(listener.getsockname()[1])
        config = uvicorn.Config(create_app(self.settings), log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        self._stack.push_async_callback(_stop_server, server, serving, listener)
        while not server.started:
            if serving.done():
                serving.result()  # raises why it did not start
                raise ConfigurationError("the tenantvec API stopped before it started")
            await asyncio.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    async def _create(self, request: Any) -> ThrowawayTenant:
        from controlplane.keys import create_key
        from controlplane.lifecycle.tenants import create_tenant

        plane = self._require_plane()
        tenant = await create_tenant(plane, request, actor=ACTOR)
        try:
            issued = await create_key(plane, tenant.id, actor=ACTOR, name="pytest")
        except BaseException:
            await self._delete(tenant.id)
            raise
        if self.api_url is None:
            raise ConfigurationError("the harness is not started: call start() first")
        return ThrowawayTenant(
            id=tenant.id,
            dsn=plane.tenant_conninfo(tenant).dsn,
            api_key=issued.secret,
            api_url=self.api_url,
        )

    async def _delete(self, tenant_id: str) -> None:
        from controlplane.lifecycle.tenants import delete_tenant

        with contextlib.suppress(TenantNotFound):
            await delete_tenant(self._require_plane(), tenant_id, actor=ACTOR)

    def _require_plane(self) -> ControlPlane:
        if self._plane is None:
            raise ConfigurationError("the harness is not started: call start() first")
        return self._plane


async def _stop_server(
    server: uvicorn.Server, serving: Awaitable[None], listener: socket.socket
) -> None:
    server.should_exit = True
    await serving
    listener.close()


def _tenant_id() -> str:
    return "pytest-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))
