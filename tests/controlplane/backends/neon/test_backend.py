"""The neon backend against the fake Neon API: both modes, faults, crashes, orphans, limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from controlplane.errors import ProvisioningError
from controlplane.lifecycle.reconcile import find_orphans
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.model.records import TenantState
from controlplane.plane import ControlPlane
from controlplane.settings import Settings
from tests.fakes.neon import FakeNeon, Fault
from tests.fixtures.fakes import neon_settings


@pytest.fixture
async def neon_plane(pg_settings: Settings, fake_neon: FakeNeon) -> AsyncIterator[ControlPlane]:
    async with ControlPlane.open(neon_settings(pg_settings, fake_neon)) as opened:
        yield opened


async def _count_chunks(plane: ControlPlane, tenant_id: str) -> int:
    tenant = await plane.catalog.get_tenant(tenant_id)
    async with await psycopg.AsyncConnection.connect(plane.tenant_conninfo(tenant).dsn) as conn:
        row = await (await conn.execute("SELECT count(*) FROM chunks")).fetchone()
    assert row is not None
    return int(row[0])


async def test_project_mode_creates_a_project_in_the_region(
    neon_plane: ControlPlane, fake_neon: FakeNeon, tenant_id: str
) -> None:
    request = TenantRequest(id=tenant_id, dims=3, backend="neon", region="aws-eu-central-1")
    tenant = await create_tenant(neon_plane, request, actor="test")
    assert tenant.state is TenantState.READY
    placement = tenant.placement
    assert placement["mode"] == "project" and placement["region"] == "aws-eu-central-1"
    assert fake_neon.project_names() == [f"tenantvec-{tenant_id}"]
    project = fake_neon.projects[placement["project_id"]]
    assert project.body["region_id"] == "aws-eu-central-1"
    assert await _count_chunks(neon_plane, tenant_id) == 0
    assert [o for o in await find_orphans(neon_plane) if o.backend == "neon"] == []
    await delete_tenant(neon_plane, tenant_id, actor="test")
    assert fake_neon.project_names() == []


async def test_branch_mode_cuts_a_branch_with_its_own_compute_role_and_database(
    pg_settings: Settings, fake_neon: FakeNeon, tenant_id: str
) -> None:
    template = fake_neon.create_template_project()
    settings = neon_settings(pg_settings, fake_neon, mode="branch", template_project=template)
    async with ControlPlane.open(settings) as plane:
        tenant = await create_tenant(
            plane, TenantRequest(id=tenant_id, dims=3, backend="neon"), actor="test"
        )
        placement = tenant.placement
        assert placement["mode"] == "branch" and placement["project_id"] == template
        branch = fake_neon.projects[template].branches[placement["branch_id"]]
        assert branch.body["name"] == f"tenantvec-{tenant_id}"
        assert branch.body["parent_id"] == placement["parent_id"]
        assert set(branch.roles) == {"neondb_owner", tenant_id}  # inherited + the tenant's
        assert branch.databases[tenant_id]["owner_name"] == tenant_id
        endpoint = fake_neon.projects[template].endpoints[placement["endpoint_id"]]
        assert endpoint["branch_id"] == placement["branch_id"] and endpoint["type"] == "read_write"
        conninfo = plane.tenant_conninfo(tenant)
        assert conninfo.user == f"nf_{conninfo.user.split('_')[1]}_{tenant_id}"  # the tenant's role
        assert await _count_chunks(plane, tenant_id) == 0

        # A region other than the template project's cannot be honoured in branch mode.
        with pytest.raises(Exception, match="template project's region"):
            await create_tenant(
                plane,
                TenantRequest(
                    id=f"{tenant_id}-eu", dims=3, backend="neon", region="aws-eu-central-1"
                ),
                actor="test",
            )
        await delete_tenant(plane, tenant_id, actor="test")
        assert fake_neon.branch_names(template) == ["main"]


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=423, method="POST", path="^projects$"),
        Fault(status=429, method="POST", path="^projects$"),
        Fault(status=500, method="POST", path="^projects$"),
        Fault(status=503, method="GET", path="operations/"),
        # The project is made but the answer is lost: a retry must not make a second one.
        Fault(status=500, after_work=True, method="POST", path="^projects$"),
        Fault(delay=3.0, method="POST", path="^projects$"),  # past the 2 s request timeout
    ],
    ids=["423", "429", "500", "503-on-poll", "500-after-work", "slow-answer"],
)
async def test_project_create_survives_faults_without_duplicates(
    neon_plane: ControlPlane, fake_neon: FakeNeon, tenant_id: str, fault: Fault
) -> None:
    fake_neon.fail_next(fault)
    tenant = await create_tenant(
        neon_plane, TenantRequest(id=tenant_id, dims=3, backend="neon"), actor="test"
    )
    assert tenant.state is TenantState.READY
    assert fake_neon.project_names() == [f"tenantvec-{tenant_id}"]
    assert await _count_chunks(neon_plane, tenant_id) == 0
    await delete_tenant(neon_plane, tenant_id, actor="test")


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=423, method="POST", path="/branches$"),
        Fault(status=500, after_work=True, method="POST", path="/branches$"),
        Fault(status=500, after_work=True, method="POST", path="/roles$"),
        Fault(delay=3.0, method="POST", path="/databases$"),
    ],
    ids=["423-branch", "branch-answer-lost", "role-answer-lost", "slow-database"],
)
async def test_branch_create_survives_faults_without_duplicates(
    pg_settings: Settings, fake_neon: FakeNeon, tenant_id: str, fault: Fault
) -> None:
    template = fake_neon.create_template_project()
    settings = neon_settings(pg_settings, fake_neon, mode="branch", template_project=template)
    async with ControlPlane.open(settings) as plane:
        fake_neon.fail_next(fault)
        tenant = await create_tenant(
            plane, TenantRequest(id=tenant_id, dims=3, backend="neon"), actor="test"
        )
        assert tenant.state is TenantState.READY
        assert fake_neon.branch_names(template) == ["main", f"tenantvec-{tenant_id}"]
        assert await _count_chunks(plane, tenant_id) == 0
        await delete_tenant(plane, tenant_id, actor="test")


async def test_a_failed_operation_fails_the_tenant_with_neons_message(
    neon_plane: ControlPlane, fake_neon: FakeNeon, tenant_id: str
) -> None:
    fake_neon.fail_next(Fault(fail_operation=True, method="POST", path="^projects$"))
    with pytest.raises(ProvisioningError, match="injected failure"):
        await create_tenant(
            neon_plane, TenantRequest(id=tenant_id, dims=3, backend="neon"), actor="test"
        )
    failed = await neon_plane.catalog.get_tenant(tenant_id)
    assert failed.state is TenantState.FAILED and "create_timeline" in (failed.error or "")
    assert failed.placement["project_id"] in fake_neon.projects  # recorded before waiting
    deleted = await delete_tenant(neon_plane, tenant_id, actor="test")
    assert deleted.state is TenantState.DELETED and fake_neon.project_names() == []


async def test_other_4xx_fail_fast_with_neons_message(
    neon_plane: ControlPlane, fake_neon: FakeNeon, tenant_id: str
) -> None:
    request = TenantRequest(id=tenant_id, dims=3, backend="neon", region="mars-north-1")
    with pytest.raises(ProvisioningError, match="region 'mars-north-1' is not available"):
        await create_tenant(neon_plane, request, actor="test")
    posts = [r for r in fake_neon.requests if r.method == "POST"]
    assert [r.status for r in posts] == [400]  # no retry of a 400
    await delete_tenant(neon_plane, tenant_id, actor="test")


async def test_many_concurrent_creates_stay_under_the_rate_limit(
    pg_settings: Settings, superuser_dsn: str, tenant_id: str
) -> None:
    fake = FakeNeon(
        superuser_dsn, operation_seconds=0.05, per_route_per_second=3, per_minute=200
    ).start()
    settings = neon_settings(
        pg_settings, fake, route_requests_per_second=3, requests_per_minute=200
    )
    ids = [f"{tenant_id}-{i}" for i in range(8)]
    try:
        async with ControlPlane.open(settings) as plane:
            created = await asyncio.gather(
                *(
                    create_tenant(plane, TenantRequest(id=t, dims=3, backend="neon"), actor="test")
                    for t in ids
                )
            )
            assert {t.state for t in created} == {TenantState.READY}
            assert fake.answered(429) == []  # the limiter kept every request within limits
            assert fake.max_in_window(1.0, "POST projects") <= 3
            assert len(fake.project_names()) == 8
            for t in ids:
                await delete_tenant(plane, t, actor="test")
    finally:
        fake.stop()
        fake.remove_everything()
