"""Fleet maintenance: ``migrate``, ``reconcile``, ``gc``, ``doctor``, ``operations``,
plus ``settings`` and ``secret-key``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from cryptography.fernet import Fernet
from rich.table import Table

from tenantctl.context import Cli, JsonOption, get_cli
from tenantctl.errors import CommandFailed

if TYPE_CHECKING:
    from controlplane.lifecycle.doctor import DoctorReport
    from controlplane.lifecycle.gc import GcReport
    from controlplane.lifecycle.migrate import TenantMigration
    from controlplane.lifecycle.reconcile import ReconcileReport
    from controlplane.plane import ControlPlane

from controlplane.errors import InvalidRequest
from controlplane.inputs import printable
from controlplane.model.records import Operation, TenantState

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)
    app.command("reconcile")(reconcile_cmd)
    app.command("gc")(gc)
    app.command("doctor")(doctor)
    app.command("operations")(operations)
    app.command("settings")(settings)
    app.command("secret-key")(secret_key)


def migrate(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Argument(help="Tenant to upgrade.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Upgrade every ready tenant.")] = False,
    concurrency: Annotated[
        int | None,
        typer.Option(help="Tenants upgraded at once (default TENANTVEC_MIGRATE_CONCURRENCY)."),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="With --all: also check the ledger of every tenant the catalog records "
            "as current (one connection each), not only upgrade those behind.",
        ),
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Upgrade tenant schemas to the latest version. Safe to re-run after an interruption.

    --all upgrades every ready tenant the catalog records as behind (or of an older
    layout); tenants it records as current are not connected to unless --verify.
    """
    from controlplane.lifecycle.migrate import migrate_tenant

    cli = get_cli(ctx)
    if (tenant is None) == (not all_):
        raise InvalidRequest("name one tenant or pass --all")
    if concurrency is not None and concurrency < 1:
        raise InvalidRequest("--concurrency must be at least 1")

    async def work(plane: ControlPlane) -> list[TenantMigration]:
        if tenant is not None:
            return [await migrate_tenant(plane, tenant, actor=cli.actor)]
        return await _migrate_with_progress(cli, plane, concurrency, verify, show=not json_)

    results = cli.run(work)
    failed = [r for r in results if not r.ok]
    if json_:
        from controlplane.model.views import MigrationsView

        cli.print_json(
            MigrationsView(
                results=[r.view() for r in results],
                migrated=len(results) - len(failed),
                failed=len(failed),
            )
        )
    else:
        for r in results:
            if r.ok:
                applied = ", ".join(map(str, r.applied)) or "nothing to apply"
                cli.out.print(f"{r.tenant}: version {r.to_version} ({applied})")
            else:
                cli.err.print(f"{r.tenant}: FAILED: {r.error}")
        cli.out.print(
            f"{len(results) - len(failed)} tenant(s) at the latest schema, {len(failed)} failed"
        )
    if failed:
        raise CommandFailed(
            f"{len(failed)} tenant(s) failed to migrate: " + ", ".join(r.tenant for r in failed)
        )


async def _migrate_with_progress(
    cli: Cli, plane: ControlPlane, concurrency: int | None, verify: bool, *, show: bool
) -> list[TenantMigration]:
    from controlplane.lifecycle.migrate import migrate_all
    from tenantctl.progress import tenants_bar  # rich.progress loads with the bar

    total = len(await plane.catalog.list_tenants(states=[TenantState.READY]))
    with tenants_bar(cli, "migrating", total, quiet=not show) as advance:
        return await migrate_all(
            plane,
            actor=cli.actor,
            concurrency=concurrency,
            verify=verify,
            on_result=lambda result: advance(result.ok),
        )


def reconcile_cmd(
    ctx: typer.Context,
    fix: Annotated[
        bool,
        typer.Option("--fix", help="Also drop orphaned databases and roles that no tenant owns."),
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Finish operations interrupted by a crash and report (or --fix) orphans."""
    from controlplane.lifecycle.reconcile import reconcile

    cli = get_cli(ctx)

    async def work(plane: ControlPlane) -> ReconcileReport:
        return await reconcile(plane, fix=fix, actor=cli.actor)

    report = cli.run(work)
    if json_:
        cli.print_json(report.view())
    else:
        for r in report.repairs:
            cli.out.print(
                f"{r.tenant} (was {r.was}): {r.action} -> {r.outcome}"
                + (f": {r.error}" if r.error else "")
            )
        for o in report.orphans:
            state = "removed" if o in report.removed else "orphan"
            cli.out.print(f"{state}: {o.kind} {o.name} on {o.location}")
        if report.orphans and not fix:
            cli.out.print("run 'tenantctl reconcile --fix' to remove the orphans")
        for o in report.ambiguous:
            cli.out.print(
                f"unattributed (never removed): {o.kind} {printable(o.name, 63)} on {o.location}"
            )
        if report.failed_tenants:
            cli.out.print(
                "failed tenants (retry 'tenants create' or 'tenants delete'): "
                + ", ".join(report.failed_tenants)
            )
        for path in report.scratch_removed:
            cli.out.print(f"removed scratch left by a killed backup or restore: {path}")
        for server, count in report.draining.items():
            cli.out.print(
                f"server {server} is draining with {count} tenant(s) still on it: run "
                f"'tenantctl servers drain {server}' again, or 'tenantctl servers activate "
                f"{server}' to take it back"
            )
        if not (
            report.repairs
            or report.orphans
            or report.ambiguous
            or report.scratch_removed
            or report.draining
        ):
            cli.out.print("nothing to reconcile")
    if any(r.outcome == "failed" for r in report.repairs):
        raise CommandFailed("some interrupted operations could not be finished")


def gc(
    ctx: typer.Context,
    concurrency: Annotated[
        int, typer.Option(help="Tenants deleted at once (1-64).", show_default=True)
    ] = 4,
    json_: JsonOption = False,
) -> None:
    """Delete tenants whose --ttl has expired (throwaway tenants for CI).

    Example (cron, every 10 minutes): tenantctl gc --json.
    """
    from controlplane.lifecycle.gc import collect_expired, expired_tenants
    from tenantctl.progress import tenants_bar

    cli = get_cli(ctx)
    if not 1 <= concurrency <= 64:
        raise InvalidRequest("--concurrency must be between 1 and 64")

    async def work(plane: ControlPlane) -> GcReport:
        total = len(await expired_tenants(plane))
        with tenants_bar(cli, "deleting expired", total, quiet=json_ or not total) as advance:
            return await collect_expired(
                plane,
                actor=cli.actor,
                concurrency=concurrency,
                on_result=lambda result: advance(result.ok),
            )

    report = cli.run(work)
    if json_:
        cli.print_json(report.view())
    else:
        for tenant_id in report.deleted:
            cli.out.print(f"deleted expired tenant {tenant_id}")
        for tenant_id, error in report.failed.items():
            cli.err.print(f"{tenant_id}: {error}")
        if not (report.deleted or report.failed):
            cli.out.print("no expired tenants")
    if report.failed:
        raise CommandFailed(f"{len(report.failed)} expired tenant(s) could not be deleted")


def doctor(ctx: typer.Context, json_: JsonOption = False) -> None:
    """Check the embedded server, catalog, servers, orphans and expired tenants."""
    from controlplane.lifecycle.doctor import run_doctor

    cli = get_cli(ctx)

    async def work(plane: ControlPlane) -> DoctorReport:
        return await run_doctor(plane)

    report = cli.run(work)
    if json_:
        cli.print_json(report.view())
    else:
        marks = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}
        for check in report.checks:
            cli.out.print(f"{marks[check.status]:>20} {check.name}: {check.detail}")
    if not report.healthy:
        raise CommandFailed("doctor found problems")


def operations(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's operations.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    json_: JsonOption = False,
) -> None:
    """Show the audit log of lifecycle operations, newest first."""
    cli = get_cli(ctx)
    if not 1 <= limit <= 10_000:
        raise InvalidRequest("--limit must be between 1 and 10000")

    async def work(plane: ControlPlane) -> list[Operation]:
        return await plane.catalog.list_operations(tenant_id=tenant, limit=limit)

    found = cli.run(work)
    if json_:
        cli.print_json([op.view() for op in found])
        return
    table = Table(
        "ID", "STARTED", "ACTION", "TENANT", "OUTCOME", "ACTOR", "ERROR", box=None, pad_edge=False
    )
    for op in found:
        table.add_row(
            str(op.id),
            op.started_at.isoformat()[:19].replace("T", " "),
            op.action,
            op.tenant_id or "-",
            op.outcome.value,
            op.actor,
            op.error or "",
        )
    cli.out.print(table)


def settings(ctx: typer.Context, json_: JsonOption = False) -> None:
    """List every TENANTVEC_* setting with its meaning and current value (secrets masked)."""
    from controlplane.settings import setting_docs

    cli = get_cli(ctx)
    values = cli.settings.display_values()
    rows = [{"env": doc.env, "value": values[doc.env], "doc": doc.doc} for doc in setting_docs()]
    if json_:
        cli.print_json(rows)
        return
    for row in rows:
        cli.out.print(f"[bold]{row['env']}[/] = {row['value'] or '(unset)'}")
        cli.out.print(f"    {row['doc']}")


def secret_key(ctx: typer.Context, json_: JsonOption = False) -> None:
    """Print a new Fernet key for TENANTVEC_SECRET_KEY."""
    cli = get_cli(ctx)
    key = Fernet.generate_key().decode()
    if json_:
        cli.print_json({"secret_key": key})
    else:
        cli.out.print(key)
