"""The ``tenantctl`` console script: runs where only the client is installed, too.

``pip install tenantvec`` installs the script but not the control plane it drives; there
it says in one line which extra to install instead of a traceback.
"""

from __future__ import annotations

import sys

from controlplane.extras import missing_server_extra

__all__ = ["run"]

USAGE = 2  # tenantctl.errors.USAGE: fix the install, as one fixes a command


def run() -> None:
    try:
        from tenantctl.main import run as run_command
    except ModuleNotFoundError as exc:
        missing = missing_server_extra(exc, "tenantctl")
        if missing is None:
            raise
        sys.stderr.write(f"error: {missing}\n")
        sys.exit(USAGE)
    run_command()
