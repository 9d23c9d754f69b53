"""tenantvec's pytest plugin: a throwaway tenant database for a test or a session.

Installed with tenantvec (entry point ``pytest11``), it adds fixtures and does nothing
until a test asks for one -- it imports nothing but pytest until then. The fixtures need
the control plane: ``pip install 'tenantvec[server]'`` (a test that asks for one in a
client-only install fails with that line).

- ``tenantvec_tenant``: a fresh tenant for one test -- ``.id``, ``.dsn`` (its own role),
  ``.api_key``, ``.api_url``, ``.client()`` -- deleted after it. Options of the tenant
  come from ``@pytest.mark.tenantvec(dims=8, embedder="hash", ...)``.
- ``tenantvec_client``: that tenant's ready :class:`~controlplane.client.Client`.
- ``tenantvec_session_tenant``: one tenant shared by the whole session.
- ``tenantvec``: the :class:`~controlplane.testing.Harness` itself, for tests that want
  several tenants (``with tenantvec.tenant(dims=3) as t:``).

Where the tenants live (``--tenantvec``, or ``TENANTVEC_TEST_MODE``):

- ``embedded`` (default): an embedded Postgres of the session's own in a temporary
  home, with an API server on a free port; both stopped and removed at the end.
- ``settings``: the control plane the ``TENANTVEC_*`` variables describe (its catalog,
  home, secret key) -- a shared CI server, say. Clients go to ``--tenantvec-api-url``
  (``TENANTVEC_TEST_API_URL``) or, without one, to an API served in the test process.

Every tenant expires (``--tenantvec-ttl``, default 1h) and is labelled
``created-by=pytest``: a run that dies before its teardown leaves tenants that
``tenantctl gc`` deletes once they expire.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from controlplane.extras import missing_server_extra

if TYPE_CHECKING:
    from controlplane.client import Client
    from controlplane.settings import Settings
    from controlplane.testing.harness import Harness, ThrowawayTenant

MODES = ("embedded", "settings")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tenantvec", "throwaway tenant databases (tenantvec)")
    group.addoption(
        "--tenantvec",
        dest="tenantvec_mode",
        choices=MODES,
        default=None,
        help="Where tenantvec fixtures create tenants: embedded (a throwaway embedded "
        "Postgres, the default) or settings (the control plane of the TENANTVEC_* "
        "variables). Env: TENANTVEC_TEST_MODE.",
    )
    group.addoption(
        "--tenantvec-api-url",
        dest="tenantvec_api_url",
        default=None,
        help="With --tenantvec=settings: the running API clients talk to (default: serve "
        "one in the test process). Env: TENANTVEC_TEST_API_URL.",
    )
    group.addoption(
        "--tenantvec-ttl",
        dest="tenantvec_ttl",
        default=None,
        help="Expiry of each tenant, for 'tenantctl gc' after a run that died (default 1h). "
        "Env: TENANTVEC_TEST_TTL.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tenantvec(**options): options of the tenant that tenantvec_tenant creates, as "
        "POST /v1/tenants takes them (dims, embedder, index, labels, ...)",
    )


def _option(config: pytest.Config, name: str, env: str) -> str | None:
    value = config.getoption(name)
    return str(value) if value is not None else os.environ.get(env) or None


@pytest.fixture(scope="session")
def tenantvec_settings() -> Settings | None:
    """The control plane to create tenants on. Override it in a conftest.py to pick
    settings in code; None (the default) leaves the choice to ``--tenantvec``."""
    return None


@pytest.fixture(scope="session")
def tenantvec_api_url(request: pytest.FixtureRequest) -> str | None:
    """The running API that clients talk to; None: serve one in the test process.
    Override it alongside ``tenantvec_settings`` to name one in code."""
    return _option(request.config, "tenantvec_api_url", "TENANTVEC_TEST_API_URL")


@pytest.fixture(scope="session")
def tenantvec(
    request: pytest.FixtureRequest,
    tenantvec_settings: Settings | None,
    tenantvec_api_url: str | None,
) -> Iterator[Harness]:
    """The session's harness: started when a test first needs a tenant, closed at the
    end of the session (deleting any tenant still live)."""
    try:
        from controlplane.testing.harness import Harness  # loaded when a test needs it
    except ModuleNotFoundError as exc:
        missing = missing_server_extra(exc, "tenantvec's pytest plugin")
        if missing is None:
            raise
        pytest.fail(str(missing), pytrace=False)

    config = request.config
    mode = _option(config, "tenantvec_mode", "TENANTVEC_TEST_MODE") or "embedded"
    if mode not in MODES:
        raise pytest.UsageError(f"TENANTVEC_TEST_MODE must be one of {', '.join(MODES)}")
    api_url = tenantvec_api_url
    ttl = _option(config, "tenantvec_ttl", "TENANTVEC_TEST_TTL") or "1h"
    if tenantvec_settings is not None or mode == "settings":
        from controlplane.settings import Settings

        harness = Harness(tenantvec_settings or Settings.from_env(), api_url=api_url, ttl=ttl)
    else:
        if api_url:
            raise pytest.UsageError(
                "--tenantvec-api-url needs --tenantvec=settings: an embedded run serves its own API"
            )
        harness = Harness.throwaway(ttl=ttl)
    with harness:
        yield harness


@pytest.fixture
def tenantvec_tenant(
    tenantvec: Harness, request: pytest.FixtureRequest
) -> Iterator[ThrowawayTenant]:
    """A fresh tenant for this test, deleted after it; options from the test's
    ``@pytest.mark.tenantvec(...)`` marker."""
    marker = request.node.get_closest_marker("tenantvec")
    if marker is not None and marker.args:
        raise pytest.UsageError("@pytest.mark.tenantvec takes keyword options only")
    with tenantvec.tenant(**(marker.kwargs if marker else {})) as tenant:
        yield tenant


@pytest.fixture
def tenantvec_client(tenantvec_tenant: ThrowawayTenant) -> Client:
    """A sync API client holding ``tenantvec_tenant``'s key."""
    return tenantvec_tenant.client()


@pytest.fixture(scope="session")
def tenantvec_session_tenant(tenantvec: Harness) -> Iterator[ThrowawayTenant]:
    """One tenant for the whole session (default options), deleted at its end."""
    with tenantvec.tenant() as tenant:
        yield tenant
