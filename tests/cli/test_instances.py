"""Instance tenants as an operator drives them with tenantctl."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest

from controlplane.failpoints import CRASH_EXIT_CODE
from controlplane.lifecycle.tenants import TenantRequest, create_tenant, delete_tenant
from controlplane.plane import ControlPlane
from controlplane.settings import Settings
from tests.fixtures.cli import TenantCtl, one_line_error

TENANTS = 20


def test_create_sized_instance_show_restart_delete(tenantctl: TenantCtl, tenant_id: str) -> None:
    created = tenantctl(
        "tenants",
        "create",
        tenant_id,
        "--dims",
        "3",
        "--backend",
        "instance",
        "--tier",
        "medium",
        "--work-mem",
        "8MB",
        "--max-connections",
        "30",
    )
    assert created.code == 0, created.stderr
    assert "on its own server at 127.0.0.1:" in created.stdout and "(medium)" in created.stdout

    shown = tenantctl("tenants", "show", tenant_id, "--json")
    assert shown.code == 0, shown.stderr
    live = json.loads(shown.stdout)["live"]
    assert live["settings"] == {
        "shared_buffers": "128MB",
        "work_mem": "8MB",
        "maintenance_work_mem": "128MB",
        "max_connections": "30",
    }

    pid = int((Path(live["data_dir"]) / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    restarted = tenantctl("tenants", "restart", tenant_id, "--json")
    assert restarted.code == 0, restarted.stderr
    assert json.loads(restarted.stdout) == {"tenant": tenant_id, "restarted": True}
    again = tenantctl("tenants", "restart", tenant_id)
    assert again.code == 0 and "server runs" in again.stdout

    deleted = tenantctl("tenants", "delete", tenant_id, "--yes")
    assert deleted.code == 0, deleted.stderr
    assert "data directory removed" in deleted.stdout
    assert not Path(live["data_dir"]).exists()


def test_bad_sizes_and_backends_get_one_line_errors(tenantctl: TenantCtl, tenant_id: str) -> None:
    cases = [
        (["--work-mem", "8MB"], "does not give a tenant a server of its own"),
        (["--backend", "instance", "--shared-buffers", "12"], "invalid memory size '12'"),
    ]
    for options, message in cases:
        result = tenantctl("tenants", "create", tenant_id, "--dims", "3", *options)
        assert result.code != 0, options
        assert message in one_line_error(result.stderr), options
    refused = tenantctl(
        "tenants",
        "create",
        tenant_id,
        "--backend",
        "docker",
        env={"TENANTVEC_DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    assert refused.code != 0
    assert "needs a Docker engine and none answers" in one_line_error(refused.stderr)
    assert tenantctl("tenants", "show", tenant_id).code != 0  # nothing was written


async def test_twenty_instances_alive_at_once_with_their_memory(
    plane: ControlPlane, tenantctl: TenantCtl, tenant_id: str
) -> None:
    ids = [f"{tenant_id}-{n:02d}" for n in range(TENANTS)]
    requests = [TenantRequest(id=tid, dims=3, backend="instance") for tid in ids]
    try:
        # Made through the library, a few at a time (fast); inspected as an operator does.
        for batch in range(0, TENANTS, 5):
            await asyncio.gather(
                *(create_tenant(plane, r, actor="test") for r in requests[batch : batch + 5])
            )
        report = await asyncio.to_thread(tenantctl, "doctor", "--json")
        checks = {c["name"]: c for c in json.loads(report.stdout)["checks"]}
        for tid in ids:
            check = checks[f"instance {tid}"]
            assert check["status"] == "ok", check
            detail = check["detail"]
            assert detail.startswith("running on 127.0.0.1:") and " up " in detail
            assert "shared_buffers 16MB" in detail and "max_connections 25" in detail
        total = checks["own servers"]["detail"]
        running, megabytes = int(total.split()[0]), float(total.split(", ")[1].split()[0])
        assert running >= TENANTS
        assert megabytes > 0
        print(f"{TENANTS} idle small instances: {megabytes:.0f} MB together")
    finally:
        await asyncio.gather(
            *(delete_tenant(plane, tid, actor="test") for tid in ids), return_exceptions=True
        )


@pytest.mark.parametrize("failpoint", ["create.after_catalog", "create.after_resources"])
def test_a_create_killed_midway_is_finished_by_reconcile(
    tenantctl: TenantCtl, pg_settings: Settings, tenant_id: str, failpoint: str
) -> None:
    crashed = tenantctl(
        "tenants", "create", tenant_id, "--dims", "3", "--backend", "instance",
        env={"TENANTVEC_FAILPOINTS": failpoint},
    )  # fmt: skip
    assert crashed.code == CRASH_EXIT_CODE, crashed.stderr
    repaired = tenantctl("reconcile", "--json")
    assert repaired.code == 0, repaired.stderr
    shown = tenantctl("tenants", "show", tenant_id, "--json").json()
    assert shown["state"] == "ready" and shown["live"]["running"] is True
    # One server for the tenant: the repair used what the crashed create had reserved.
    mine = [d for d in (pg_settings.home / "instances").iterdir() if d.name.startswith(tenant_id)]
    assert [d.name for d in mine] == [shown["placement"]["instance"]]
    assert tenantctl("tenants", "delete", tenant_id, "--yes").code == 0
    assert not mine[0].exists()
