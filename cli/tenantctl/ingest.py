"""``tenantctl ingest``: files and folders into a tenant, with progress and a summary."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from controlplane.errors import InvalidRequest
from controlplane.retrieval.readers import SUFFIXES  # light: the option help names them
from tenantctl.context import Cli, JsonOption, get_cli

if TYPE_CHECKING:
    from controlplane.plane import ControlPlane
    from controlplane.retrieval.backfill import BackfillReport
    from controlplane.retrieval.models import DocumentIn
    from controlplane.routing import TenantRouter


__all__ = ["backfill_command", "ingest"]

# A batch is written when it holds this many documents the tenant's embedder must
# embed (one provider call each batch), or this many that bring their own vectors (one
# transaction, one commit each batch: the more rows per commit, the fewer fsyncs).
BATCH = 16
VECTOR_BATCH = 256


def _to_embed(doc: DocumentIn) -> bool:
    """Whether the embedder has work in ``doc``: its text, or a chunk without a vector."""
    return doc.chunks is None or any(chunk.embedding is None for chunk in doc.chunks)


def ingest(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Tenant id.")],
    paths: Annotated[
        list[Path],
        typer.Argument(
            help=f"Files and folders ({', '.join(SUFFIXES)}); folders are read recursively.",
            exists=True,
        ),
    ],
    writers: Annotated[
        int,
        typer.Option(
            min=1,
            max=8,
            help="Batches written at once, each on its own connection and in its own "
            "transaction: a vector index takes one core per writer.",
        ),
    ] = 2,
    bulk: Annotated[
        bool,
        typer.Option(
            help="A load of at least 5,000 documents and more than the tenant "
            "holds builds the vector index once at the end instead of inserting every "
            "row into it (searches read rows exactly meanwhile). --no-bulk: always insert.",
        ),
    ] = True,
    json_: JsonOption = False,
) -> None:
    """Ingest files into TENANT: chunked and embedded with the tenant's settings.

    Each file is one document whose id is its path (a .jsonl file holds one document
    per line: {"id", "text", "metadata"}, or with vectors made elsewhere
    {"id", "chunks": [{"content", "embedding"}]}). Ingesting the same files again skips the
    unchanged ones and replaces the changed ones. A file that cannot be read or
    embedded is reported and skipped; the exit code is then 1.
    """
    from controlplane.retrieval.readers import SUFFIXES, find_files
    from controlplane.routing import TenantRouter

    cli = get_cli(ctx)
    files = list(find_files(paths))
    if not files:
        raise InvalidRequest(f"no {', '.join(SUFFIXES)} files under the given paths")

    async def work(plane: ControlPlane) -> dict[str, Any]:
        from controlplane.retrieval.bulk import bulk_load, chunk_count, wants_bulk

        async with TenantRouter.open(plane) as router:
            await router.route(tenant)  # an unknown tenant fails before any reading
            found = await plane.catalog.get_tenant(tenant)
            incoming = _documents_in(files)
            if bulk and wants_bulk(found, incoming, await chunk_count(plane, found)):
                if not json_:
                    cli.err.print(
                        f"bulk load: {incoming:,} documents; the vector index is built once "
                        "at the end (searches read rows exactly until then)",
                        markup=False,
                        highlight=False,
                    )
                async with bulk_load(plane, tenant, rows=incoming, actor=cli.actor):
                    return await _ingest(cli, router, tenant, files, writers=writers, quiet=json_)
            return await _ingest(cli, router, tenant, files, writers=writers, quiet=json_)

    summary = cli.run(work)
    if json_:
        cli.print_json(summary)
    else:
        cli.out.print(
            f"{summary['documents']} documents: {summary['created']} added, "
            f"{summary['updated']} updated, {summary['unchanged']} unchanged, "
            f"{summary['failed']} failed; {summary['chunks']} chunks written in "
            f"{summary['seconds']:.1f} s ({summary['documents_per_second']:,.1f} documents/s, "
            f"{summary['chunks_per_second']:,.1f} chunks/s)"
        )
    if summary["failed"]:
        raise typer.Exit(1)


def _documents_in(files: list[tuple[Path, str]]) -> int:
    """How many documents the files hold: a line of a .jsonl file each, one a file
    otherwise (a file that cannot be read counts as nothing)."""
    count = 0
    for path, _ in files:
        if path.suffix.lower() != ".jsonl":
            count += 1
            continue
        with contextlib.suppress(OSError), path.open("rb") as lines:
            count += sum(1 for line in lines if line.strip())
    return count


async def _ingest(
    cli: Cli,
    router: TenantRouter,
    tenant: str,
    files: list[tuple[Path, str]],
    *,
    writers: int,
    quiet: bool,
) -> dict[str, Any]:
    from controlplane.retrieval.ingest import ingest_batch
    from controlplane.retrieval.readers import ReadFailure, read_file
    from tenantctl.progress import RateColumn, progress_bar  # rich.progress loads with the bar

    counts: Counter[str] = Counter()
    failures: list[dict[str, str]] = []
    chunks = 0
    pending: list[DocumentIn] = []
    to_embed = 0  # of the pending documents, those the embedder has work in
    started = time.monotonic()

    def fail(doc_id: str, error: str) -> None:
        failures.append({"document": doc_id, "error": error})
        if not quiet:
            cli.err.print(f"skipped {doc_id}: {error}", markup=False, highlight=False)

    progress = progress_bar(
        cli,
        "ingesting",
        "files",
        RateColumn("documents", "documents"),
        RateColumn("chunks", "chunks"),
        quiet=quiet,
    )

    # Up to ``writers`` batches in flight: a vector index inserts on one core per
    # connection, and each batch is still its own transaction. A document id already on
    # its way waits for the batches in flight, so the last of its versions wins.
    in_flight: dict[asyncio.Task[None], set[str]] = {}

    async def write(batch: list[DocumentIn], task: Any) -> None:
        nonlocal chunks
        outcome = await ingest_batch(router, tenant, batch)
        counts.update(outcome.counts())
        chunks += outcome.chunks_written
        for doc_id, error in outcome.failures:
            fail(doc_id, error)
        progress.update(task, documents=counts.total(), chunks=chunks)

    async def settle(done: set[asyncio.Task[None]]) -> None:
        for finished in done:
            del in_flight[finished]
            finished.result()  # an error that stops the ingest stops it here

    async def flush(task: Any) -> None:
        if not pending:
            return
        batch, ids = list(pending), {doc.id for doc in pending}
        pending.clear()
        if any(ids & other for other in in_flight.values()):
            await settle(set((await asyncio.wait(in_flight))[0]))
        while len(in_flight) >= writers:
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            await settle(done)
        in_flight[asyncio.create_task(write(batch, task))] = ids

    with progress:
        task = progress.add_task("ingest", total=len(files), documents=0, chunks=0)
        try:
            for path, doc_id in files:
                for item in read_file(path, doc_id):
                    if isinstance(item, ReadFailure):
                        fail(item.path, item.error)
                    else:
                        pending.append(item)
                        to_embed += _to_embed(item)
                        if to_embed >= BATCH or len(pending) >= VECTOR_BATCH:
                            to_embed = 0
                            await flush(task)
                progress.advance(task)
            await flush(task)
            if in_flight:
                await settle(set((await asyncio.wait(in_flight))[0]))
        finally:
            for unfinished in in_flight:
                unfinished.cancel()
            if in_flight:
                await asyncio.wait(in_flight)
    seconds = time.monotonic() - started
    documents = counts.total() + len(failures)
    return {
        "tenant": tenant,
        "documents": documents,
        "created": counts["created"],
        "updated": counts["updated"],
        "unchanged": counts["unchanged"],
        "failed": len(failures),
        "chunks": chunks,
        "seconds": round(seconds, 3),
        "documents_per_second": round(documents / seconds, 1) if seconds else 0.0,
        "chunks_per_second": round(chunks / seconds, 1) if seconds else 0.0,
        "failures": failures,
    }


def backfill_command(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Tenant id.")],
    all_: Annotated[
        bool,
        typer.Option("--all", help="Also re-embed chunks whose vectors the caller sent."),
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Embed TENANT's chunks that need it with the tenant's current embedder.

    That is: chunks without a vector (after 'tenants set-embedder' changed the
    dimensions) and chunks embedded by another model (the model changed, or a fallback
    stood in). Safe to interrupt and run again: it goes on where it stopped.
    """
    from controlplane.retrieval.backfill import backfill
    from controlplane.routing import TenantRouter
    from tenantctl.progress import RateColumn, progress_bar  # rich.progress loads with the bar

    cli = get_cli(ctx)
    progress = progress_bar(cli, "embedding", "chunks", RateColumn("chunks", "chunks"), quiet=json_)

    async def work(plane: ControlPlane) -> BackfillReport:
        async with TenantRouter.open(plane) as router:
            task = progress.add_task("backfill", total=None, chunks=0)

            def advance(n: int) -> None:
                progress.advance(task, n)
                progress.update(task, chunks=progress.tasks[task].completed)

            with progress:
                return await backfill(
                    router,
                    tenant,
                    all_chunks=all_,
                    on_start=lambda total: progress.update(task, total=total),
                    on_batch=advance,
                )

    report = cli.run(work)
    if json_:
        cli.print_json(
            {
                "tenant": report.tenant,
                "embedder": report.embedder,
                "embedded": report.embedded,
                "seconds": report.seconds,
            }
        )
    else:
        cli.out.print(
            f"{report.embedded} chunks of {report.tenant} embedded with {report.embedder} "
            f"in {report.seconds:.1f} s"
        )
