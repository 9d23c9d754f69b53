"""``tenantctl demo``: a guided tour of two isolated tenants on the embedded server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from tenantctl.context import JsonOption, get_cli

if TYPE_CHECKING:
    from controlplane.model.views import TenantView
    from controlplane.plane import ControlPlane
    from controlplane.settings import Settings

from controlplane.errors import NotFound, TenantvecError
from controlplane.model.records import TenantState

__all__ = ["demo"]

# Three-dimensional toy embeddings, so the nearest neighbour is easy to check by eye.
CORPUS: dict[str, dict[str, list[float]]] = {
    "demo-acme": {
        "Invoices are due within 30 days.": [0.9, 0.1, 0.0],
        "Refunds are processed in 5 business days.": [0.7, 0.3, 0.1],
        "Our office is closed on public holidays.": [0.0, 0.2, 0.9],
    },
    "demo-globex": {
        "The reactor must be inspected weekly.": [0.1, 0.9, 0.1],
        "Safety goggles are required in the lab.": [0.2, 0.8, 0.3],
        "Lunch is served at noon.": [0.8, 0.0, 0.4],
    },
}
QUERY = [0.8, 0.2, 0.0]  # "when do I have to pay?"

ROOT = Path(__file__).resolve().parents[2]  # the checkout, when run from it (make demo)
DOCS = ("README.md", "docs/ingestion.md", "docs/api.md", "docs/operations.md")
DOCS_TENANT = "demo-docs"
QUESTIONS = (
    "Why a database per tenant rather than a tenant_id column?",
    "What happens when the embedding provider stays down?",
    "How do I import a ChromaDB collection?",
)


def demo(ctx: typer.Context, json_: JsonOption = False) -> None:
    """Create two tenants, load and search each through its own DSN, prove isolation."""
    import psycopg  # the library and its drivers load when the command runs

    from controlplane.lifecycle.tenants import (
        TenantRequest,
        create_tenant,
        delete_tenant,
        list_tenants,
        tenant_conninfo,
    )
    from controlplane.model.embedder import EmbedderSpec

    cli = get_cli(ctx)
    # With --json the narrative goes nowhere and a summary is printed at the end.
    out = Console(quiet=True) if json_ else cli.out
    summary: dict[str, Any] = {"nearest": {}}

    async def work(plane: ControlPlane) -> None:
        if plane.embedded is not None:
            status = plane.embedded.status()
            binaries = plane.embedded.binaries
            out.print(
                f"[bold]1. Embedded server[/] Postgres {binaries.version} + pgvector "
                f"{binaries.pgvector_version} on 127.0.0.1:{status.port}, data in "
                f"{status.data_dir}"
            )
        out.print("[bold]2. Two tenants[/], each with its own database and login role")
        for tenant_id in CORPUS:
            if await plane.catalog.find_tenant(tenant_id) is not None:
                await delete_tenant(plane, tenant_id, actor=cli.actor)  # from an earlier run
            tenant = await create_tenant(
                plane,
                # The caller sends its own 3-number vectors here: hash takes any size.
                TenantRequest(
                    id=tenant_id,
                    dims=3,
                    labels={"demo": "true"},
                    embedder=EmbedderSpec.parse("hash"),
                ),
                actor=cli.actor,
            )
            out.print(
                f"   created {tenant.id}: database {tenant.where.database}, "
                f"role {tenant.where.role}, schema version {tenant.schema_version}"
            )

        out.print("[bold]3. Insert and search[/], each tenant through its own DSN")
        for tenant_id, chunks in CORPUS.items():
            conninfo = await tenant_conninfo(plane, tenant_id)
            await _load(conninfo.dsn, chunks)
            best = await _nearest(conninfo.dsn, QUERY)
            summary["nearest"][tenant_id] = {"content": best[0], "distance": best[1]}
            out.print(
                f"   {tenant_id} as role {conninfo.user}: nearest to the query is "
                f"[green]{best[0]!r}[/] (cosine distance {best[1]:.3f})"
            )

        out.print("[bold]4. Isolation[/]: demo-acme's credentials against demo-globex's database")
        acme = await tenant_conninfo(plane, "demo-acme")
        try:
            await psycopg.AsyncConnection.connect(
                acme.with_(dbname="demo-globex").dsn, connect_timeout=3
            )
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[-1]
            summary["cross_tenant_connection"] = {"refused": True, "reason": reason}
            out.print(f"   refused by Postgres: [red]{reason}[/]")
        else:  # pragma: no cover - would be a security bug, and the demo says so
            out.print("   [red bold]CONNECTED: isolation is broken[/]")
            raise typer.Exit(1)

        out.print(
            "[bold]5. The HTTP API[/]: a tenant key, upsert and search over HTTP; then "
            "tenantvec's own docs, ingested as text and questioned"
        )
        summary["api"] = await _api_tour(plane.settings, out)

        out.print("[bold]6. Tenants[/]")
        _print_tenants(out, [t.view() for t in await list_tenants(plane, labels={"demo": "true"})])

        out.print(
            "[bold]7. Delete demo-globex[/] (DROP DATABASE + DROP ROLE; the row stays for audit)"
        )
        deleted = await delete_tenant(plane, "demo-globex", actor=cli.actor)
        assert deleted.state is TenantState.DELETED
        tenants = [
            t.view()
            for t in await list_tenants(plane, labels={"demo": "true"}, include_deleted=True)
        ]
        summary["tenants"] = [{"id": t.id, "state": t.state} for t in tenants]
        _print_tenants(out, tenants)

    cli.run(work)
    if json_:
        cli.print_json(summary)
        return
    out.print(
        "\nThe server keeps running: try 'tenantctl tenants dsn demo-acme', "
        "'tenantctl doctor', and 'tenantctl down' to stop it."
    )


async def _load(dsn: str, chunks: dict[str, list[float]]) -> None:
    import psycopg
    from pgvector import Vector
    from pgvector.psycopg import register_vector_async

    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await register_vector_async(conn)
        await conn.execute("INSERT INTO documents (id, title) VALUES ('handbook', 'Handbook')")
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO chunks (document_id, ordinal, content, embedding) "
                "VALUES ('handbook', %s, %s, %s)",
                [(i, text, Vector(vec)) for i, (text, vec) in enumerate(chunks.items())],
            )


async def _nearest(dsn: str, query: list[float]) -> tuple[str, float]:
    import psycopg
    from pgvector import Vector
    from pgvector.psycopg import register_vector_async

    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        await register_vector_async(conn)
        cur = await conn.execute(
            "SELECT content, embedding <=> %s AS distance FROM chunks ORDER BY distance LIMIT 1",
            (Vector(query),),
        )
        row = await cur.fetchone()
    assert row is not None
    return str(row[0]), float(row[1])


async def _api_tour(settings: Settings, out: Console) -> dict[str, Any]:
    """Serve the API in this process on a free port, use it as an application would."""
    import uvicorn

    from controlplane.api import create_app
    from controlplane.client import ApiClient
    from controlplane.keys import load_admin_token
    from controlplane.retrieval import ChunkIn, DocumentIn, SearchRequest, UpsertRequest

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    url = f"http://127.0.0.1:{port}"
    try:
        while not server.started:
            if serving.done():
                serving.result()  # raises why it stopped
            await asyncio.sleep(0.05)
        out.print(f"   serving on {url} (OpenAPI at {url}/schema/openapi.json)")
        async with ApiClient(url, load_admin_token(settings)) as admin:
            issued = await admin.create_key("demo-acme", name="demo")
        out.print(f"   admin created key {issued.id} for demo-acme (the secret is shown once)")
        async with ApiClient(url, issued.key) as acme:
            await acme.upsert(
                "demo-acme",
                UpsertRequest(
                    documents=[
                        DocumentIn(
                            id="pricing",
                            title="Pricing",
                            metadata={"lang": "en"},
                            chunks=[ChunkIn(content="Payment is due on receipt.", embedding=QUERY)],
                        )
                    ]
                ),
            )
            found = await acme.search("demo-acme", SearchRequest(vector=QUERY, k=2))
            best = found.results[0]
            out.print(
                f"   PUT documents, then POST search with the key: [green]{best.content!r}[/] "
                f"(score {best.score:.3f})"
            )
            try:
                await acme.search("demo-globex", SearchRequest(vector=QUERY, k=2))
            except NotFound as exc:
                refused = str(exc)
            else:  # pragma: no cover - would be a security bug, and the demo says so
                out.print("   [red bold]demo-acme's key read demo-globex: isolation is broken[/]")
                raise typer.Exit(1)
        out.print(f"   demo-acme's key on demo-globex answers 404: [red]{refused}[/]")
        answers = await _docs_tour(url, settings, out)
        return {"url": url, "top_hit": best.content, "other_tenant": refused, "docs": answers}
    finally:
        server.should_exit = True
        await serving


async def _docs_tour(url: str, settings: Settings, out: Console) -> list[dict[str, Any]]:
    """Ingest tenantvec's own docs as text through the API; answer questions, hybrid."""
    from controlplane.client import ApiClient
    from controlplane.keys import load_admin_token
    from controlplane.retrieval import DocumentIn, SearchRequest, UpsertRequest, UpsertResponse

    files = [p for p in DOCS if (ROOT / p).is_file()]
    if not files:
        out.print("   (the project's docs are not beside this install: skipping the docs tour)")
        return []
    async with ApiClient(url, load_admin_token(settings)) as admin:
        with contextlib.suppress(NotFound):
            await admin.delete_tenant(DOCS_TENANT)
        # The default embedder (TENANTVEC_EMBEDDER: wordllama, offline) and its dims.
        tenant = await admin.create_tenant(
            id=DOCS_TENANT, chunk_tokens=256, chunk_overlap=32, labels={"demo": "true"}
        )
        issued = await admin.create_key(DOCS_TENANT, name="demo")
    assert tenant.embedder is not None  # the default embedder: dims were not given
    embedder = f"{tenant.embedder['provider']}:{tenant.embedder['model']}"
    out.print(
        f"   created {DOCS_TENANT} (embedder {embedder}, {tenant.dims} dims) and ingested "
        f"{', '.join(files)} as text:"
    )
    answers = []
    async with ApiClient(url, issued.key) as docs:
        docs_in = [
            DocumentIn(id=p, text=(ROOT / p).read_text(), metadata={"kind": "docs"}) for p in files
        ]
        result = await docs.upsert(DOCS_TENANT, UpsertRequest(documents=docs_in))
        if not isinstance(result, UpsertResponse):
            raise TenantvecError(f"the docs became ingestion job {result.id}, not an upsert")
        chunks = sum(d.chunks for d in result.documents)
        out.print(f"   {len(files)} documents, {chunks} chunks; asking with hybrid search:")
        for question in QUESTIONS:
            found = await docs.search(DOCS_TENANT, SearchRequest(text=question, k=3, hybrid=True))
            top = found.results[0]
            out.print(f"   [bold]Q:[/] {question}")
            out.print(
                f"      [green]{top.document_id}[/] chunk {top.chunk}: {_snippet(top.content)}"
            )
            answers.append(
                {
                    "question": question,
                    "document": top.document_id,
                    "chunk": top.chunk,
                    "content": top.content,
                }
            )
    return answers


def _snippet(content: str | None, width: int = 110) -> str:
    """The start of a chunk's first section if it has a Markdown heading (a chunk often
    opens with the tail of the section before), else the start of the chunk."""
    text = content or ""
    lines = text.splitlines()
    heading = next((i for i, line in enumerate(lines) if line.startswith("#")), 0)
    flat = " ".join(" ".join(lines[heading:]).split())
    return flat if len(flat) <= width else flat[:width] + "..."


def _print_tenants(out: Console, rows: list[TenantView]) -> None:
    table = Table("ID", "STATE", "SERVER", "DIMS", "SCHEMA", box=None, pad_edge=False)
    for row in rows:
        table.add_row(row.id, row.state, row.server or "-", str(row.dims), str(row.schema_version))
    out.print(table)
