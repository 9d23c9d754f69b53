"""``tenantctl`` end to end as a process -- the console script the package installs, a
real environment, real exit statuses -- where the process is the point. Everything else
drives it in-process (``tests.fixtures.cli``), which parses and fails the same way."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.fixtures.cli import TenantCtl, one_line_error

CONSOLE_SCRIPT = Path(sys.executable).parent / "tenantctl"


def test_the_installed_console_script_answers_help_without_a_server() -> None:
    assert CONSOLE_SCRIPT.exists() or shutil.which("tenantctl"), "pip install -e . makes it"
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "--help"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "TENANTVEC_HOME": "/nonexistent/never-created"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "tenants" in result.stdout and "Exit codes: 0 ok" in result.stdout
    assert not Path("/nonexistent/never-created").exists()


def test_a_process_round_trip_with_json_and_exit_statuses(
    tenantctl_process: TenantCtl, tenant_id: str
) -> None:
    created = tenantctl_process("tenants", "create", tenant_id, "--dims", "3", "--json")
    assert created.code == 0, created.stderr
    assert created.json()["state"] == "ready"
    listed = tenantctl_process("tenants", "list", "--json")
    assert tenant_id in [t["id"] for t in listed.json()]
    again = tenantctl_process("tenants", "create", tenant_id, "--dims", "3")
    assert again.code == 4  # conflict: it exists
    assert "already exists" in one_line_error(again.stderr)
    missing = tenantctl_process("tenants", "show", "no-such-tenant")
    assert missing.code == 3 and one_line_error(missing.stderr).startswith("error: ")
    bad = tenantctl_process("tenants", "create", "x", "--dims", "nope")
    assert bad.code == 2 and "--help" in one_line_error(bad.stderr)
    deleted = tenantctl_process("tenants", "delete", tenant_id, "--yes", "--json")
    assert deleted.code == 0 and deleted.json()["state"] == "deleted"
