"""``tenantctl doctor``: a health report of the control plane and everything it manages."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from controlplane.backends.base import ProbesItsApi
from controlplane.backends.markers import LAYOUT
from controlplane.backends.servers import inspect_server
from controlplane.catalog.models import utcnow
from controlplane.context import PlaneContext
from controlplane.errors import InvalidRequest, TenantvecError
from controlplane.inputs import printable
from controlplane.lifecycle.reconcile import survey
from controlplane.model.backends import BackendKind
from controlplane.model.records import (
    MOVE_STATES,
    ServerState,
    Tenant,
    TenantState,
    validate_tenant_id,
)
from controlplane.model.views import CheckView, DoctorView

__all__ = ["Check", "DoctorReport", "run_doctor"]


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str

    def view(self) -> CheckView:
        return CheckView(name=self.name, status=self.status, detail=self.detail)


@dataclass(frozen=True)
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def view(self) -> DoctorView:
        return DoctorView(healthy=self.healthy, checks=[c.view() for c in self.checks])


def _invalid_ids_check(tenants: list[Tenant]) -> Check:
    """Live tenants whose ids today's validation refuses (made by an older tenantvec,
    whose validator let a trailing newline through): they cannot be named reliably on
    the command line or in a URL, so each should be deleted (by its uid) or re-made."""
    bad = []
    for tenant in tenants:
        try:
            validate_tenant_id(tenant.id)
        except InvalidRequest:
            bad.append(f"{printable(tenant.id)} (uid {tenant.uid})")
    if not bad:
        return Check("tenant ids", "ok", "every live tenant id is valid")
    return Check(
        "tenant ids",
        "warn",
        f"{len(bad)} live tenant(s) with an id that is no longer valid: {', '.join(bad[:5])}; "
        "delete them with 'tenantctl tenants delete --uid UID' and create them again",
    )


def _layout_check(tenants: list[Tenant]) -> Check:
    """Tenants still named after their ids (visible to every role on their server) or
    without a service role, and tenants whose API connections lack reserved slots."""
    own = [t for t in tenants if t.backend in ("postgres", "instance", "docker")]
    older = [t.id for t in own if t.where.layout < LAYOUT]
    unreserved = [t.id for t in own if t.backend == "postgres" and t.where.reserved_slots is False]
    problems = []
    if older:
        problems.append(
            f"{len(older)} tenant(s) made by an older tenantvec ({', '.join(older[:5])}): their "
            "database and role names show their ids to every tenant on the server, and they "
            "lack a service role and limits; run 'tenantctl migrate --all' (their DSNs change)"
        )
    if unreserved:
        problems.append(
            f"{len(unreserved)} tenant(s) ({', '.join(unreserved[:5])}) whose server's admin may "
            "not grant pg_use_reserved_connections: their API connections can be crowded out "
            "by other tenants' clients; register the server as a superuser (Postgres 16+)"
        )
    if not problems:
        return Check("tenant layout", "ok", "opaque names, service roles and limits everywhere")
    return Check("tenant layout", "warn", "; ".join(problems))


@dataclass(frozen=True)
class _Fleet:
    """What every check may look at: the plane, and its tenants read once."""

    plane: PlaneContext
    tenants: list[Tenant]


async def run_doctor(plane: PlaneContext) -> DoctorReport:
    """Every check in turn, each standing alone: one that cannot finish (a server that
    does not answer) is a failed line of its own, and the others still run."""
    fleet = _Fleet(plane, await plane.catalog.list_tenants())
    checks: list[Check] = []
    for name, check in _CHECKS:
        try:
            checks.extend(await check(fleet))
        except TenantvecError as exc:
            checks.append(Check(name, "fail", str(exc)))
    return DoctorReport(checks)


async def _embedded_server(fleet: _Fleet) -> list[Check]:
    embedded = fleet.plane.embedded
    if embedded is None:
        return []
    status = await asyncio.to_thread(embedded.status)
    if not status.running:
        return [Check("embedded server", "fail", "not running")]
    binaries = embedded.binaries
    detail = (
        f"Postgres {binaries.version} with pgvector {binaries.pgvector_version}, "
        f"pid {status.pid}, 127.0.0.1:{status.port}, data {status.data_dir}"
    )
    return [Check("embedded server", "ok", detail)]


async def _catalog(fleet: _Fleet) -> list[Check]:
    catalog = fleet.plane.catalog.conninfo
    by_state: dict[str, int] = {}
    for tenant in fleet.tenants:
        by_state[tenant.state] = by_state.get(tenant.state, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(by_state.items())) or "no tenants"
    return [Check("catalog", "ok", f"{catalog.host}:{catalog.port}/{catalog.dbname}: {summary}")]


async def _tenant_ids(fleet: _Fleet) -> list[Check]:
    return [_invalid_ids_check(fleet.tenants)]


async def _tenant_layout(fleet: _Fleet) -> list[Check]:
    return [_layout_check(fleet.tenants)]


async def _servers(fleet: _Fleet) -> list[Check]:
    """One line per registered server: reachable, its versions, its tenants."""
    plane = fleet.plane
    checks: list[Check] = []
    counts = await plane.catalog.count_live_tenants_by_server()
    for server in await plane.catalog.list_servers():
        try:
            facts = await inspect_server(
                plane.servers.admin_conninfo(server),
                where=f"server {server.name!r}",
                timeout=plane.settings.connect_timeout,
            )
        except TenantvecError as exc:
            checks.append(Check(f"server {server.name}", "fail", str(exc)))
            continue
        room = "unlimited" if server.capacity is None else str(server.capacity)
        hosted = counts.get(server.name, 0)
        # Draining with tenants left: a drain stopped (or runs now); nothing places here.
        left = server.state is ServerState.DRAINING and hosted
        detail = (
            f"{server.address}, Postgres {facts.server_version}, pgvector "
            f"{facts.pgvector_version}, {hosted} tenants (capacity {room}), {server.state}"
        )
        if left:
            detail += (
                f": {hosted} tenant(s) still on it -- 'tenantctl servers drain "
                f"{server.name}' again, or 'servers activate {server.name}'"
            )
        checks.append(Check(f"server {server.name}", "warn" if left else "ok", detail))
    return checks


async def _own_servers(fleet: _Fleet) -> list[Check]:
    return await _own_server_checks(fleet.plane, fleet.tenants)


async def _orphans(fleet: _Fleet) -> list[Check]:
    """Resources tenantvec made that no tenant owns (and those it cannot attribute)."""
    try:
        found = await survey(fleet.plane)
    except TenantvecError as exc:
        return [Check("orphans", "fail", f"cannot list: {exc}")]
    orphans, ambiguous = found.orphans, found.ambiguous
    names = ", ".join(f"{o.kind} {o.name} on {o.location}" for o in orphans[:5])
    checks = [
        Check(
            "orphans",
            "warn" if orphans else "ok",
            f"{len(orphans)}: {names} (remove with 'tenantctl reconcile --fix')"
            if orphans
            else "none",
        )
    ]
    if ambiguous:
        names = ", ".join(f"{o.kind} {o.name} on {o.location}" for o in ambiguous[:5])
        checks.append(
            Check(
                "unattributed resources",
                "warn",
                f"{len(ambiguous)}: {names}: they carry tenantvec's marker but no tenant "
                "can be told from it; reconcile never removes them, look at them yourself",
            )
        )
    return checks


async def _expired(fleet: _Fleet) -> list[Check]:
    now = utcnow()
    expired = [t.id for t in fleet.tenants if t.expires_at is not None and t.expires_at < now]
    detail = f"{len(expired)}: {', '.join(expired[:5])} (delete with 'tenantctl gc')"
    return [Check("expired tenants", "warn", detail) if expired else _none("expired tenants")]


async def _unfinished(fleet: _Fleet) -> list[Check]:
    # Unfinished while they last; left so by a process that died, reconcile finishes them.
    busy = {TenantState.PROVISIONING, TenantState.RESTORING, TenantState.DELETING} | MOVE_STATES
    stuck = [f"{t.id} ({t.state})" for t in fleet.tenants if t.state in busy]
    detail = f"{', '.join(stuck[:5])} (finish with 'tenantctl reconcile')"
    return [
        Check("unfinished operations", "warn", detail) if stuck else _none("unfinished operations")
    ]


async def _neon_api(fleet: _Fleet) -> list[Check]:
    return [await _neon_api_check(fleet.plane)]


async def _failed(fleet: _Fleet) -> list[Check]:
    failed = [t.id for t in fleet.tenants if t.state is TenantState.FAILED]
    detail = (
        f"{', '.join(failed[:5])} (retry with 'tenants create' or remove with 'tenants delete')"
    )
    return [Check("failed tenants", "warn", detail) if failed else _none("failed tenants")]


def _none(name: str) -> Check:
    return Check(name, "ok", "none")


# The checks, in the order the report lists them, each by the name it fails under.
_CHECKS: tuple[tuple[str, Callable[[_Fleet], Awaitable[list[Check]]]], ...] = (
    ("embedded server", _embedded_server),
    ("catalog", _catalog),
    ("tenant ids", _tenant_ids),
    ("tenant layout", _tenant_layout),
    ("servers", _servers),
    ("own servers", _own_servers),
    ("orphans", _orphans),
    ("expired tenants", _expired),
    ("unfinished operations", _unfinished),
    ("neon API", _neon_api),
    ("failed tenants", _failed),
)


async def _neon_api_check(plane: PlaneContext) -> Check:
    """A read-only probe of the Neon API endpoints tenantvec uses, so that an operator
    learns of a change of Neon's before a create fails."""
    if not plane.settings.neon.api_key:
        return Check("neon API", "ok", "not configured (no TENANTVEC_NEON_API_KEY): not probed")
    backend = plane.backend(BackendKind.NEON)
    if not isinstance(backend, ProbesItsApi):  # pragma: no cover - the neon backend does
        return Check("neon API", "warn", "the neon backend cannot probe its API")
    probe = await backend.probe_api()
    asked = f"{len(probe.asked)} read-only call(s): {', '.join(probe.asked)}"
    if probe.problems:
        return Check("neon API", "fail", f"{'; '.join(probe.problems)} ({asked})")
    if probe.notes:
        return Check("neon API", "warn", f"{'; '.join(probe.notes)} ({asked})")
    return Check("neon API", "ok", f"every answer read as tenantvec reads it ({asked})")


async def _own_server_checks(plane: PlaneContext, tenants: list[Tenant]) -> list[Check]:
    """One line per tenant whose server tenantvec runs (instance, docker), and a total."""
    checks: list[Check] = []
    running = 0
    memory = 0
    for tenant in tenants:
        backend = plane.backend(tenant.backend)
        if not backend.supervises or not tenant.state.usable:
            continue
        name = f"{tenant.backend} {tenant.id}"
        try:
            facts = await backend.describe(tenant)
        except TenantvecError as exc:
            checks.append(Check(name, "fail", str(exc)))
            continue
        suspended = tenant.state is TenantState.SUSPENDED
        up = bool(facts.get("running"))
        running += up
        memory += int(facts.get("memory_bytes") or 0)
        sizes = ", ".join(
            f"{k} {v}" for k, v in (facts.get("settings") or _compute_settings(facts)).items()
        )
        where = f"127.0.0.1:{facts.get('port')}"
        if up and not suspended:
            detail = (
                f"running on {where}, pid {facts.get('pid', '?')}, up "
                f"{_duration(facts.get('uptime_seconds'))}, "
                f"{_megabytes(facts.get('memory_bytes'))}; {sizes}"
            )
            checks.append(Check(name, "ok", detail))
        elif suspended and not up:
            checks.append(Check(name, "ok", f"suspended (server stopped), port {where}; {sizes}"))
        elif suspended:
            checks.append(Check(name, "warn", f"suspended, but its server still runs on {where}"))
        else:
            checks.append(
                Check(
                    name,
                    "fail",
                    f"ready, but its server on {where} is not running: its next request "
                    f"restarts it, or run 'tenantctl tenants restart {tenant.id}'",
                )
            )
    if checks:
        checks.append(
            Check(
                "own servers",
                "ok",
                f"{running} running, {_megabytes(memory)} together (proportional set size)",
            )
        )
    return checks


def _compute_settings(facts: dict[str, Any]) -> dict[str, Any]:
    compute = dict(facts.get("compute") or {})
    compute.pop("tier", None)
    return compute


def _megabytes(size: Any) -> str:
    return "memory unknown" if not size else f"{int(size) / 2**20:.1f} MB"


def _duration(seconds: Any) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"
