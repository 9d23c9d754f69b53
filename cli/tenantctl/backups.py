"""``tenantctl tenants backup | restore``: a tenant to one file and back, verified."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tenantctl.context import JsonOption, get_cli

if TYPE_CHECKING:
    from controlplane.plane import ControlPlane

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the commands to ``tenantctl tenants``."""
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)


def backup_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant id.")],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="File to write, or directory (an existing one, or a path ending in '/', "
            "made if missing) to write <id>-<UTC time>.tvbackup in; default: that name here.",
        ),
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Back TENANT up to one file: a consistent snapshot of its documents and chunks
    with its settings and schema version, while it keeps serving.

    The file holds the tenant's data (mode 0600): keep it like the database. It holds no
    passwords and no API keys. Restore it with 'tenantctl tenants restore FILE'.
    Examples: tenantctl tenants backup acme --to /backups/; in cron, a line per tenant
    from 'tenantctl tenants list --json'.
    """
    from controlplane.lifecycle.backup import backup_tenant

    cli = get_cli(ctx)
    dest = Path(to) if to else None
    if to and dest is not None and to.endswith("/"):
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)  # backups hold the tenant's data

    async def work(plane: ControlPlane) -> Any:
        with cli.spinner(f"backing up {name}...", quiet=json_):
            return await backup_tenant(plane, name, dest, actor=cli.actor)

    report = cli.run(work)
    facts = report.view()
    if json_:
        cli.print_json(facts)
        return
    cli.out.print(
        f"backed up {name} to {facts.path}: {facts.documents} documents, "
        f"{facts.chunks} chunks, schema version {facts.schema_version}, "
        f"{facts.bytes / 2**20:.1f} MiB in {facts.seconds:.1f} s"
    )


def restore_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A file 'tenants backup' wrote.")],
    as_: Annotated[
        str | None,
        typer.Option("--as", help="Tenant id to restore as (default: the backup's own)."),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(help="Where to place it: postgres, instance, neon (default: as backed up)."),
    ] = None,
    server: Annotated[
        str | None, typer.Option(help="postgres backend: the registered server to place it on.")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Create a tenant from a backup FILE, verified row for row before it serves.

    Its settings (dims, metric, index, embedder, chunking, labels, limits) are the
    backup's; a backup of an older schema version is migrated to the current one. It
    gets no API keys: create them with 'tenantctl keys create'. A restore that is
    interrupted is rolled back by 'tenantctl reconcile'; run it again.
    Example: tenantctl tenants restore acme-20261203T071500Z.tvbackup --as acme-copy.
    """
    from controlplane.errors import BackupInvalid
    from controlplane.lifecycle.restore import restore_tenant

    cli = get_cli(ctx)

    async def work(plane: ControlPlane) -> Any:
        with cli.spinner(f"restoring {file}...", quiet=json_):
            try:
                return await restore_tenant(
                    plane, file, as_id=as_, backend=backend, server=server, actor=cli.actor
                )
            except BackupInvalid as exc:
                raise BackupInvalid(f"{file}: {exc}") from None

    report = cli.run(work)
    if json_:
        cli.print_json(report.view())
        return
    migrated = (
        f", migrated from schema version {report.from_version}"
        if report.from_version != report.to_version
        else ""
    )
    tenant = report.tenant
    cli.out.print(
        f"restored {tenant.id} on {tenant.server or tenant.backend}: "
        f"{report.manifest.fingerprint.documents} documents, "
        f"{report.manifest.fingerprint.chunks} chunks, verified{migrated}, "
        f"in {report.seconds:.1f} s"
    )
