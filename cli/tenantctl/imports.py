"""``tenantctl import chroma``: bring a ChromaDB collection into a tenant."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from controlplane.model.embedder import EmbedderSpec, parse_embedder
from tenantctl.context import JsonOption, get_cli

if TYPE_CHECKING:
    from controlplane.plane import ControlPlane
    from controlplane.retrieval.chroma import ChromaImportReport


__all__ = ["app"]

app = typer.Typer(help="Import vectors from other stores.", no_args_is_help=True)


@app.command("chroma")
def chroma(
    ctx: typer.Context,
    path: Annotated[
        Path, typer.Option(help="Directory of the Chroma store (PersistentClient path).")
    ],
    tenant: Annotated[
        str, typer.Option(help="Tenant to import into; created if it does not exist.")
    ],
    collection: Annotated[
        str | None, typer.Option(help="Collection name (needed if the store holds several).")
    ] = None,
    embedder: Annotated[
        str | None,
        typer.Option(
            help="Embedder of a tenant the import creates, for text queries: the model that "
            "made the collection's vectors (e.g. openai:text-embedding-3-small). Default: "
            "none (search by vector; the report says which model matches)."
        ),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=5000, help="Records per batch.")] = 500,
    json_: JsonOption = False,
) -> None:
    """Copy a ChromaDB collection -- ids, documents, metadatas, embeddings -- into TENANT.

    A missing tenant is created with the collection's dimensions and distance (any
    number of dimensions) and keeps the collection's vectors; it gets no embedder unless
    --embedder names one, and the report says which tenantvec embedder matches the
    collection's embedding function, for text queries. Run it again after an
    interruption: it resumes from the last batch it finished. At the end it checks that
    the counts match and that a sample of records is identical on both sides. Needs the
    chromadb package: pip install 'tenantvec[chroma]'.
    """
    from controlplane.retrieval.chroma import import_chroma
    from controlplane.routing import TenantRouter
    from tenantctl.progress import progress_bar  # rich.progress loads with the bar

    cli = get_cli(ctx)
    choice = parse_embedder(embedder) if embedder is not None else None
    spec = choice if isinstance(choice, EmbedderSpec) else None
    progress = progress_bar(cli, f"importing {collection or 'collection'}", "records", quiet=json_)

    async def work(plane: ControlPlane) -> ChromaImportReport:
        async with TenantRouter.open(plane) as router:
            task = progress.add_task("import", total=None)
            with progress:
                return await import_chroma(
                    plane,
                    router,
                    path=path,
                    tenant_id=tenant,
                    collection_name=collection,
                    embedder=spec,
                    batch=batch,
                    actor=cli.actor,
                    on_start=lambda total, done: progress.update(task, total=total, completed=done),
                    on_batch=lambda n: progress.advance(task, n),
                )

    report = cli.run(work)
    if json_:
        cli.print_json(
            {
                "tenant": report.tenant,
                "collection": report.collection,
                "created_tenant": report.created_tenant,
                "resumed_from": report.resumed_from,
                "records": report.records,
                "copied": report.copied,
                "dims": report.dims,
                "embedder": report.embedder,
                "source_embedding": report.source_embedding,
                "matching_embedder": report.matching_embedder,
                "sampled": report.sampled,
                "mismatched": report.mismatched,
                "verified": report.verified,
                "seconds": report.seconds,
            }
        )
    else:
        out = cli.out
        if report.created_tenant:
            out.print(f"created tenant {report.tenant} for collection {report.collection}")
        if report.resumed_from:
            out.print(f"resumed after {report.resumed_from} records imported earlier")
        counts = "equal" if report.records == report.copied else "DIFFERENT"
        out.print(
            f"counts {counts}: {report.records} records in Chroma, {report.copied} documents "
            f"in {report.tenant} ({report.seconds:.1f} s)"
        )
        same = len(report.sampled) - len(report.mismatched)
        out.print(
            f"sample: {same} of {len(report.sampled)} records identical (vector and document): "
            + ", ".join(report.sampled[:8])
            + (" ..." if len(report.sampled) > 8 else "")
        )
        if report.mismatched:
            out.print("differ: " + ", ".join(report.mismatched))
        out.print(f"embedder of {report.tenant}: {report.embedder}")
        if report.embedder.startswith("none") and report.matching_embedder:
            out.print(
                f"the collection was embedded with {report.source_embedding}; to search by "
                f"text: tenantctl tenants set-embedder {report.tenant} {report.matching_embedder}"
            )
        elif report.embedder.startswith("none"):
            made_by = f" ({report.source_embedding})" if report.source_embedding else ""
            out.print(
                f"search it by vector; to search by text, give it the model that made these "
                f"{report.dims}-d vectors{made_by}: tenantctl tenants set-embedder "
                f"{report.tenant} PROVIDER:MODEL"
            )
    if not report.verified:
        raise typer.Exit(1)
