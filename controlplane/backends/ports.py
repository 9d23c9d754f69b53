"""Ports on 127.0.0.1 for tenants' own servers, handed out without collisions.

A tenant with a server of its own (``instance``, ``docker``) has a directory under
``TENANTVEC_HOME`` (``instances/<name>``, ``docker/<name>``, the name from
:func:`own_server_name`) holding ``instance.json``: its tenant, uid and port. Writing that
manifest *is* the reservation, made under a machine-wide file lock, so concurrent
creates in any number of processes never pick the same port; a port stays taken as
long as its directory exists (also for orphans, which may still run).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controlplane.errors import OverCapacity, ProvisioningError
from controlplane.localpg.cluster import held_lock, port_is_free
from controlplane.model.records import Tenant
from controlplane.settings import Settings

__all__ = ["PortRegistry", "own_server_name", "read_manifest"]

logger = logging.getLogger(__name__)

MANIFEST = "instance.json"
# Every directory whose tenant directories hold manifests (one per backend).
_KINDS = ("instances", "docker")


def own_server_name(tenant_id: str) -> str:
    """A name for a tenant's own server, new for every tenant made with this id.

    A tenant deleted and made again gets another directory (and container), so what an
    earlier one left behind can never be mistaken for the new one's: it is an orphan.
    """
    return f"{tenant_id}-{secrets.token_hex(3)}"


class PortRegistry:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._home = settings.home

    def directory(self, kind: str) -> Path:
        """Where tenants of ``kind`` ("instances", "docker") keep their directories."""
        assert kind in _KINDS
        return self._home / kind

    def reserve(self, root: Path, tenant: Tenant) -> int:
        """The port for ``tenant``, whose directory is ``root``: reserved now, or earlier
        by an interrupted create of the same tenant."""
        with self._lock():
            manifest = read_manifest(root)
            if manifest is not None:
                if manifest.get("uid") != tenant.uid:
                    raise ProvisioningError(
                        f"{root} already holds the server of an earlier tenant "
                        f"{tenant.id!r}; remove it with 'tenantctl reconcile --fix'"
                    )
                return int(manifest["port"])
            taken = {int(m["port"]) for _, m in self.manifests()}
            taken.add(self._settings.embedded.port)
            low, high = self._settings.instance.ports
            for port in range(low, high + 1):
                if port not in taken and port_is_free(port):
                    root.mkdir(parents=True, exist_ok=True)
                    _write_manifest(root, tenant, port)
                    return port
        raise OverCapacity(
            f"no free port left in TENANTVEC_INSTANCE_PORTS ({low}-{high}) for another "
            "tenant server; widen the range or delete instance tenants"
        )

    def manifests(self, kind: str | None = None) -> list[tuple[Path, dict[str, Any]]]:
        """(directory, manifest) of every tenant server of ``kind`` (default: all)."""
        found = []
        for name in (kind,) if kind else _KINDS:
            directory = self._home / name
            if not directory.is_dir():
                continue
            for root in sorted(directory.iterdir()):
                manifest = read_manifest(root)
                if manifest is not None:
                    found.append((root, manifest))
        return found

    def _lock(self) -> AbstractContextManager[None]:
        self._prepare()
        return held_lock(self._home / ".ports.lock")

    def _prepare(self) -> None:
        # As root, the Postgres service user must traverse home/ and instances/ to
        # reach its clusters (it cannot list them).
        mode = 0o711 if os.geteuid() == 0 else 0o700
        for directory in (self._home, *(self._home / kind for kind in _KINDS)):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(mode)


def read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((root / MANIFEST).read_text())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError):
        logger.warning("unreadable manifest in %s", root)
        return None
    return data if isinstance(data, dict) and "tenant" in data and "port" in data else None


def _write_manifest(root: Path, tenant: Tenant, port: int) -> None:
    manifest = {
        "tenant": tenant.id,
        "uid": tenant.uid,
        "port": port,
        "created_at": datetime.now(UTC).isoformat(),
        "note": "written by tenantvec; removing this directory deletes the tenant's server",
    }
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(root / MANIFEST)
