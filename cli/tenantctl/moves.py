"""``tenantctl tenants move``: a tenant to another placement while it serves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from controlplane.errors import InvalidRequest
from controlplane.model.records import validate_server_name
from tenantctl.context import JsonOption, get_cli

if TYPE_CHECKING:
    from controlplane.plane import ControlPlane

__all__ = ["parse_destination", "register"]


def register(app: typer.Typer) -> None:
    """Add the command to ``tenantctl tenants``."""
    app.command("move")(move_command)


def parse_destination(text: str) -> tuple[str, str | None]:
    """``postgres:db2`` -> ("postgres", "db2"); ``instance`` -> ("instance", None)."""
    backend, colon, server = text.partition(":")
    if not backend or (colon and not server):
        raise InvalidRequest(
            f"--to {text!r}: say BACKEND or BACKEND:SERVER (postgres:db2, instance, neon)"
        )
    if server:
        validate_server_name(server)
    return backend, server or None


def move_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant id.")],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="Where to: BACKEND or BACKEND:SERVER -- postgres:db2 (a registered "
            "server), postgres (the active server with the most room), instance (a "
            "Postgres of its own), neon.",
        ),
    ],
    json_: JsonOption = False,
) -> None:
    """Move TENANT to another placement: copy, verify, switch, drop the old copy.

    Reads are served throughout. The copy runs while writes go on; writes are refused
    (503 with Retry-After) only while what was written meanwhile is caught up, until
    the switch. Keys, labels, embedder and index settings stay the tenant's.
    A move that is interrupted leaves the tenant served from one copy; 'tenantctl
    reconcile' rolls it back (before the switch) or finishes it (after).
    Examples: tenantctl tenants move acme --to instance; tenantctl tenants move acme
    --to postgres:db2.
    """
    from controlplane.lifecycle.move import move_tenant

    cli = get_cli(ctx)

    async def work(plane: ControlPlane) -> Any:
        backend, server = parse_destination(to)
        with cli.spinner(f"moving {name} to {to}...", quiet=json_):
            return await move_tenant(plane, name, backend=backend, server=server, actor=cli.actor)

    report = cli.run(work)
    if json_:
        cli.print_json(report.view())
        return
    moved = report.tenant
    cli.out.print(
        f"moved {name} from {report.source_server or report.source_backend} to "
        f"{moved.server or moved.backend}: {report.documents} documents, "
        f"{report.chunks} chunks, verified, in {report.seconds:.1f} s (writes paused "
        f"{report.writes_paused_seconds:.1f} s)"
    )
