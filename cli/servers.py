"""``tenantctl servers ...``: the Postgres servers tenants are placed on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.context import JsonOption, get_cli

if TYPE_CHECKING:
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

    cli = get_cli(ctx)
    admin = ConnInfo.parse(dsn)

    async def work(plane: ControlPlane) -> Server:
        return await register_server(
            plane.catalog,
            plane.box,
            name,
            admin,
            capacity=capacity,
            timeout=plane.settings.connect_timeout,
            replace=replace,
        )

    server = cli.run(work)
    if json_:
        cli.print_json(server.public_dict())
    else:
        cli.out.print(
            f"server {server.name} registered: {server.address}, Postgres "
            f"{server.server_version}, pgvector {server.pgvector_version}"
        )


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOption = False) -> None:
    """List registered servers with their tenant counts."""
    cli = get_cli(ctx)

    async def work(plane: ControlPlane) -> tuple[list[Server], dict[str, int]]:
        return (
            await plane.catalog.list_servers(),
            await plane.catalog.count_live_tenants_by_server(),
        )

    found, counts = cli.run(work)
    if json_:
        cli.print_json([s.public_dict(tenants=counts.get(s.name, 0)) for s in found])
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
        box=None,
        pad_edge=False,
    )
    for s in found:
        table.add_row(
            s.name,
            s.kind,
            s.state.value,
            s.address,
            s.server_version,
            s.pgvector_version,
            str(counts.get(s.name, 0)),
            "-" if s.capacity is None else str(s.capacity),
        )
    cli.out.print(table)


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
