"""``tenantctl tenants set-index | set-embedder | set-limits``: changing a live tenant."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from controlplane.errors import InvalidRequest
from controlplane.model.embedder import EmbedderSpec, parse_embedder
from controlplane.model.records import Tenant
from controlplane.model.request import DEFAULTS
from controlplane.tiers import Tier
from tenantctl.context import JsonOption, get_cli
from tenantctl.tenants import (
    ConnectionLimitOption,
    EfConstructionOption,
    IdleTimeoutOption,
    IndexOption,
    ListsOption,
    MOption,
    PrecisionOption,
    StatementTimeoutOption,
    limits_from,
)

if TYPE_CHECKING:
    from controlplane.plane import ControlPlane

from tenantvec_schema.spec import IndexSpec

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the commands to ``tenantctl tenants``."""
    app.command("set-index")(set_index_command)
    app.command("set-embedder")(set_embedder_command)
    app.command("set-limits")(set_limits_command)
    app.command("tune")(tune_command)


def set_limits_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant id.")],
    tier: Annotated[
        Tier | None, typer.Option(help="Take this tier's limits (default: its own).")
    ] = None,
    connection_limit: ConnectionLimitOption = None,
    statement_timeout: StatementTimeoutOption = None,
    idle_timeout: IdleTimeoutOption = None,
    json_: JsonOption = False,
) -> None:
    """Change what TENANT's own clients may take: connections, statement time.

    Applied to its role on the server at once (new sessions get the new timeouts; a
    lower connection limit refuses new connections beyond it) and by the API's pools.
    """
    from controlplane.lifecycle.limits import set_limits

    cli = get_cli(ctx)
    overrides = limits_from(connection_limit, statement_timeout, idle_timeout)
    if tier is None and not overrides:
        raise InvalidRequest("say what to change: --tier or a limit option")

    async def work(plane: ControlPlane) -> Tenant:
        return await set_limits(plane, name, overrides, tier=tier, actor=cli.actor)

    tenant = cli.run(work)
    if json_:
        cli.print_json(tenant.view())
    else:
        limits = tenant.where.limits
        cli.out.print(
            f"tenant {tenant.id}: {limits.connection_limit} connections, statements up to "
            f"{limits.statement_timeout_ms / 1000:g} s, idle in a transaction up to "
            f"{limits.idle_in_transaction_timeout_ms / 1000:g} s ({limits.tier} tier)"
        )


def set_embedder_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant id.")],
    embedder: Annotated[
        str,
        typer.Argument(
            help="provider:model, e.g. openai:text-embedding-3-large; or none (the tenant "
            "then takes only the vectors its callers send)."
        ),
    ],
    dims: Annotated[
        int | None,
        typer.Option(help="New dimensions, if the model's differ (empties every vector)."),
    ] = None,
    fallback: Annotated[
        list[str] | None, typer.Option(help="Embedder to try when it fails; repeatable.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_: JsonOption = False,
) -> None:
    """Switch TENANT to another embedding model; then run 'tenantctl backfill TENANT'.

    For a tenant of your own vectors, name the model that made them (e.g.
    openai:text-embedding-3-small for 1536-d OpenAI vectors): text queries and chunks
    sent without a vector then work, and there is nothing to backfill.

    Same dimensions: old vectors keep serving until the backfill replaces them. New
    dimensions: the embedding column is recreated empty (a per-tenant schema change),
    so vector search finds nothing until the backfill has run.
    """
    from controlplane.lifecycle.embedder import set_embedder

    cli = get_cli(ctx)
    choice = parse_embedder(embedder, fallback or [])
    spec = choice if isinstance(choice, EmbedderSpec) else None
    if dims is not None and not yes:
        if not sys.stdin.isatty():
            raise InvalidRequest("refusing to change dimensions without --yes when not interactive")
        typer.confirm(
            f"Changing {name} to {dims} dimensions empties all its vectors until "
            "'tenantctl backfill' runs. Go on?",
            abort=True,
            err=True,
        )

    async def work(plane: ControlPlane) -> Tenant:
        return await set_embedder(plane, name, spec, dims=dims, actor=cli.actor)

    tenant = cli.run(work)
    if json_:
        cli.print_json(tenant.view())
    else:
        if tenant.embedder is None:
            cli.out.print(
                f"tenant {tenant.id} has no embedder now: it takes the vectors its callers "
                f"send ({tenant.dims} dims)"
            )
        else:
            cli.out.print(
                f"tenant {tenant.id} now embeds with {tenant.embedder} ({tenant.dims} dims); "
                f"run 'tenantctl backfill {tenant.id}' to embed the chunks another model made"
            )


def set_index_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant id.")],
    index: IndexOption = DEFAULTS.index,
    m: MOption = DEFAULTS.m,
    ef_construction: EfConstructionOption = DEFAULTS.ef_construction,
    lists: ListsOption = DEFAULTS.lists,
    precision: PrecisionOption = None,
    json_: JsonOption = False,
) -> None:
    """Rebuild TENANT's vector index with another kind, build parameters or precision.

    The new index is built online (CREATE INDEX CONCURRENTLY) while the old one keeps
    serving, then swapped in. For a bulk load, create the tenant with '--index none',
    load it, then run this: one build is far faster than one insertion per vector.
    """
    from controlplane.lifecycle.index import set_index

    cli = get_cli(ctx)
    # No --precision: the index keeps the precision it has.
    spec = IndexSpec(
        kind=index, m=m, ef_construction=ef_construction, lists=lists, precision=precision
    )

    async def work(plane: ControlPlane) -> Tenant:
        return await set_index(plane, name, spec, actor=cli.actor)

    tenant = cli.run(work)
    if json_:
        cli.print_json(tenant.view())
    else:
        params = ", ".join(f"{k}={v}" for k, v in tenant.index.params().items())
        cli.out.print(
            f"tenant {tenant.id} now searches with {tenant.index.kind}"
            + (f" ({params})" if params else " (exact)")
        )


def tune_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant id.")],
    target: Annotated[
        float | None,
        typer.Option(
            help="A new recall target, 0.5-1.0 (the share of the true 10 nearest chunks "
            "a search must find). Left out: the tenant's own (default 0.95).",
            show_default=False,
        ),
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Measure TENANT's recall now and set the search setting that meets its target.

    Random chunks of the tenant are searched for exactly and through its index at
    rising ef_search (HNSW) or probes (IVFFlat); the smallest setting that finds the
    target's share of the true neighbours is kept, and its searches use it unless a
    request passes its own. The API does this in the background (TENANTVEC_RECALL_SECONDS)
    whenever the index, the target or the tenant's size changed; this does it now.
    """
    from controlplane.retrieval.recall import tune_recall

    cli = get_cli(ctx)

    async def work(plane: ControlPlane) -> Tenant:
        return await tune_recall(plane, name, target=target, actor=cli.actor)

    tenant = cli.run(work)
    if json_:
        cli.print_json(tenant.view())
    else:
        cli.out.print(describe_recall(tenant))


def describe_recall(tenant: Tenant) -> str:
    """One line: the tenant's recall against its target, and the setting that gave it."""
    tuning = tenant.recall
    if tuning.measured is None:
        if tenant.index.kind.value == "none":
            return f"tenant {tenant.id}: exact search (no index): recall 1.0"
        return (
            f"tenant {tenant.id}: recall not measured yet (target {tuning.target:g}; "
            "fewer than 11 chunks with vectors?)"
        )
    setting = (
        f"ef_search {tuning.ef_search}"
        if tuning.ef_search is not None
        else f"probes {tuning.probes}"
    )
    verdict = (
        "meets"
        if tuning.reached
        else "misses (the widest setting; a denser index helps: set-index --m)"
    )
    return (
        f"tenant {tenant.id}: recall {tuning.measured:.3f} at {setting} {verdict} its "
        f"target {tuning.target:g} ({tuning.sample} samples of {tuning.chunks:,} chunks)"
    )
