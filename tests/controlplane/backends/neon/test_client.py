"""The Neon client against the fake held to Neon's published spec: what Neon sends
today, what it does that bit us, and the rate limiter."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from controlplane.backends.neon._client import NeonClient, normalise_base_url
from controlplane.backends.neon._errors import NeonOutcomeUnknown, NeonRefused
from controlplane.backends.neon._ratelimit import NeonRateLimiter, SlidingWindow
from controlplane.errors import (
    BackendUnavailable,
    ConfigurationError,
    NotConfigured,
    ProvisioningError,
)
from controlplane.lifecycle._retry import with_retries
from controlplane.settings import Settings
from tests.fakes.neon import FakeNeon, Fault
from tests.fakes.neon_spec import Answer, NeonSpec
from tests.fixtures.fakes import neon_settings


def test_the_spec_check_catches_what_the_old_fake_got_wrong() -> None:
    spec = NeonSpec.load()
    ok = {"code": "", "message": "x", "request_id": "r"}
    assert spec.problems(Answer("GET", "projects/p-1", 404, ok, "application/json")) == []
    assert spec.problems(Answer("DELETE", "projects/p/branches/br-1", 204, None, None)) == []
    op = {
        "id": "3f1d8a52-0000-4000-8000-000000000000",
        "project_id": "p-1",
        "branch_id": None,  # the old fake: null where Neon omits the member
        "action": "create_timeline",
        "status": "finished",
        "failures_count": 0,
        "created_at": "2026-12-01T00:00:00Z",
        "updated_at": "2026-12-01T00:00:00Z",
        "total_duration_ms": 1,
    }
    listed = {"operations": [op], "pagination": {"cursor": ""}}  # and an empty cursor
    found = spec.problems(Answer("GET", "projects/p-1/operations", 200, listed, "application/json"))
    assert any("branch_id" in f and "None is not of type" in f for f in found)
    assert any("pagination/cursor" in f for f in found)
    assert spec.problems(Answer("GET", "nowhere", 200, {}, "application/json"))
    assert spec.problems(
        Answer("DELETE", "projects/p/branches/b", 204, {"x": 1}, "application/json")
    )


async def test_every_call_of_the_client_gets_answers_neons_spec_allows(
    pg_settings: Settings, fake_neon: FakeNeon
) -> None:
    client = NeonClient(neon_settings(pg_settings, fake_neon))
    try:
        created = await client.create_project({"name": "spec", "region_id": "aws-us-east-1"})
        project_id = created.body["project"]["id"]
        await client.wait(project_id, await client.operations(project_id))
        assert (await client.get_project(project_id) or {})["name"] == "spec"
        (main,) = await client.find_branches(project_id, search="")
        (endpoint,) = await client.branch_endpoints(project_id, main["id"])
        child = await client.create_branch(
            project_id,
            {
                "branch": {"name": "child", "parent_id": main["id"]},
                "endpoints": [{"type": "read_write"}],
            },
        )
        branch_id = child.body["branch"]["id"]
        await client.wait(project_id, child.operations)
        role = await client.create_role(project_id, branch_id, "reader")
        await client.wait(project_id, role.operations)
        database = await client.create_database(project_id, branch_id, "docs", "reader")
        await client.wait(project_id, database.operations)
        assert (await client.get_role(project_id, branch_id, "reader") or {})["name"] == "reader"
        assert (await client.get_database(project_id, branch_id, "docs") or {})["owner_name"] == (
            "reader"
        )
        assert await client.get_database(project_id, branch_id, "nothing") is None
        uri = await client.connection_uri(
            project_id,
            branch_id=branch_id,
            endpoint_id=child.body["endpoints"][0]["id"],
            database="docs",
            role="reader",
            pooled=False,
        )
        assert uri.startswith("postgresql://")
        await client.wait(project_id, await client.suspend_endpoint(project_id, endpoint["id"]))
        await client.wait(project_id, await client.start_endpoint(project_id, endpoint["id"]))
        assert (await client.get_endpoint(project_id, endpoint["id"]) or {})["current_state"] == (
            "active"
        )
        deleted = await client.delete_branch(project_id, branch_id)
        await client.wait(project_id, deleted.operations)
        assert (await client.delete_branch(project_id, branch_id)).body is None  # 204
        assert (await client.delete_project(project_id)).body is not None
        assert (await client.delete_project(project_id)).body is None  # 404: gone
    finally:
        await client.aclose()
    # Errors too: each as Neon's spec describes them.
    async with httpx.AsyncClient(base_url=fake_neon.url) as raw:
        key = {"Authorization": f"Bearer {fake_neon.api_key}"}
        assert (await raw.get("/projects")).status_code == 401
        assert (await raw.get("/projects/no-such", headers=key)).status_code == 404
        bad = await raw.post("/projects", headers=key, json={"project": {"region_id": "nowhere"}})
        assert bad.status_code == 400
    assert fake_neon.spec_problems() == []
    assert {a.status for a in fake_neon.answers} >= {200, 201, 204, 400, 401, 404}


async def test_the_client_reads_what_neon_sends_today(
    pg_settings: Settings, fake_neon: FakeNeon
) -> None:
    # A v3 plan, an operation Neon started itself with an action neon-api 0.3 has no name
    # for, members nobody has heard of: read what is needed, ignore the rest.
    client = NeonClient(neon_settings(pg_settings, fake_neon))
    try:
        created = await client.create_project({"name": "today"})
        project_id = created.body["project"]["id"]
        fake_neon.projects[project_id].body["brand_new_member"] = {"nested": [1, None]}
        project = await client.get_project(project_id)
        assert project is not None and project["owner"]["subscription_type"] == "launch_v3"
        operations = await client.operations(project_id)
        assert "update_catalog" in {op.action for op in operations}
        assert not {op.action for op in created.operations} & {"update_catalog"}  # Neon's own
        await client.wait(project_id, operations)
    finally:
        await client.aclose()


async def test_lists_follow_their_cursors_to_the_end(
    pg_settings: Settings, superuser_dsn: str
) -> None:
    fake = FakeNeon(superuser_dsn, operation_seconds=0.0, page_size=2).start()
    client = NeonClient(neon_settings(pg_settings, fake))
    try:
        made = [
            (await client.create_project({"name": f"paged-{i}"})).body["project"]["id"]
            for i in range(5)
        ]
        found = await client.find_projects(search="paged-", org_id=None)
        assert sorted(p["id"] for p in found) == sorted(made)
        project_id = made[0]
        for i in range(4):
            await client.create_branch(project_id, {"branch": {"name": f"b-{i}"}})
        branches = await client.find_branches(project_id, search="")
        assert len(branches) == 5 and len({b["id"] for b in branches}) == 5
        assert client.calls["branches"] == 3  # pages of 2, 2 and 1 (the last has no cursor)
        assert fake.spec_problems() == []
    finally:
        await client.aclose()
        fake.stop()
        fake.remove_everything()


async def test_each_failure_says_what_neon_documents_about_trying_again(
    pg_settings: Settings, fake_neon: FakeNeon
) -> None:
    client = NeonClient(neon_settings(pg_settings, fake_neon))
    try:
        project_id = (await client.create_project({"name": "codes"})).body["project"]["id"]
        assert await client.get_project("no-such-project") is None  # a 404, told apart
        with pytest.raises(ProvisioningError, match="400 region 'nowhere' is not available"):
            await client.create_project({"name": "bad", "region_id": "nowhere"})
        # One try per call: the retrying is the lifecycle's.
        fake_neon.fail_next(Fault(status=503, method="GET", retry_after=3))
        with pytest.raises(NeonRefused) as refused:
            await client.get_project(project_id)
        assert refused.value.retry_after == 3 and client.calls["project"] == 2
        fake_neon.fail_next(Fault(status=500, method="GET"))
        with pytest.raises(BackendUnavailable) as failed:
            await client.get_project(project_id)
        assert not isinstance(failed.value, NeonOutcomeUnknown | NeonRefused)
        # A mutation: 503 and 423 are safe to send again; another 5xx leaves it unknown.
        fake_neon.fail_next(Fault(status=423, method="POST", retry_after=1))
        with pytest.raises(NeonRefused, match="423"):
            await client.create_project({"name": "locked"})
        fake_neon.fail_next(Fault(status=500, method="POST", after_work=True))
        with pytest.raises(NeonOutcomeUnknown, match="may or may not"):
            await client.create_project({"name": "lost"})
        assert "lost" in fake_neon.project_names()  # it was made: the step must look first
        fake_neon.fail_next(Fault(delay=3.0, method="GET"))  # past the 2 s request timeout
        with pytest.raises(BackendUnavailable, match="unreachable"):
            await client.get_project(project_id)
    finally:
        await client.aclose()


async def test_one_retry_layer_bounded_by_the_steps_deadline(
    pg_settings: Settings, fake_neon: FakeNeon
) -> None:
    client = NeonClient(neon_settings(pg_settings, fake_neon))
    try:
        project_id = (await client.create_project({"name": "bounded"})).body["project"]["id"]
        fake_neon.fail_next(*[Fault(status=423, method="GET", retry_after=0.2)] * 100)
        started = time.monotonic()
        # A deadline of several Retry-Afters: a loaded machine still gets its retries in.
        with pytest.raises(NeonRefused):
            await with_retries(lambda: client.get_project(project_id), seconds=2.0)
        elapsed = time.monotonic() - started
        assert elapsed < 3.0, elapsed
        # Every try was one request, each after Neon's Retry-After at least.
        assert 2 <= client.calls["project"] <= 2.0 / 0.2 + 1
        fake_neon.clear_faults()
        # A wait on operations inside a step ends at the step's deadline, not later.
        fake_neon.operation_seconds = 30.0
        created = await client.create_project({"name": "slow"})
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="still running"):
            await with_retries(
                lambda: client.wait(created.body["project"]["id"], created.operations),
                seconds=1.0,
            )
        assert time.monotonic() - started < 4.0
    finally:
        await client.aclose()


async def test_keys_stay_secret(
    pg_settings: Settings, fake_neon: FakeNeon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = NeonClient(neon_settings(pg_settings, fake_neon, api_key="napi_secret_wrong"))
    try:
        with pytest.raises(ConfigurationError, match="refused the API key") as refused:
            await wrong.get_project("anything")
    finally:
        await wrong.aclose()
    assert "napi_secret_wrong" not in str(refused.value) + caplog.text
    assert fake_neon.api_key not in caplog.text


def test_the_base_url_may_end_with_a_slash_or_not() -> None:
    assert normalise_base_url("http://h/api/v2") == normalise_base_url("http://h/api/v2/")


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
