"""Splitting a document's text into chunks that fit a token budget.

Recursive, in the manner of LangChain's ``RecursiveCharacterTextSplitter``: text that
fits the budget is one piece; text that does not is split at paragraph breaks, pieces
still too large at line breaks, then at sentence ends, then between words, and as a
last resort every few characters. Pieces are then packed greedily into chunks of at
most ``max_tokens``, each chunk starting with up to ``overlap`` tokens of the one before
it, so that a passage cut at a boundary is whole in one of the two.

Fenced code blocks and markdown tables are never split while they fit the budget: their
inner blank lines and line breaks do not count as split points. Every chunk is an
exact slice of the text: ``text[chunk.start:chunk.end] == chunk.content``.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from controlplane.model.chunking import ChunkingSpec
from controlplane.tokens import count_tokens

__all__ = ["ChunkingSpec", "TextChunk", "split_text"]

# Split points, coarsest first: blank lines, line breaks, sentence ends, spaces.
_LEVELS = [
    re.compile(r"\n[ \t]*\n\s*"),
    re.compile(r"\n\s*"),
    re.compile(r"(?<=[.!?;:])\s+"),
    re.compile(r"\s+"),
]
_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)
_TABLE_RE = re.compile(r"(?:^[ \t]*\|.*(?:\n|$)){2,}", re.MULTILINE)


@dataclass(frozen=True)
class TextChunk:
    ordinal: int
    start: int
    end: int
    content: str
    tokens: int


def split_text(text: str, spec: ChunkingSpec | None = None) -> list[TextChunk]:
    """The chunks of ``text`` in order; none for text that is only whitespace."""
    spec = spec or ChunkingSpec()
    splitter = _Splitter(text, spec.max_tokens)
    pieces = splitter.pieces(0, len(text))
    return _pack(text, pieces, spec)


class _Splitter:
    def __init__(self, text: str, budget: int) -> None:
        self.text = text
        self.budget = budget
        self.protected = _protected_spans(text)
        self._starts = [s for s, _ in self.protected]

    def pieces(self, start: int, end: int) -> list[tuple[int, int, int]]:
        """(start, end, tokens) of pieces that each fit the budget, in order."""
        return self._split(start, end, 0, protect=True)

    def _split(
        self, start: int, end: int, level: int, *, protect: bool
    ) -> list[tuple[int, int, int]]:
        start, end = _trim(self.text, start, end)
        if start >= end:
            return []
        tokens = count_tokens(self.text[start:end])
        if tokens <= self.budget:
            return [(start, end, tokens)]
        for depth in range(level, len(_LEVELS)):
            parts = self._split_at(start, end, _LEVELS[depth], protect)
            if len(parts) > 1:
                out: list[tuple[int, int, int]] = []
                for s, e in parts:
                    out.extend(self._split(s, e, depth + 1, protect=protect))
                return out
        if protect:  # a code block or table larger than a chunk: split it like prose
            return self._split(start, end, 0, protect=False)
        return self._cut(start, end)

    def _split_at(
        self, start: int, end: int, separator: re.Pattern[str], protect: bool
    ) -> list[tuple[int, int]]:
        parts: list[tuple[int, int]] = []
        cursor = start
        for match in separator.finditer(self.text, start, end):
            if match.start() == start or (protect and self._inside_protected(match.start())):
                continue
            parts.append((cursor, match.start()))
            cursor = match.end()
        parts.append((cursor, end))
        return [(s, e) for s, e in parts if e > s]

    def _inside_protected(self, position: int) -> bool:
        i = bisect.bisect_right(self._starts, position) - 1
        return i >= 0 and self.protected[i][0] < position < self.protected[i][1]

    def _cut(self, start: int, end: int) -> list[tuple[int, int, int]]:
        """Character windows for text with no usable split point (one enormous word)."""
        out: list[tuple[int, int, int]] = []
        width = self.budget * 4
        while start < end:
            stop = min(end, start + width)
            while (tokens := count_tokens(self.text[start:stop])) > self.budget:
                stop = start + max(1, (stop - start) // 2)
            out.append((start, stop, tokens))
            start = stop
        return out


def _pack(text: str, pieces: list[tuple[int, int, int]], spec: ChunkingSpec) -> list[TextChunk]:
    chunks: list[TextChunk] = []
    i, n = 0, len(pieces)
    while i < n:
        j, total = i, 0
        while j < n and (j == i or total + pieces[j][2] <= spec.max_tokens):
            total += pieces[j][2]
            j += 1
        start, end = pieces[i][0], pieces[j - 1][1]
        chunks.append(TextChunk(len(chunks), start, end, text[start:end], total))
        if j == n:
            break
        # The next chunk repeats the last pieces of this one, up to `overlap` tokens,
        # and always leaves room for the piece that comes next.
        k, carried = j, 0
        room = min(spec.overlap, spec.max_tokens - pieces[j][2])
        while k - 1 > i and carried + pieces[k - 1][2] <= room:
            carried += pieces[k - 1][2]
            k -= 1
        i = k
    return chunks


def _protected_spans(text: str) -> list[tuple[int, int]]:
    """Fenced code blocks (to their closing fence, or the end) and markdown tables."""
    spans: list[tuple[int, int]] = []
    position = 0
    while (opening := _FENCE_RE.search(text, position)) is not None:
        fence = opening.group(1)
        closing = re.compile(
            rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.MULTILINE
        )
        line_end = text.find("\n", opening.end())
        after = len(text) if line_end < 0 else line_end + 1
        match = closing.search(text, after)
        end = len(text) if match is None else match.end()
        spans.append((opening.start(), end))
        position = end
    for table in _TABLE_RE.finditer(text):
        if not any(s <= table.start() < e for s, e in spans):
            # The newline after the last row is where the next piece may start.
            spans.append((table.start(), table.end() - table.group().endswith("\n")))
    return sorted(spans)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
