"""``serve``, ``keys ...``, ``search`` and ``ingest``: the data plane from the command line."""

from __future__ import annotations

import asyncio
import os
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import typer
from rich.table import Table

from tenantctl.context import JsonOption, get_cli, json_option
from tenantctl.ingest import backfill_command, ingest

if TYPE_CHECKING:
    from controlplane.keys import (
        IssuedKey,
    )
    from controlplane.plane import ControlPlane
    from controlplane.retrieval import SearchRequest, SearchResponse

from controlplane.errors import InvalidRequest
from controlplane.model.records import ApiKey

__all__ = ["register"]

keys_app = typer.Typer(
    help="Create, list and revoke tenant API keys; show the admin token.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("search")(search_command)
    app.command("ingest")(ingest)
    app.command("backfill")(backfill_command)
    app.add_typer(keys_app, name="keys")


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8080,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            show_default=False,
            help="API processes. They share TENANTVEC_MAX_CONNECTIONS_PER_SERVER: each "
            "gets 1/N of every server's connection budget. Default: one per three CPU "
            "cores this process may use, at least one.",
        ),
    ] = None,
) -> None:
    """Run the HTTP API (admin and data plane) until interrupted.

    Admin calls take the admin token (TENANTVEC_ADMIN_TOKEN, or the file named at
    start); data calls take a tenant key from 'tenantctl keys create'. OpenAPI at
    /schema/openapi.json; /healthz, /readyz, /metrics for operations.
    """
    from controlplane.api.serve import serve as serve_api  # only this command needs uvicorn
    from controlplane.keys import admin_token_path, load_admin_token
    from controlplane.localpg import EmbeddedServer

    cli = get_cli(ctx)
    settings = cli.settings
    if workers is None:
        workers = min(default_workers(), settings.routing.max_connections_per_server)
    if workers > settings.routing.max_connections_per_server:
        raise InvalidRequest("--workers cannot exceed TENANTVEC_MAX_CONNECTIONS_PER_SERVER")
    load_admin_token(settings)  # create the token file before workers race for it
    if not settings.catalog.url:
        EmbeddedServer(settings).ensure_running()
    where = "TENANTVEC_ADMIN_TOKEN" if settings.api.admin_token else str(admin_token_path(settings))
    cli.err.print(f"tenantvec API on {host}:{port} ({workers} worker(s)); admin token: {where}")
    # Workers build their settings from the environment: tell them how many share the
    # budget.
    os.environ["TENANTVEC_API_WORKERS"] = str(workers)
    serve_api(settings, host=host, port=port, workers=workers, debug=cli.debug)


def default_workers() -> int:
    """API processes for this machine: one per three usable cores, at least one.

    A vector search costs the API process about half the CPU it costs Postgres
    (``make bench-serving``), so on one machine the API needs about a third of the cores;
    each process is single-threaded (asyncio), so that is one process per three cores.
    On 2 cores: 1 -- a second would only take CPU from Postgres.
    """
    return max(1, len(os.sched_getaffinity(0)) // 3)


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Tenant id.")],
    name: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    json_: JsonOption = False,
) -> None:
    """Create an API key for TENANT; the key is printed once and cannot be shown again."""
    from controlplane.keys import create_key

    cli = get_cli(ctx)

    async def work(plane: ControlPlane) -> IssuedKey:
        return await create_key(plane, tenant, actor=cli.actor, name=name)

    issued = cli.run(work)
    if json_:
        cli.print_json(issued.view())
    else:
        cli.err.print(f"key {issued.key.id} for tenant {tenant}; store it now, it is shown once:")
        cli.out.print(issued.secret)


@keys_app.command("admin")
def keys_admin(ctx: typer.Context) -> None:
    """Print the admin token of the API's admin endpoints (tenants, keys, operations).

    It is TENANTVEC_ADMIN_TOKEN when that is set, else the token in TENANTVEC_HOME's
    admin-token file (mode 0600), made on first use -- which whoever reads that file has
    anyway. Use it as 'Authorization: Bearer TOKEN'.
    """
    from controlplane.keys import load_admin_token

    cli = get_cli(ctx)
    cli.out.print(load_admin_token(cli.settings), markup=False, soft_wrap=True)


@keys_app.command("list")
def keys_list(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Tenant id.")],
    all_: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    json_: JsonOption = False,
) -> None:
    """List TENANT's keys (ids and names; secrets are never stored)."""
    from controlplane.keys import list_keys

    cli = get_cli(ctx)

    async def work(plane: ControlPlane) -> list[ApiKey]:
        return await list_keys(plane, tenant, include_revoked=all_)

    found = cli.run(work)
    if json_:
        cli.print_json([k.view() for k in found])
        return
    table = Table("id", "name", "created", "by", "revoked")
    for key in found:
        table.add_row(
            key.id,
            key.name or "",
            key.created_at.strftime("%Y-%m-%d %H:%M"),
            key.created_by,
            key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "",
        )
    cli.out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Tenant id.")],
    key_id: Annotated[str, typer.Argument(help="Key id (from 'tenantctl keys list').")],
    json_: JsonOption = False,
) -> None:
    """Revoke one of TENANT's keys.

    Running APIs refuse it at once, or within TENANTVEC_ROUTE_TTL_SECONDS + 1 s when
    they run in another process.
    """
    from controlplane.keys import revoke_key

    cli = get_cli(ctx)

    async def work(plane: ControlPlane) -> ApiKey:
        return await revoke_key(plane, tenant, key_id, actor=cli.actor)

    key = cli.run(work)
    if json_:
        cli.print_json(key.view())
    else:
        cli.out.print(f"key {key.id} of tenant {tenant} revoked")


class ModeChoice(StrEnum):
    vector = "vector"
    keyword = "keyword"
    hybrid = "hybrid"


def search_command(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Tenant id.")],
    query: Annotated[
        str | None,
        typer.Argument(help="What to look for, in words (embedded with the tenant's embedder)."),
    ] = None,
    k: Annotated[
        int, typer.Option("-k", "--k", help="How many hits (1-1000: the server's TENANTVEC_MAX_K).")
    ] = 10,
    hybrid: Annotated[
        bool, typer.Option("--hybrid", help="Fuse vector and full-text rankings (RRF).")
    ] = False,
    mode: Annotated[
        ModeChoice | None,
        typer.Option(help="vector (default), keyword (full text only) or hybrid."),
    ] = None,
    keyword_weight: Annotated[
        float, typer.Option(help="Hybrid: the full-text ranking's share, 0-1.")
    ] = 0.5,
    vector: Annotated[
        str | None,
        typer.Option(help="Query embedding as a JSON array, e.g. '[0.1, 0.2, 0.3]'."),
    ] = None,
    filter_: Annotated[
        str | None,
        typer.Option(
            "--filter",
            help='On chunk metadata, as JSON: \'{"lang": "en"}\' (containment) or with operators, '
            '\'{"year": {"$gte": 2020}}\' ($eq $ne $gt $gte $lt $lte $in $nin $exists $and $or '
            "$not).",
        ),
    ] = None,
    min_similarity: Annotated[
        float | None, typer.Option(help="Return nothing whose vector similarity is lower.")
    ] = None,
    api: Annotated[
        str | None,
        typer.Option(
            help="Search through a running API at this URL (with TENANTVEC_API_KEY, or the "
            "admin token) instead of connecting to the tenant database directly."
        ),
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Search TENANT: the best chunks for QUERY (or --vector), best first.

    Examples: tenantctl search acme "refund policy" --hybrid; tenantctl search acme
    "invoice" --mode keyword --filter '{"lang": "en"}'.
    """
    from controlplane.keys import load_admin_token
    from controlplane.retrieval.search import search
    from controlplane.routing import TenantRouter

    cli = get_cli(ctx)
    request = _search_request(
        {
            "text": query,
            "vector": json_option("--vector", vector) if vector is not None else None,
            "k": k,
            "hybrid": hybrid,
            "mode": mode.value if mode else None,
            "keyword_weight": keyword_weight,
            "filter": json_option("--filter", filter_) if filter_ is not None else None,
            "min_similarity": min_similarity,
        }
    )
    if api:
        token = cli.environ.get("TENANTVEC_API_KEY") or load_admin_token(cli.settings)
        result = asyncio.run(_search_api(api, token, tenant, request))
    else:

        async def work(plane: ControlPlane) -> SearchResponse:
            async with TenantRouter.open(plane) as router:
                return await search(router, tenant, request)

        result = cli.run(work)
    if json_:
        cli.print_json(msgspec.to_builtins(result))
        return
    if not result.results:
        cli.out.print("no results")
        return
    table = Table("score", "document", "chunk", "content")
    for hit in result.results:
        content = " ".join((hit.content or "").split())
        table.add_row(f"{hit.score:.4f}", hit.document_id, str(hit.chunk), content[:100])
    cli.out.print(table)


async def _search_api(url: str, token: str, tenant: str, request: SearchRequest) -> SearchResponse:
    from controlplane.client import ApiClient

    async with ApiClient(url, token) as client:
        return await client.search(tenant, request)


def _search_request(fields: dict[str, Any]) -> SearchRequest:
    from controlplane.retrieval import SearchRequest
    from controlplane.retrieval.search import search_mode

    if fields["text"] is None and fields["vector"] is None:
        raise InvalidRequest("give a QUERY, or --vector")
    try:
        request = msgspec.convert(fields, SearchRequest)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid search: {exc}") from None
    search_mode(request)  # contradictions fail here, before any connection
    return request
