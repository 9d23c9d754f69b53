"""Failpoints: named places where a process can be made to die, for crash-recovery tests.

``TENANTVEC_FAILPOINTS=create.after_role`` makes a provisioning process exit at that
point with no cleanup at all -- no ``finally`` blocks, no lock release but the one the
operating system performs -- exactly like ``kill -9``. Tests use it to prove that
``reconcile`` repairs every intermediate state. Inert unless configured.
"""

from __future__ import annotations

import os
import sys

from controlplane.settings import Settings

__all__ = ["FAILPOINTS", "failpoint"]

FAILPOINTS = frozenset(
    {
        "create.after_catalog",
        "create.after_resources",
        "create.after_schema",
        "delete.after_catalog",
        "delete.after_resources",
        "conform.after_database",
        "chroma.after_batch",
        "bulk.after_drop",
        "bulk.before_build",
        "neon.before_record",
        "neon.after_record",
        "move.after_record",
        "move.after_pause",
        "move.after_copy",
        "move.after_switch",
    }
)
CRASH_EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL


def failpoint(settings: Settings, name: str) -> None:
    assert name in FAILPOINTS, name
    if name in settings.failpoints:
        sys.stderr.write(f"failpoint {name}: exiting as if killed\n")
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)
