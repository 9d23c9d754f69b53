"""The Neon client: neon-api's pitfalls, the fake's fidelity, and the rate limiter."""

from __future__ import annotations

import logging

import neon_api
import pytest
from neon_api import schema

from controlplane.backends.neon.client import NeonClient, normalise_base_url
from controlplane.backends.neon.ratelimit import NeonRateLimiter, SlidingWindow
from controlplane.errors import (
    BackendUnavailable,
    ConfigurationError,
    NotConfigured,
    ProvisioningError,
)
from controlplane.settings import Settings
from tests.fakes.neon import FakeNeon, Fault
from tests.fixtures.fakes import neon_settings


def test_the_fake_answers_validate_against_neon_apis_own_models(fake_neon: FakeNeon) -> None:
    # neon-api's modelled methods parse every answer into neon_api.schema classes; any
    # missing required field or bad enum value in the fake would raise here.
    api = neon_api.NeonAPI(fake_neon.api_key, base_url=fake_neon.url + "/")
    created = api.project_create(project={"name": "fidelity", "region_id": "aws-eu-west-2"})
    assert isinstance(created, schema.ProjectResponse)
    project_id = created.project.id
    listed = api.projects()
    assert isinstance(listed, schema.ProjectsResponse) and listed.projects[0].id == project_id
    branches = api.branches(project_id)
    assert isinstance(branches, schema.BranchesResponse)
    main = branches.branches[0]
    endpoint = api.endpoints(project_id).endpoints[0]
    assert endpoint.current_state is schema.EndpointState.active
    operations = api.operations(project_id).operations
    assert {o.action for o in operations} == {
        schema.OperationAction.create_timeline,
        schema.OperationAction.start_compute,
    }
    assert isinstance(api.operation(project_id, operations[0].id), schema.OperationResponse)
    uri = api.connection_uri(project_id, database_name="neondb", role_name="neondb_owner")
    assert isinstance(uri, schema.ConnectionURIResponse) and uri.uri.startswith("postgresql://")
    with pytest.raises(neon_api.NeonAPIError, match="project already has running operations"):
        api.branch_create(project_id, branch={"name": "too-soon"})  # 423 while ops run
    fake_neon.projects[project_id].operations.clear()
    branch = api.branch_create(
        project_id,
        branch={"name": "child", "parent_id": main.id},
        endpoints=[{"type": "read_write"}],
    )
    assert isinstance(branch, schema.BranchOperations) and branch.operations
    fake_neon.projects[project_id].operations.clear()
    role = api.role_create(project_id, branch.branch.id, "reader")
    assert isinstance(role, schema.RoleOperations) and role.role.password
    fake_neon.projects[project_id].operations.clear()
    database = api.database_create(
        project_id, branch.branch.id, database={"name": "docs", "owner_name": "reader"}
    )
    assert isinstance(database, schema.DatabaseResponse)  # neon-api drops its operations
    fake_neon.projects[project_id].operations.clear()
    suspended = api.endpoint_suspend(project_id, endpoint.id)
    assert isinstance(suspended, schema.EndpointOperations)
    assert suspended.endpoint.current_state is schema.EndpointState.idle
    fake_neon.projects[project_id].operations.clear()
    assert isinstance(api.branch_delete(project_id, branch.branch.id), schema.BranchOperations)
    fake_neon.projects[project_id].operations.clear()
    assert isinstance(api.project_delete(project_id), schema.ProjectResponse)


def test_neon_api_pitfalls_that_the_client_works_around(
    pg_settings: Settings, fake_neon: FakeNeon
) -> None:
    # 1. base_url must end with '/': without it neon-api glues paths onto 'v2'.
    bare = neon_api.NeonAPI(fake_neon.api_key, base_url=fake_neon.url)
    with pytest.raises(neon_api.NeonAPIError):
        bare.projects()
    assert normalise_base_url(fake_neon.url) == fake_neon.url + "/"
    # 2. NeonAPIError carries the body only: no status code to tell 423 from 400.
    api = neon_api.NeonAPI(fake_neon.api_key, base_url=fake_neon.url + "/")
    with pytest.raises(neon_api.NeonAPIError) as refused:
        api.project("no-such-project")
    assert refused.value.response is None
    # 3. The models drop what a mutation answered beyond their fields.
    created = api.project_create(project={"name": "pitfall"})
    assert not hasattr(created, "connection_uris") and not hasattr(created, "operations")


async def test_the_client_keeps_status_codes_and_the_fields_neon_api_drops(
    pg_settings: Settings, fake_neon: FakeNeon
) -> None:
    client = NeonClient(neon_settings(pg_settings, fake_neon))
    try:
        created = await client.create_project({"name": "typed", "region_id": "aws-us-east-1"})
        assert created.body["connection_uris"][0]["connection_uri"].startswith("postgresql://")
        assert [o.action.value for o in created.operations] == ["create_timeline", "start_compute"]
        project_id = created.body["project"]["id"]
        await client.wait(project_id, created.operations)
        assert await client.get_project("no-such-project") is None  # a 404, told apart
        with pytest.raises(ProvisioningError, match="400 region 'nowhere' is not available"):
            await client.create_project({"name": "bad", "region_id": "nowhere"})
        fake_neon.fail_next(Fault(status=503, method="GET"), Fault(status=503, method="GET"))
        assert (await client.get_project(project_id) or {})["name"] == "typed"  # retried
        assert client.calls["project"] == 4  # one 404, two 503s, one answer
        assert await client.delete_project(project_id) is True
        assert await client.delete_project(project_id) is False  # already gone
    finally:
        client.close()


async def test_retries_are_bounded_and_keys_stay_secret(
    pg_settings: Settings, fake_neon: FakeNeon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = NeonClient(neon_settings(pg_settings, fake_neon, neon_retry_seconds=1.0))
    try:
        fake_neon.fail_next(*[Fault(status=429, method="GET")] * 50)
        with pytest.raises(BackendUnavailable, match="429"):
            await client.find_projects(search="x", org_id=None)
    finally:
        client.close()
    wrong = NeonClient(neon_settings(pg_settings, fake_neon, neon_api_key="napi_secret_wrong"))
    try:
        with pytest.raises(ConfigurationError, match="refused the API key") as refused:
            await wrong.get_project("anything")
    finally:
        wrong.close()
    assert "napi_secret_wrong" not in str(refused.value) + caplog.text
    assert fake_neon.api_key not in caplog.text


def test_no_api_key_is_a_configuration_error(pg_settings: Settings) -> None:
    with pytest.raises(NotConfigured, match="TENANTVEC_NEON_API_KEY"):
        NeonClient(pg_settings)


def test_sliding_window_counts_events_in_any_window() -> None:
    window = SlidingWindow(3, 1.0)
    for at in (0.0, 0.1, 0.2):
        assert window.wait_time(at) == 0
        window.record(at)
    assert window.wait_time(0.5) == pytest.approx(0.5)  # until the event at 0.0 leaves
    assert window.wait_time(1.0) == 0
    with pytest.raises(ValueError):
        SlidingWindow(0, 1.0)


async def test_the_limiter_holds_a_burst_to_both_limits() -> None:
    now = [0.0]
    sent: list[tuple[float, str]] = []

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = NeonRateLimiter(10, 4, clock=lambda: now[0], sleep=sleep)
    for i in range(30):
        route = "project_create" if i % 3 else "operation"
        await limiter.acquire(route)
        sent.append((now[0], route))
    times = [t for t, _ in sent]
    # never more than 10 in any 60 s, nor 4 on one route in any second
    assert all(sum(1 for t in times if s <= t < s + 60) <= 10 for s in times)
    for route in ("project_create", "operation"):
        mine = [t for t, r in sent if r == route]
        assert all(sum(1 for t in mine if s <= t < s + 1) <= 4 for s in mine)
    assert times[10] >= 60.0 and times[-1] < 3 * 61.0 + 1  # waited, but no longer than needed
    assert limiter.waited_seconds > 0
