"""``tenantctl servers ...``: the Postgres servers tenants are placed on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tenantctl.context import JsonOption, get_cli
from tenantctl.errors import CommandFailed

if TYPE_CHECKING:
    from controlplane.lifecycle.drain import DrainReport
    from controlplane.lifecycle.placement import ServerLoad
    from controlplane.plane import ControlPlane

from controlplane.model.records import Server

__all__ = ["app"]

app = typer.Typer(
    help="Register and list Postgres servers that host tenants.", no_args_is_help=True
)


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the server, e.g. pg-eu-1.")],
    dsn: Annotated[
        str,
        typer.Argument(
            help="Admin connection string: a role with CREATEDB and CREATEROLE (or superuser), "
            "e.g. postgresql://admin:$PW@db.internal:5432/postgres."
        ),
    ],
    capacity: Annotated[
        int | None, typer.Option(help="Most tenants to place here (default: no limit).")
    ] = None,
    max_bytes: Annotated[
        str | None,
        typer.Option(
            "--max-bytes",
            help="Place no more tenants once its databases hold this much, e.g. 500GB "
            "(default: no limit).",
        ),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            help="Update a server already registered under NAME (new credentials, "
            "capacity) instead of refusing; its tenants stay. For start-up scripts."
        ),
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Register an external Postgres: checks it has pgvector and prepares its template."""
    from controlplane.backends.servers import register_server
    from controlplane.dsn import ConnInfo
    from controlplane.model.compute import parse_memory

    cli = get_cli(ctx)
    admin = ConnInfo.parse(dsn)
    capacity_bytes = parse_memory(max_bytes) if max_bytes is not None else None

    async def work(plane: ControlPlane) -> Server:
        return await register_server(
            plane.catalog,
            plane.box,
            name,
            admin,
            capacity=capacity,
            capacity_bytes=capacity_bytes,
            timeout=plane.settings.connect_timeout,
            replace=replace,
        )

    server = cli.run(work)
    if json_:
        cli.print_json(server.view())
    else:
        cli.out.print(
            f"server {server.name} registered: {server.address}, Postgres "
            f"{server.server_version}, pgvector {server.pgvector_version}"
        )


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOption = False) -> None:
    """List registered servers with their tenants and the bytes their databases hold
    (read from each server; '-' where one does not answer)."""
    from controlplane.lifecycle.placement import server_loads

    cli = get_cli(ctx)

    async def work(plane: ControlPlane) -> list[ServerLoad]:
        return await server_loads(plane, await plane.catalog.list_servers())

    loads = cli.run(work)
    if json_:
        cli.print_json(
            [load.server.view(tenants=load.tenants, used_bytes=load.bytes) for load in loads]
        )
        return
    table = Table(
        "NAME",
        "KIND",
        "STATE",
        "ADDRESS",
        "POSTGRES",
        "PGVECTOR",
        "TENANTS",
        "CAPACITY",
        "BYTES",
        "MAX BYTES",
        box=None,
        pad_edge=False,
    )
    for load in loads:
        s = load.server
        table.add_row(
            s.name,
            s.kind,
            s.state.value,
            s.address,
            s.server_version,
            s.pgvector_version,
            str(load.tenants),
            "-" if s.capacity is None else str(s.capacity),
            "-" if load.bytes is None else _size(load.bytes),
            "-" if s.capacity_bytes is None else _size(s.capacity_bytes),
        )
    cli.out.print(table)


@app.command("drain")
def drain(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Server name.")],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Where its tenants go: BACKEND or BACKEND:SERVER (default: postgres, the "
            "least full active server for each).",
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=32, help="Moves at once (each copies a whole tenant).")
    ] = 2,
    json_: JsonOption = False,
) -> None:
    """Move every tenant off server NAME, a few at a time, while they serve.

    The server is marked draining first (placement gives it no new tenant), then each
    tenant moves as 'tenantctl tenants move' moves one. Interrupted, it resumes when run
    again. When it is empty, unregister it with 'tenantctl servers remove NAME', or take
    it back with 'tenantctl servers activate NAME'.
    Example: tenantctl servers drain pg-eu-1 --concurrency 4.
    """

    from controlplane.lifecycle.drain import (
        check_destination,
        check_drain,
        drain_server,
        tenants_to_drain,
    )
    from tenantctl.moves import parse_destination
    from tenantctl.progress import tenants_bar

    cli = get_cli(ctx)
    backend, to_server = parse_destination(to) if to is not None else ("postgres", None)
    check_drain(name, to_server, concurrency)

    async def work(plane: ControlPlane) -> DrainReport:
        total = len(await tenants_to_drain(plane, name))
        await check_destination(plane, name, backend, to_server)  # before the bar shows
        with tenants_bar(cli, f"draining {name}", total, quiet=json_) as advance:
            return await drain_server(
                plane,
                name,
                backend=backend,
                to_server=to_server,
                concurrency=concurrency,
                actor=cli.actor,
                on_result=lambda outcome: advance(outcome.ok),
            )

    report = cli.run(work)
    facts = report.view()
    if json_:
        cli.print_json(facts)
    else:
        for move in report.moves:
            if not move.ok:
                cli.out.print(f"{move.tenant}: not moved: {move.error}")
        cli.out.print(
            f"server {name}: {facts.moved} tenants moved, {facts.failed} failed, "
            f"{len(report.left)} left"
            + ("; drained -- 'tenantctl servers remove' to unregister it" if report.drained else "")
        )
    if not report.drained:
        raise CommandFailed(
            f"server {name} still has tenants ({', '.join(report.left[:5])}"
            f"{', ...' if len(report.left) > 5 else ''}); run the drain again"
        )


@app.command("activate")
def activate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Server name.")],
    json_: JsonOption = False,
) -> None:
    """Take a draining server back into placement: it gets new tenants again."""
    from controlplane.model.records import ServerState

    cli = get_cli(ctx)

    async def work(plane: ControlPlane) -> Server:
        return await plane.catalog.update_server(name, state=ServerState.ACTIVE)

    server = cli.run(work)
    if json_:
        cli.print_json(server.view())
    else:
        cli.out.print(f"server {name} is active: it takes new tenants")


def _size(n: int) -> str:
    for unit, scale in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1024:.0f} kB"


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Server name.")],
    json_: JsonOption = False,
) -> None:
    """Forget a server that hosts no tenants (its databases are not touched)."""
    from controlplane.backends.servers import unregister_server

    cli = get_cli(ctx)

    async def work(plane: ControlPlane) -> None:
        await unregister_server(plane.catalog, name)

    cli.run(work)
    if json_:
        cli.print_json({"removed": name})
    else:
        cli.out.print(f"server {name} removed")
