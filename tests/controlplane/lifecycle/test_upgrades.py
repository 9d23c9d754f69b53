"""An upgrade of tenantvec breaks no tenant: a fleet at every older schema version keeps
serving reads and writes through the real API while ``migrate --all`` runs -- killed at
a random moment once, then run again -- with no 5xx and no acknowledged write lost."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import psycopg

from controlplane.context import PlaneContext
from controlplane.dsn import ConnInfo
from controlplane.lifecycle.tenants import TenantRequest, create_tenant
from controlplane.model.records import Tenant
from controlplane.pgconnect import connect
from controlplane.plane import ControlPlane
from controlplane.settings import Settings
from tenantvec_schema.migrations import MigrationSet
from tenantvec_schema.runner import MigrationReport, migrate
from tests.fixtures.api import RunningApi
from tests.fixtures.cli import TenantCtl, kill_group_after, settings_env

LATEST = MigrationSet.bundled().latest


def at_version(version: int):  # type: ignore[no-untyped-def]
    """A schema step that leaves the tenant as the tenantvec of ``version`` made it."""

    async def step(_: PlaneContext, tenant: Tenant, conninfo: ConnInfo) -> MigrationReport:
        async with connect(conninfo, where="test", timeout=5, autocommit=False) as conn:
            return await migrate(conn, tenant.schema, target=version)

    return step


@dataclass
class Traffic:
    """Writers and readers of one tenant through the API, counting what they were told."""

    api: RunningApi
    tenant_id: str
    statuses: Counter[int] = field(default_factory=Counter)
    acknowledged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def run(self, stop: threading.Event) -> None:
        n = 0
        with self.api.admin() as client:
            while not stop.is_set():
                n += 1
                doc = f"w{n}"
                # Chunk ids of the caller's own: a column the oldest schemas do not have.
                body = {
                    "documents": [
                        {
                            "id": doc,
                            "chunks": [
                                {
                                    "id": f"{doc}-a",
                                    "content": f"written {n}",
                                    "embedding": [1, n, 0],
                                }
                            ],
                        }
                    ]
                }
                self._record(client.put(f"/v1/tenants/{self.tenant_id}/documents", json=body), doc)
                self._record(
                    client.post(
                        f"/v1/tenants/{self.tenant_id}/search", json={"vector": [1, n, 0], "k": 3}
                    ),
                    None,
                )

    def _record(self, answer: httpx.Response, doc: str | None) -> None:
        self.statuses[answer.status_code] += 1
        if answer.status_code >= 500:
            self.errors.append(answer.text[:300])
        elif doc is not None and answer.is_success:
            self.acknowledged.append(doc)


async def test_a_fleet_at_every_older_version_serves_on_while_migrate_all_runs(
    plane: ControlPlane,
    api: RunningApi,
    tenantctl: TenantCtl,
    pg_settings: Settings,
    tenant_id: str,
) -> None:
    versions = [v for v in range(1, LATEST + 1) for _ in range(2)]
    ids = [f"{tenant_id}-v{v}-{i}" for i, v in enumerate(versions)]
    # And one per older version that no request touches: migrate --all's own work.
    idle = [f"{tenant_id}-idle-v{v}" for v in range(1, LATEST)]
    for tid, version in [
        *zip(ids, versions, strict=True),
        *zip(idle, range(1, LATEST), strict=True),
    ]:
        made = await create_tenant(
            plane, TenantRequest(id=tid, dims=3), actor="t", schema_step=at_version(version)
        )
        assert made.schema_version == version
    traffic = [Traffic(api, tid) for tid in ids]
    stop = threading.Event()
    threads = [threading.Thread(target=t.run, args=(stop,)) for t in traffic]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        # Killed at a random moment (its whole process group), then run to the end.
        rng = random.Random(os.getpid())
        kill_group_after(["migrate", "--all"], settings_env(pg_settings), rng.uniform(0.5, 2.0))
        finished = tenantctl("migrate", "--all", "--json")
        assert finished.code == 0, finished.stderr
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    for t in traffic:
        assert t.errors == [] and all(s < 500 for s in t.statuses), (t.tenant_id, t.statuses)
        assert t.statuses[200] > 0, (t.tenant_id, t.statuses)
    for tid, t in zip(ids, traffic, strict=True):
        tenant = await plane.catalog.get_tenant(tid)
        assert tenant.schema_version == LATEST
        async with await psycopg.AsyncConnection.connect(
            plane.service_conninfo(tenant).dsn
        ) as conn:
            cur = await conn.execute("SELECT key FROM chunks ORDER BY key")
            stored = {row[0] for row in await cur.fetchall()}
        # Every write the API acknowledged is there, with the chunk id it was given.
        assert {f"{doc}-a" for doc in t.acknowledged} <= stored, tid
    for tid in idle:
        assert (await plane.catalog.get_tenant(tid)).schema_version == LATEST
    for tid in [*ids, *idle]:
        assert tenantctl("tenants", "delete", tid, "--yes").code == 0
