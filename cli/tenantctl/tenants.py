"""``tenantctl tenants ...``: create, list, show, suspend, delete tenants; hand out DSNs."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from controlplane.errors import InvalidRequest
from controlplane.inputs import has_control, printable
from controlplane.model.embedder import describe_embedder
from controlplane.model.labels import parse_label
from controlplane.model.records import Tenant, TenantState
from tenantctl.context import Cli, JsonOption, get_cli

if TYPE_CHECKING:
    from controlplane.model.views import TenantDetail
    from controlplane.plane import ControlPlane

from controlplane.model.backends import BackendKind
from controlplane.model.request import DEFAULTS, TenantOptions
from controlplane.tiers import Tier
from tenantvec_schema.spec import HALF_PRECISION_FROM_DIMS, IndexKind, Metric, Precision

__all__ = ["app"]

app = typer.Typer(help="Create, inspect and delete tenants.", no_args_is_help=True)


# The role limits, in 'tenants create' and 'tenants set-limits'.
ConnectionLimitOption = Annotated[
    int | None, typer.Option(help="Connections the tenant's own clients (its DSN) may hold.")
]
StatementTimeoutOption = Annotated[
    str | None, typer.Option(help="Default statement timeout of its role, e.g. 30s.")
]
IdleTimeoutOption = Annotated[
    str | None,
    typer.Option(help="How long its role's sessions may sit idle in a transaction, e.g. 1m."),
]

IndexOption = Annotated[
    IndexKind, typer.Option(help="Vector index type ('none': exact search, no index).")
]
MOption = Annotated[int, typer.Option(help="HNSW: links per node.")]
EfConstructionOption = Annotated[int, typer.Option(help="HNSW: build-time candidate list.")]
ListsOption = Annotated[int, typer.Option(help="IVFFlat: number of lists.")]
PrecisionOption = Annotated[
    Precision | None,
    typer.Option(
        help="What the index holds: 'full' (vector, up to 2000 dims) or 'half' (halfvec, "
        "up to 4000 dims, a third of the size; results re-ranked at full precision). "
        f"Left out: half from {HALF_PRECISION_FROM_DIMS} dims on, else full.",
        show_default=False,
    ),
]


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant id: 3-63 of a-z, 0-9 and '-'.")],
    dims: Annotated[
        int | None,
        typer.Option(
            help="Embedding dimensions, fixed for the tenant. Without --embedder: a tenant "
            "for your own vectors of this size (no server-side embedder). Left out: what the "
            "embedder makes (wordllama: 256), else 1536.",
            show_default=False,
        ),
    ] = None,
    metric: Annotated[Metric, typer.Option(help="Distance metric.")] = DEFAULTS.metric,
    index: IndexOption = DEFAULTS.index,
    m: MOption = DEFAULTS.m,
    ef_construction: EfConstructionOption = DEFAULTS.ef_construction,
    lists: ListsOption = DEFAULTS.lists,
    precision: PrecisionOption = None,
    text_config: Annotated[
        str, typer.Option(help="Postgres text search configuration for keyword search.")
    ] = DEFAULTS.text_config,
    backend: Annotated[
        BackendKind,
        typer.Option(
            help="Where the tenant's Postgres lives: 'postgres' (a database and role on a "
            "registered server), 'instance' (a Postgres server of its own on this machine), "
            "'docker' (a container of its own) or 'neon' (a Neon project or branch; see "
            "TENANTVEC_NEON_*)."
        ),
    ] = DEFAULTS.backend,
    server: Annotated[
        str | None,
        typer.Option(help="postgres backend: server to place the tenant on (default: most room)."),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            help="neon backend: Neon region of the tenant's data, e.g. aws-eu-central-1 "
            "(default: TENANTVEC_NEON_REGION)."
        ),
    ] = None,
    tier: Annotated[
        Tier | None,
        typer.Option(
            help="The tenant's limits (connections of its own clients, statement "
            "timeouts) and, for instance/docker, the size of its server (default: "
            "TENANTVEC_TIER); the options below override single values."
        ),
    ] = None,
    connection_limit: ConnectionLimitOption = None,
    statement_timeout: StatementTimeoutOption = None,
    idle_timeout: IdleTimeoutOption = None,
    shared_buffers: Annotated[
        str | None, typer.Option(help="instance/docker: shared_buffers, e.g. 64MB.")
    ] = None,
    work_mem: Annotated[
        str | None, typer.Option(help="instance/docker: work_mem, e.g. 8MB.")
    ] = None,
    maintenance_work_mem: Annotated[
        str | None, typer.Option(help="instance/docker: maintenance_work_mem, e.g. 256MB.")
    ] = None,
    max_connections: Annotated[
        int | None, typer.Option(help="instance/docker: max_connections of the server.")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="key=value tag; repeat for several.")
    ] = None,
    ttl: Annotated[
        str | None,
        typer.Option(help="Delete after this long with 'tenantctl gc' (e.g. 30m, 2h, 7d)."),
    ] = None,
    embedder: Annotated[
        str | None,
        typer.Option(
            help="Embedding model as provider:model: wordllama (offline, semantic), hash "
            "(offline, lexical), openai:text-embedding-3-small, voyage:voyage-3.5; or none "
            "(only the vectors callers send). Default: none with --dims, else "
            "TENANTVEC_EMBEDDER (wordllama)."
        ),
    ] = None,
    fallback: Annotated[
        list[str] | None,
        typer.Option(help="Embedder to try when the one before fails; repeatable, in order."),
    ] = None,
    chunk_tokens: Annotated[
        int, typer.Option(help="Token budget of one chunk.")
    ] = DEFAULTS.chunk_tokens,
    chunk_overlap: Annotated[
        int, typer.Option(help="Tokens each chunk repeats from the one before.")
    ] = DEFAULTS.chunk_overlap,
    recall_target: Annotated[
        float,
        typer.Option(
            help="The share of the true 10 nearest chunks a search must find, 0.5-1.0: "
            "tenantvec measures the tenant's recall on its own data and sets its "
            "ef_search (HNSW) or probes (IVFFlat) to meet it ('tenants tune' changes it)."
        ),
    ] = DEFAULTS.recall_target,
    json_: JsonOption = False,
) -> None:
    """Create a tenant: its own database and role, with the embedding schema applied.

    Bringing your own vectors (OpenAI, Voyage, ... computed in your application)? Give
    their size alone: 'tenants create acme --dims 1536' makes a tenant without an
    embedder, which stores and searches the vectors it is sent.

    For text in, text out, name an embedder ('--embedder wordllama', the default when
    neither option is given; 'openai:text-embedding-3-small'), and the dimensions follow
    from it: wordllama 256 (or 128, 64), else 1536; the 'hash' embedder makes any number.
    Dimensions are fixed at creation ('set-embedder --dims' changes them later).
    """
    from controlplane.lifecycle.tenants import create_tenant

    cli = get_cli(ctx)
    if fallback and not embedder:
        raise InvalidRequest("--fallback needs --embedder")
    options = TenantOptions(
        id=name,
        dims=dims,
        metric=metric,
        index=index,
        m=m,
        ef_construction=ef_construction,
        lists=lists,
        precision=precision,
        text_config=text_config,
        backend=backend,
        server=server,
        region=region,
        tier=tier,
        resources={
            name: value
            for name, value in {
                "shared_buffers": shared_buffers,
                "work_mem": work_mem,
                "maintenance_work_mem": maintenance_work_mem,
                "max_connections": max_connections,
            }.items()
            if value is not None
        },
        limits=limits_from(connection_limit, statement_timeout, idle_timeout),
        labels=dict(parse_label(text) for text in label or []),
        ttl=ttl,
        embedder=embedder,
        fallbacks=fallback or [],
        chunk_tokens=chunk_tokens,
        chunk_overlap=chunk_overlap,
        recall_target=recall_target,
    )
    request = options.to_request()

    async def work(plane: ControlPlane) -> Tenant:
        return await create_tenant(plane, request, actor=cli.actor)

    tenant = cli.run(work)
    if json_:
        cli.print_json(tenant.view())
    else:
        cli.out.print(
            f"tenant {tenant.id} is {tenant.state} {tenant.where.described} "
            f"(schema version {tenant.schema_version}, {tenant.dims} dims, embedder "
            f"{describe_embedder(tenant.embedder)}); "
            f"connection string: tenantctl tenants dsn {tenant.id}"
        )


def limits_from(connections: int | None, statement: str | None, idle: str | None) -> dict[str, Any]:
    given = {
        "connection_limit": connections,
        "statement_timeout": statement,
        "idle_in_transaction_timeout": idle,
    }
    return {name: value for name, value in given.items() if value is not None}


@app.command("suspend")
def suspend(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant id.")],
    json_: JsonOption = False,
) -> None:
    """Stop TENANT's compute; its data, DSN and keys stay.

    postgres backend: its database stops accepting connections. instance/docker: its
    server is stopped (no memory used). neon: its compute endpoint is suspended (no
    compute billed). Its next API request resumes it, as does 'resume'. With
    TENANTVEC_SUSPEND_AFTER set, the API suspends idle tenants by itself.
    """
    from controlplane.lifecycle.suspend import suspend_tenant

    _switch_command(get_cli(ctx), name, json_, suspend_tenant)


@app.command("resume")
def resume(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant id.")],
    json_: JsonOption = False,
) -> None:
    """Start a suspended TENANT again (its first API request would, too)."""
    from controlplane.lifecycle.suspend import resume_tenant

    _switch_command(get_cli(ctx), name, json_, resume_tenant)


@app.command("restart")
def restart(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant id.")],
    json_: JsonOption = False,
) -> None:
    """Start a ready TENANT's own server if it is not running (instance, docker).

    The API does this by itself (at the tenant's next request, and every
    TENANTVEC_SUPERVISE_SECONDS); this is the manual way. A no-op if it runs.
    """
    from controlplane.lifecycle.supervise import restart_if_down

    cli = get_cli(ctx)

    async def work(plane: ControlPlane) -> bool:
        return await restart_if_down(plane, name, actor=cli.actor)

    restarted = cli.run(work)
    if json_:
        cli.print_json({"tenant": name, "restarted": restarted})
    else:
        cli.out.print(
            f"tenant {name}: server restarted" if restarted else f"tenant {name}: server runs"
        )


def _switch_command(
    cli: Cli, name: str, json_: bool, switch: Callable[..., Awaitable[Tenant]]
) -> None:
    async def work(plane: ControlPlane) -> Tenant:
        return await switch(plane, name, actor=cli.actor)

    tenant = cli.run(work)
    if json_:
        cli.print_json(tenant.view())
    else:
        cli.out.print(f"tenant {tenant.id} is {tenant.state}")


@app.command("list")
def list_(
    ctx: typer.Context,
    state: Annotated[
        list[TenantState] | None, typer.Option(help="Only tenants in this state; repeatable.")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="Only tenants with this key=value label.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include deleted tenants.")] = False,
    json_: JsonOption = False,
) -> None:
    """List tenants (deleted ones only with --all)."""
    from controlplane.lifecycle.tenants import list_tenants

    cli = get_cli(ctx)
    labels = dict(parse_label(text) for text in label or [])

    async def work(plane: ControlPlane) -> list[Tenant]:
        return await list_tenants(plane, states=state, labels=labels, include_deleted=all_)

    found = cli.run(work)
    if json_:
        cli.print_json([t.view() for t in found])
        return
    table = Table(
        "ID",
        "STATE",
        "SERVER",
        "DIMS",
        "METRIC",
        "INDEX",
        "EMBEDDER",
        "SCHEMA",
        "LABELS",
        "EXPIRES",
        "CREATED",
        box=None,
        pad_edge=False,
    )
    for t in found:
        table.add_row(
            printable(t.id) if has_control(t.id) else t.id,  # one tenant, one row
            t.state.value,
            t.server or "-",
            str(t.dims),
            t.metric.value,
            t.index.kind.value,
            t.embedder.identity if t.embedder is not None else "none",
            str(t.schema_version),
            ",".join(f"{k}={v}" for k, v in sorted(t.labels.items())) or "-",
            _short_time(t.expires_at.isoformat()) if t.expires_at else "-",
            _short_time(t.created_at.isoformat()),
        )
    cli.out.print(table if found else "no tenants")


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant id.")],
    json_: JsonOption = False,
) -> None:
    """Show a tenant: catalog record, live database facts and recent operations."""
    import msgspec

    from controlplane.lifecycle.tenants import describe_tenant

    cli = get_cli(ctx)

    async def work(plane: ControlPlane) -> TenantDetail:
        return await describe_tenant(plane, name)

    detail = cli.run(work)
    if json_:
        cli.print_json(detail)
        return
    data = msgspec.to_builtins(detail)
    del data["operations"]  # shown below, one line each
    live = data.pop("live", None)
    for key, value in data.items():
        shown = describe_embedder(None) if key == "embedder" and value is None else value
        cli.out.print(f"{key:>15}: {_plain(shown)}")
    if live is not None:
        cli.out.print(f"{'database':>15}: {_plain(live)}")
    cli.out.print(f"{'operations':>15}:")
    for op in detail.operations:
        cli.out.print(
            f"{'':>17}{_short_time(op.started_at)} {op.action} "
            f"{op.outcome} by {op.actor}" + (f": {op.error}" if op.error else "")
        )


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Tenant id.")] = None,
    uid: Annotated[
        str | None,
        typer.Option(
            help="Delete by catalog uid instead of id (for an id 'tenantctl doctor' reports "
            "as no longer valid)."
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_: JsonOption = False,
) -> None:
    """Delete a tenant and its data, and say what became of the data.

    On a Postgres server: DROP DATABASE and DROP ROLE, gone at once. A Neon project is
    soft-deleted by Neon: recoverable for 7 days, then erased (the answer says until
    when); a Neon branch is deleted for good at once. The catalog row stays, as
    deleted, with what the deletion did under placement.erasure.
    """
    from controlplane.lifecycle.tenants import delete_tenant, delete_tenant_by_uid

    cli = get_cli(ctx)
    if (name is None) == (uid is None):
        raise InvalidRequest("name the tenant to delete: its id, or --uid UID")
    if not yes:
        if not sys.stdin.isatty():
            raise InvalidRequest("refusing to delete without --yes when not run interactively")
        typer.confirm(f"Delete tenant {name or uid} and all its data?", abort=True, err=True)

    async def work(plane: ControlPlane) -> Tenant:
        if uid is not None:
            return await delete_tenant_by_uid(plane, uid, actor=cli.actor)
        assert name is not None
        return await delete_tenant(plane, name, actor=cli.actor)

    tenant = cli.run(work)
    if json_:
        cli.print_json(tenant.view())
    else:
        erasure = tenant.where.erasure
        said = f": {erasure}" if erasure else ""
        cli.out.print(f"tenant {printable(tenant.id, 63)} deleted{said}", markup=False)


@app.command("dsn")
def dsn(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant id.")],
    json_: JsonOption = False,
) -> None:
    """Print the tenant role's connection string, password included (for psql or CI)."""
    from controlplane.lifecycle.tenants import tenant_conninfo

    cli = get_cli(ctx)

    async def work(plane: ControlPlane) -> str:
        return (await tenant_conninfo(plane, name)).dsn

    value = cli.run(work)
    if json_:
        cli.print_json({"tenant": name, "dsn": value})
    else:
        sys.stdout.write(value + "\n")


def _short_time(iso: str) -> str:
    return iso[:19].replace("T", " ")


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return "-" if value is None else str(value)
