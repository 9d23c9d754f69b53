"""``tenantctl docs ...``: a tenant's documents and chunks as a collection.

List ids, count, show and delete documents (by id or by filter), show and delete
chunks by id -- what the API's collection endpoints do, run against the tenant's
database through the router (the tenant's own role).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import msgspec
import typer
from rich.table import Table

from controlplane.errors import InvalidRequest
from tenantctl.context import JsonOption, get_cli, json_option

if TYPE_CHECKING:
    from controlplane.plane import ControlPlane
    from controlplane.routing import TenantRouter

__all__ = ["app"]

T = TypeVar("T")

app = typer.Typer(
    help="List, count, show and delete a tenant's documents and chunks.",
    no_args_is_help=True,
)

TenantArg = Annotated[str, typer.Argument(help="Tenant id.")]
FilterOption = Annotated[
    str | None,
    typer.Option(
        "--filter",
        help='On document metadata, as JSON: {"lang": "en"} (containment) or with '
        'operators, {"year": {"$gte": 2020}} ($eq $ne $gt $gte $lt $lte $in $nin $exists '
        "$and $or $not).",
    ),
]


def _run(ctx: typer.Context, work: Callable[[TenantRouter], Awaitable[T]]) -> T:
    from controlplane.routing import TenantRouter

    async def main(plane: ControlPlane) -> T:
        async with TenantRouter.open(plane) as router:
            return await work(router)

    return get_cli(ctx).run(main)


def _filter(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    spec = json_option("--filter", text)
    if not isinstance(spec, dict):
        raise InvalidRequest("--filter must be a JSON object")
    return spec


@app.command("ids")
def ids_command(
    ctx: typer.Context,
    tenant: TenantArg,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Ids per page.")] = 100,
    cursor: Annotated[
        str | None, typer.Option(help="Start after this page (a next_cursor printed before).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every id, page after page.")] = False,
    json_: JsonOption = False,
) -> None:
    """Print TENANT's document ids in id order, a page at a time.

    Examples: tenantctl docs ids acme; tenantctl docs ids acme --all > ids.txt;
    tenantctl docs ids acme --cursor <next_cursor> --json.
    """
    from controlplane.retrieval.collection import list_document_ids
    from controlplane.retrieval.models import DocumentIds

    async def work(router: TenantRouter) -> DocumentIds:
        page = await list_document_ids(router, tenant, cursor=cursor, limit=limit)
        ids = list(page.ids)
        while all_ and page.next_cursor is not None:
            page = await list_document_ids(router, tenant, cursor=page.next_cursor, limit=limit)
            ids.extend(page.ids)
        return DocumentIds(ids=ids, next_cursor=page.next_cursor)

    result = _run(ctx, work)
    cli = get_cli(ctx)
    if json_:
        cli.print_json(msgspec.to_builtins(result))
        return
    for document_id in result.ids:
        cli.out.print(document_id, markup=False, soft_wrap=True)
    if result.next_cursor is not None:
        cli.err.print(f"more: --cursor {result.next_cursor}", markup=False)


@app.command("count")
def count_command(
    ctx: typer.Context, tenant: TenantArg, filter_: FilterOption = None, json_: JsonOption = False
) -> None:
    """Count TENANT's documents and chunks (those a --filter matches).

    Example: tenantctl docs count acme --filter '{"lang": "en"}'.
    """
    from controlplane.retrieval.collection import count_documents

    spec = _filter(filter_)
    result = _run(ctx, lambda router: count_documents(router, tenant, spec))
    cli = get_cli(ctx)
    if json_:
        cli.print_json(msgspec.to_builtins(result))
    else:
        cli.out.print(f"{result.documents} documents, {result.chunks} chunks")


@app.command("show")
def show_command(
    ctx: typer.Context,
    tenant: TenantArg,
    document_ids: Annotated[list[str], typer.Argument(help="Document ids (1-1000).")],
    vectors: Annotated[bool, typer.Option(help="With each chunk's vector (in --json).")] = False,
    json_: JsonOption = False,
) -> None:
    """Show documents of TENANT with their chunks; exits 3 if one is not there.

    Example: tenantctl docs show acme refunds.md faq-7 --json.
    """
    from controlplane.retrieval.collection import fetch_documents

    result = _run(
        ctx,
        lambda router: fetch_documents(router, tenant, document_ids, include_embeddings=vectors),
    )
    cli = get_cli(ctx)
    if json_:
        cli.print_json(msgspec.to_builtins(result))
    else:
        for doc in result.documents:
            title = f" - {doc.title}" if doc.title else ""
            cli.out.print(
                f"{doc.id}{title}  {msgspec.json.encode(doc.metadata).decode()}", markup=False
            )
            table = Table("chunk id", "#", "content")
            for chunk in doc.chunks:
                table.add_row(chunk.id, str(chunk.ordinal), " ".join(chunk.content.split())[:100])
            cli.out.print(table)
    if result.missing:
        cli.err.print(f"not found: {', '.join(result.missing)}", markup=False)
        raise typer.Exit(3)


@app.command("delete")
def delete_command(
    ctx: typer.Context,
    tenant: TenantArg,
    document_ids: Annotated[
        list[str] | None, typer.Argument(help="Document ids (1-1000); or give --filter.")
    ] = None,
    filter_: FilterOption = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Delete by --filter without asking first.")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Delete documents of TENANT with their chunks: by id, or all a --filter matches.

    One statement: all of it or nothing. A --filter delete says how many documents it
    would take and stops unless --yes is given.

    Examples: tenantctl docs delete acme old.md; tenantctl docs delete acme
    --filter '{"source": "crawler"}' --yes.
    """
    from controlplane.retrieval.collection import count_documents, delete_documents

    spec = _filter(filter_)
    if bool(document_ids) == (spec is not None):
        raise InvalidRequest("give document ids or --filter (one of the two)")
    if spec is not None and not yes:
        matched = _run(ctx, lambda router: count_documents(router, tenant, spec))
        raise InvalidRequest(
            f"--filter matches {matched.documents} documents; pass --yes to delete them"
        )
    result = _run(
        ctx, lambda router: delete_documents(router, tenant, ids=document_ids or None, spec=spec)
    )
    cli = get_cli(ctx)
    if json_:
        cli.print_json(msgspec.to_builtins(result))
        return
    cli.out.print(f"deleted {result.deleted} documents")
    if result.missing:
        cli.err.print(f"not found: {', '.join(result.missing)}", markup=False)


@app.command("chunks")
def chunks_command(
    ctx: typer.Context,
    tenant: TenantArg,
    chunk_ids: Annotated[list[str], typer.Argument(help='Chunk ids ("doc#0", or your own).')],
    delete: Annotated[
        bool, typer.Option("--delete", help="Delete these chunks (their siblings stay).")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Show (or --delete) chunks of TENANT by id; exits 3 if one is not there.

    Examples: tenantctl docs chunks acme refunds.md#0; tenantctl docs chunks acme
    node-7f3a --delete.
    """
    from controlplane.retrieval.chunks import delete_chunks, fetch_chunks

    cli = get_cli(ctx)
    if delete:
        gone = _run(ctx, lambda router: delete_chunks(router, tenant, chunk_ids))
        missing = gone.missing
        if json_:
            cli.print_json(msgspec.to_builtins(gone))
        else:
            cli.out.print(f"deleted {gone.deleted} chunk{'' if gone.deleted == 1 else 's'}")
    else:
        found = _run(ctx, lambda router: fetch_chunks(router, tenant, chunk_ids))
        missing = found.missing
        if json_:
            cli.print_json(msgspec.to_builtins(found))
        else:
            table = Table("chunk id", "document", "#", "content")
            for chunk in found.chunks:
                content = " ".join(chunk.content.split())[:100]
                table.add_row(chunk.id, chunk.document_id, str(chunk.ordinal), content)
            cli.out.print(table)
    if missing:
        cli.err.print(f"not found: {', '.join(missing)}", markup=False)
        if not delete:
            raise typer.Exit(3)
