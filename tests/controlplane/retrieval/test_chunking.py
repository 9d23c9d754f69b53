"""The recursive splitter: budgets, overlap, offsets, code blocks and tables kept whole."""

from __future__ import annotations

import random

import pytest

from controlplane.errors import InvalidRequest
from controlplane.model.chunking import ChunkingSpec
from controlplane.retrieval._chunking import TextChunk, split_text
from controlplane.tokens import count_tokens

WORDS = [
    "tenant",
    "database",
    "vector",
    "index",
    "postgres",
    "search",
    "chunk",
    "embedding",
    "query",
    "router",
    "pool",
    "catalog",
    "schema",
    "migration",
    "backup",
    "recall",
    "latency",
    "operator",
    "server",
    "role",
]


def prose(rng: random.Random, paragraphs: int) -> str:
    out = []
    for _ in range(paragraphs):
        sentences = []
        for _ in range(rng.randint(1, 8)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(3, 25))]
            sentences.append(" ".join(words).capitalize() + rng.choice(".!?"))
        lines = " ".join(sentences)
        out.append(lines if rng.random() < 0.7 else lines.replace(". ", ".\n"))
    return "\n\n".join(out)


def check_invariants(text: str, chunks: list[TextChunk], spec: ChunkingSpec) -> None:
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.content
        assert chunk.content == chunk.content.strip()
        assert count_tokens(chunk.content) <= spec.max_tokens
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert before.start < after.start and before.end < after.end
        if after.start < before.end:  # the overlap stays within its budget
            assert count_tokens(text[after.start : before.end]) <= spec.overlap
    covered = [False] * len(text)
    for chunk in chunks:
        covered[chunk.start : chunk.end] = [True] * (chunk.end - chunk.start)
    missed = [text[i] for i in range(len(text)) if not covered[i] and not text[i].isspace()]
    assert not missed, f"text left out of every chunk: {''.join(missed)[:80]!r}"


@pytest.mark.parametrize("seed", range(25))
def test_random_prose_obeys_budget_overlap_offsets_and_coverage(seed: int) -> None:
    rng = random.Random(seed)
    spec = ChunkingSpec(max_tokens=rng.choice([16, 40, 120, 800]), overlap=0)
    spec = ChunkingSpec(max_tokens=spec.max_tokens, overlap=rng.randint(0, spec.max_tokens // 2))
    text = prose(rng, rng.randint(1, 40))
    check_invariants(text, split_text(text, spec), spec)


def test_short_text_is_one_chunk_and_blank_text_none() -> None:
    chunks = split_text("\n\n  Hello tenants.  \n")
    assert [(c.start, c.end, c.content) for c in chunks] == [(4, 18, "Hello tenants.")]
    assert split_text(" \n\t ") == []


def test_defaults_are_800_and_200() -> None:
    assert ChunkingSpec() == ChunkingSpec(max_tokens=800, overlap=200)


def test_overlap_repeats_the_end_of_the_previous_chunk() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(60))
    spec = ChunkingSpec(max_tokens=40, overlap=12)
    chunks = split_text(text, spec)
    assert len(chunks) > 3
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.start < before.end  # overlapping
        assert before.content.endswith(text[after.start : before.end])


def test_paragraphs_are_preferred_split_points() -> None:
    paragraphs = [" ".join([f"p{i}"] * 30) + "." for i in range(4)]
    chunks = split_text("\n\n".join(paragraphs), ChunkingSpec(max_tokens=40, overlap=0))
    assert [c.content for c in chunks] == paragraphs


def test_a_fenced_code_block_stays_whole_when_it_fits() -> None:
    code = "```python\ndef f():\n\n    return 1\n\n\nprint(f())\n```"
    text = prose(random.Random(1), 6) + "\n\n" + code + "\n\n" + prose(random.Random(2), 6)
    spec = ChunkingSpec(max_tokens=60, overlap=10)
    chunks = split_text(text, spec)
    check_invariants(text, chunks, spec)
    assert any(code in c.content for c in chunks)
    for chunk in chunks:  # no chunk holds part of the block without all of it
        assert ("```" in chunk.content) == (code in chunk.content)


def test_a_markdown_table_stays_whole_when_it_fits() -> None:
    table = "| tenant | rows |\n|---|---|\n" + "".join(f"| t{i} | {i} |\n" for i in range(6))
    text = "Intro line one.\nIntro line two.\n" + table + "After the table.\n" * 20
    spec = ChunkingSpec(max_tokens=70, overlap=0)
    chunks = split_text(text, spec)
    check_invariants(text, chunks, spec)
    assert any(table.strip() in c.content for c in chunks)


def test_a_code_block_larger_than_a_chunk_is_split_anyway() -> None:
    code = "```\n" + "\n".join(f"line_{i} = {i}" for i in range(200)) + "\n```"
    spec = ChunkingSpec(max_tokens=50, overlap=5)
    chunks = split_text(code, spec)
    assert len(chunks) > 5
    check_invariants(code, chunks, spec)


def test_one_enormous_word_is_cut() -> None:
    text = "x" * 5000
    spec = ChunkingSpec(max_tokens=20, overlap=0)
    chunks = split_text(text, spec)
    check_invariants(text, chunks, spec)
    assert "".join(c.content for c in chunks) == text


@pytest.mark.parametrize(("tokens", "overlap"), [(8, 0), (100, 100), (100, -1), (10_000, 10)])
def test_bad_settings_are_refused(tokens: int, overlap: int) -> None:
    with pytest.raises(InvalidRequest):
        ChunkingSpec(max_tokens=tokens, overlap=overlap)
