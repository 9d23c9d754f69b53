"""``make bench-quality``: retrieval quality on a labelled set built from our own docs.

The project's documentation (``bench.quality_set.CORPUS``) is ingested as text into a
fresh tenant with the offline ``hash`` embedder (1024 dims, chunks of 256 tokens with
32 of overlap); each question of ``bench.quality_set.QUESTIONS`` is asked in vector,
keyword and hybrid mode (k = 10). A hit is right when it is a chunk of the answering
file that covers the answer's phrase (or, where the phrase straddles two chunks,
overlaps it). Reported: recall@5 (the share of questions with a right hit in the top 5)
and MRR@10 (the mean of 1 / rank of the first right hit, 0 if none in the top 10).
Deterministic: one run is the result.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from dataclasses import dataclass
from pathlib import Path

from bench.harness import throwaway_server
from bench.machine import describe_machine, replace_section, today
from bench.quality_set import CORPUS, QUESTIONS, Question
from controlplane.lifecycle.tenants import TenantRequest, create_tenant
from controlplane.plane import ControlPlane
from controlplane.retrieval import ChunkingSpec, DocumentIn, SearchRequest, UpsertRequest
from controlplane.retrieval.documents import get_document, upsert_documents
from controlplane.retrieval.search import search
from controlplane.routing import TenantRouter

ROOT = Path(__file__).resolve().parents[1]
TENANT = "bench-quality"
MODES = ("vector", "keyword", "hybrid")


@dataclass
class Scores:
    recall_at_5: float
    mrr_at_10: float
    ranks: list[int | None]


def answer_span(question: Question) -> tuple[int, int]:
    text = (ROOT / question.file).read_text()
    start = text.index(question.phrase)
    return start, start + len(question.phrase)


async def run(args: argparse.Namespace) -> tuple[dict[str, Scores], int]:
    with throwaway_server() as settings:
        async with ControlPlane.open(settings) as plane:
            request = TenantRequest(
                id=TENANT,
                dims=args.dims,
                chunking=ChunkingSpec(max_tokens=args.chunk_tokens, overlap=args.overlap),
            )
            await create_tenant(plane, request, actor="bench")
            async with TenantRouter.open(plane) as router:
                docs = [DocumentIn(id=f, text=(ROOT / f).read_text()) for f in CORPUS]
                await upsert_documents(router, TENANT, UpsertRequest(documents=docs))
                spans: dict[str, list[tuple[int, int, int]]] = {}
                chunks = 0
                for f in CORPUS:
                    stored = await get_document(router, TENANT, f)
                    spans[f] = [
                        (c.ordinal, c.start_offset or 0, c.end_offset or 0) for c in stored.chunks
                    ]
                    chunks += len(stored.chunks)
                results: dict[str, Scores] = {}
                for mode in MODES:
                    ranks: list[int | None] = []
                    for q in QUESTIONS:
                        right = _right_chunks(q, spans[q.file])
                        found = await search(
                            router, TENANT, SearchRequest(text=q.text, mode=mode, k=10)
                        )
                        rank = next(
                            (
                                i
                                for i, hit in enumerate(found.results, 1)
                                if hit.document_id == q.file and hit.chunk in right
                            ),
                            None,
                        )
                        ranks.append(rank)
                    results[mode] = Scores(
                        recall_at_5=sum(1 for r in ranks if r is not None and r <= 5) / len(ranks),
                        mrr_at_10=statistics.fmean(1 / r if r else 0.0 for r in ranks),
                        ranks=ranks,
                    )
    return results, chunks


def _right_chunks(question: Question, spans: list[tuple[int, int, int]]) -> set[int]:
    start, end = answer_span(question)
    covering = {o for o, s, e in spans if s <= start and end <= e}
    return covering or {o for o, s, e in spans if s < end and start < e}


def report(results: dict[str, Scores], chunks: int, args: argparse.Namespace) -> str:
    lines = [
        f"Measured {today()} on {describe_machine()}.",
        "",
        f"Command: `make bench-quality` (`python -m bench.quality --dims {args.dims} "
        f"--chunk-tokens {args.chunk_tokens} --overlap {args.overlap}`)",
        "",
        f"{len(QUESTIONS)} questions over {', '.join(CORPUS)} ({chunks} chunks of at most "
        f"{args.chunk_tokens} tokens, {args.overlap} overlap), `hash` embedder at {args.dims} "
        "dims, k = 10; the labelled set is `bench/quality_set.py`.",
        "",
        "| mode | recall@5 | MRR@10 | missed (not in top 10) |",
        "|---|---|---|---|",
    ]
    for mode, s in results.items():
        missed = sum(1 for r in s.ranks if r is None)
        lines.append(f"| {mode} | {s.recall_at_5:.2f} | {s.mrr_at_10:.2f} | {missed} |")
    lines += [
        "",
        "The `hash` embedder is lexical: its vector ranking rewards shared words, as full "
        "text does, but without stemming or stop words. A semantic model changes these "
        "numbers; rerun with a tenant on one to compare.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dims", type=int, default=1024)
    parser.add_argument("--chunk-tokens", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--write", type=Path, help="markdown file to update (a marked section)")
    args = parser.parse_args()
    results, chunks = asyncio.run(run(args))
    text = report(results, chunks, args)
    print(text)
    for mode, s in results.items():
        print(mode, s.ranks)
    if args.write:
        replace_section(args.write, "quality", text)


if __name__ == "__main__":
    main()
