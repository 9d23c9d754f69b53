"""``make bench-quality``: retrieval quality on a labelled set built from our own docs.

The project's documentation (``bench.quality_set.CORPUS``) is ingested as text into one
fresh tenant per embedder compared -- by default ``hash`` at 1024 dims (lexical) and
``wordllama`` at 256 dims (semantic, the default embedder) and at its Matryoshka
truncations 128 and 64 -- with the same chunks (256 tokens, 32 of overlap). Each
question of ``bench.quality_set.QUESTIONS`` is asked of each tenant in vector, keyword and
hybrid mode (k = 10). A hit is right when it is a chunk of the answering file that covers
the answer's phrase (or, where the phrase straddles two chunks, overlaps it). Reported:
recall@5 (the share of questions with a right hit in the top 5) and MRR@10 (the mean of
1 / rank of the first right hit, 0 if none in the top 10), side by side, and the time
the corpus's upsert took with each embedder (its model loaded beforehand). Deterministic:
one run is the result.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import throwaway_server
from bench.machine import describe_machine, replace_section, today
from bench.quality_set import CORPUS, QUESTIONS, Question
from controlplane.embedding import EmbedderSpec
from controlplane.lifecycle.tenants import TenantRequest, create_tenant
from controlplane.plane import ControlPlane
from controlplane.retrieval import ChunkingSpec, DocumentIn, SearchRequest, UpsertRequest
from controlplane.retrieval.documents import get_document, upsert_documents
from controlplane.retrieval.search import search
from controlplane.routing import TenantRouter

ROOT = Path(__file__).resolve().parents[1]
MODES = ("vector", "keyword", "hybrid")
DEFAULT_EMBEDDERS = "hash:1024,wordllama:256,wordllama:128,wordllama:64"


@dataclass
class Scores:
    recall_at_5: float
    mrr_at_10: float
    ranks: list[int | None]


@dataclass(frozen=True)
class Contender:
    embedder: EmbedderSpec
    dims: int

    @classmethod
    def parse(cls, text: str) -> Contender:
        """``provider[:model]:dims``, e.g. ``wordllama:128`` or ``hash:v1:1024``."""
        spec, _, dims = text.rpartition(":")
        return cls(EmbedderSpec.parse(spec), int(dims))

    @property
    def label(self) -> str:
        return f"{self.embedder.provider} {self.dims}"

    @property
    def tenant(self) -> str:
        return f"bench-quality-{self.embedder.provider}-{self.dims}"


@dataclass
class Outcome:
    scores: dict[str, Scores]  # by mode
    upsert_seconds: float  # the corpus's upsert: chunking, embedding, writing


def answer_span(question: Question) -> tuple[int, int]:
    text = (ROOT / question.file).read_text()
    start = text.index(question.phrase)
    return start, start + len(question.phrase)


async def run(args: argparse.Namespace) -> tuple[dict[Contender, Outcome], int]:
    contenders = [Contender.parse(c) for c in args.embedders.split(",")]
    chunking = ChunkingSpec(max_tokens=args.chunk_tokens, overlap=args.overlap)
    docs = [DocumentIn(id=f, text=(ROOT / f).read_text()) for f in CORPUS]
    outcomes: dict[Contender, Outcome] = {}
    chunks = 0
    with throwaway_server() as settings:
        async with ControlPlane.open(settings) as plane, TenantRouter.open(plane) as router:
            for c in contenders:
                request = TenantRequest(
                    id=c.tenant, dims=c.dims, embedder=c.embedder, chunking=chunking
                )
                await create_tenant(plane, request, actor="bench")
                await plane.embedders.warm(c.embedder)  # loading a model is not embedding
                started = time.perf_counter()
                await upsert_documents(router, c.tenant, UpsertRequest(documents=docs))
                upsert_seconds = time.perf_counter() - started
                spans: dict[str, list[tuple[int, int, int]]] = {}
                chunks = 0
                for f in CORPUS:
                    stored = await get_document(router, c.tenant, f)
                    spans[f] = [
                        (chunk.ordinal, chunk.start_offset or 0, chunk.end_offset or 0)
                        for chunk in stored.chunks
                    ]
                    chunks += len(stored.chunks)
                scores = {mode: await _score(router, c.tenant, mode, spans) for mode in MODES}
                outcomes[c] = Outcome(scores, upsert_seconds)
    return outcomes, chunks


async def _score(
    router: TenantRouter, tenant: str, mode: str, spans: dict[str, list[tuple[int, int, int]]]
) -> Scores:
    ranks: list[int | None] = []
    for q in QUESTIONS:
        right = _right_chunks(q, spans[q.file])
        found = await search(router, tenant, SearchRequest(text=q.text, mode=mode, k=10))
        rank = next(
            (
                i
                for i, hit in enumerate(found.results, 1)
                if hit.document_id == q.file and hit.chunk in right
            ),
            None,
        )
        ranks.append(rank)
    return Scores(
        recall_at_5=sum(1 for r in ranks if r is not None and r <= 5) / len(ranks),
        mrr_at_10=statistics.fmean(1 / r if r else 0.0 for r in ranks),
        ranks=ranks,
    )


def _right_chunks(question: Question, spans: list[tuple[int, int, int]]) -> set[int]:
    start, end = answer_span(question)
    covering = {o for o, s, e in spans if s <= start and end <= e}
    return covering or {o for o, s, e in spans if s < end and start < e}


def report(outcomes: dict[Contender, Outcome], chunks: int, args: argparse.Namespace) -> str:
    labels = [c.label for c in outcomes]
    lines = [
        "## Retrieval quality (`make bench-quality`)",
        "",
        f"Measured {today()} on {describe_machine()}.",
        "",
        f"Command: `make bench-quality` (`python -m bench.quality --embedders {args.embedders} "
        f"--chunk-tokens {args.chunk_tokens} --overlap {args.overlap}`)",
        "",
        f"{len(QUESTIONS)} questions over {', '.join(CORPUS)} ({chunks} chunks of at most "
        f"{args.chunk_tokens} tokens, {args.overlap} overlap), k = 10, the same chunks for "
        "every embedder; the labelled set is `bench/quality_set.py`. Each cell: recall@5 / "
        "MRR@10 (missed: right chunk not in the top 10).",
        "",
        "| mode | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for mode in MODES:
        cells = []
        for outcome in outcomes.values():
            s = outcome.scores[mode]
            missed = sum(1 for r in s.ranks if r is None)
            cells.append(f"{s.recall_at_5:.2f} / {s.mrr_at_10:.2f} ({missed} missed)")
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    seconds = [f"{o.upsert_seconds:.2f} s" for o in outcomes.values()]
    lines.append("| upserting the corpus (chunk, embed, write) | " + " | ".join(seconds) + " |")
    lines += [
        "",
        "Keyword mode is Postgres full text and does not use the embedder: its column is the "
        "same for every tenant. `hash` is lexical (shared words, no stemming); `wordllama` "
        "is semantic (static token embeddings; Matryoshka-truncated at 128 and 64).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--embedders",
        default=DEFAULT_EMBEDDERS,
        help="comma-separated provider[:model]:dims to compare (default: %(default)s)",
    )
    parser.add_argument("--chunk-tokens", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--write", type=Path, help="markdown file to update (a marked section)")
    args = parser.parse_args()
    outcomes, chunks = asyncio.run(run(args))
    text = report(outcomes, chunks, args)
    print(text)
    for contender, outcome in outcomes.items():
        for mode, s in outcome.scores.items():
            print(contender.label, mode, s.ranks)
    if args.write:
        replace_section(args.write, "quality", text)


if __name__ == "__main__":
    main()
