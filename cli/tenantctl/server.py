"""``up``, ``down``, ``status``: the embedded Postgres server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from tenantctl.context import JsonOption, get_cli

if TYPE_CHECKING:
    from controlplane.lifecycle.reconcile import ReconcileReport
    from controlplane.localpg import EmbeddedServer
    from controlplane.plane import ControlPlane


__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command(
        "up",
        help="Start the embedded Postgres (initialising it the first time), "
        "prepare the catalog and finish any interrupted operation.",
    )(up)
    app.command(
        "down",
        help="Stop the embedded Postgres and every instance tenant's server on this machine "
        "(fast shutdown). Ready instance tenants start again at their next request.",
    )(down)
    app.command("status", help="Report the embedded Postgres without starting it.")(status)


def up(ctx: typer.Context, json_: JsonOption = False) -> None:
    from controlplane.lifecycle.reconcile import reconcile
    from controlplane.localpg import EmbeddedServer

    cli = get_cli(ctx)
    server = EmbeddedServer(cli.settings)
    # Explicitly: with TENANTVEC_CATALOG_URL set, opening the plane would not start it.
    server.ensure_running()

    async def work(plane: ControlPlane) -> ReconcileReport:
        return await reconcile(plane, fix=False, actor=cli.actor)

    report = cli.run(work)
    data = _status_dict(server)
    data["reconcile"] = report.view()
    if json_:
        cli.print_json(data)
        return
    cli.out.print(f"embedded Postgres running on 127.0.0.1:{data['port']} (pid {data['pid']})")
    for repair in report.repairs:
        cli.out.print(
            f"  {repair.tenant}: {repair.action} -> {repair.outcome}"
            + (f" ({repair.error})" if repair.error else "")
        )
    if report.orphans:
        cli.out.print(f"  {len(report.orphans)} orphan(s) found: run 'tenantctl reconcile --fix'")


def down(ctx: typer.Context, json_: JsonOption = False) -> None:
    from controlplane.backends.instance.backend import InstanceBackend
    from controlplane.localpg import EmbeddedServer

    cli = get_cli(ctx)
    instances = InstanceBackend(cli.settings).stop_all()
    stopped = EmbeddedServer(cli.settings).stop()
    if json_:
        cli.print_json({"stopped": stopped, "instances_stopped": instances})
        return
    cli.out.print("embedded Postgres stopped" if stopped else "embedded Postgres was not running")
    if instances:
        cli.out.print(f"{instances} instance server(s) stopped")


def status(ctx: typer.Context, json_: JsonOption = False) -> None:
    from controlplane.localpg import EmbeddedServer

    cli = get_cli(ctx)
    data = _status_dict(EmbeddedServer(cli.settings))
    if json_:
        cli.print_json(data)
        return
    if not data["initialized"]:
        cli.out.print(f"not initialised (TENANTVEC_HOME={cli.settings.home}); run 'tenantctl up'")
    elif not data["running"]:
        cli.out.print(f"stopped (data in {data['data_dir']}); run 'tenantctl up'")
    else:
        cli.out.print(
            f"running: Postgres {data['version']} with pgvector {data['pgvector_version']}, "
            f"pid {data['pid']}, 127.0.0.1:{data['port']}, socket in {data['socket_dir']}, "
            f"data in {data['data_dir']}, since {data['started_at']}"
        )


def _status_dict(server: EmbeddedServer) -> dict[str, Any]:
    status = server.status()
    data: dict[str, Any] = {
        "initialized": status.initialized,
        "running": status.running,
        "pid": status.pid,
        "port": status.port,
        "data_dir": str(status.data_dir),
        "socket_dir": str(status.socket_dir) if status.socket_dir else None,
        "started_at": status.started_at.isoformat() if status.started_at else None,
    }
    if status.initialized:
        binaries = server.binaries
        data["version"] = binaries.version
        data["pgvector_version"] = binaries.pgvector_version
    return data
