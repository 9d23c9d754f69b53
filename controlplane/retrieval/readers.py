"""Reading files into documents: .txt, .md, .html, .pdf and .jsonl.

A file becomes one document whose id is its path relative to where the caller started
(so the same tree ingested again maps to the same documents and unchanged files are
skipped); a .jsonl file holds one document per line: ``{"id", "text", "metadata"?,
"title"?}``, or -- for vectors made elsewhere -- the API's document with its chunks
``{"id", "chunks": [{"content", "embedding", "metadata"?, "id"?}], "metadata"?,
"title"?}``. A file that cannot be read yields a :class:`ReadFailure` instead, and the
caller goes on with the rest.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import msgspec

from controlplane.retrieval.models import MAX_TEXT_CHARS, DocumentIn

__all__ = ["SUFFIXES", "ReadFailure", "find_files", "read_file"]

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".jsonl")
_MD_TITLE_RE = re.compile(r"^#[ \t]+(.+)$", re.MULTILINE)  # [ \t]: \s would cross a line


@dataclass(frozen=True)
class ReadFailure:
    path: str
    error: str


def find_files(paths: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """Each readable file under ``paths`` with the document id it gets, in a stable order.

    The id is the path relative to the parent of the argument it was found under:
    ``docs/`` yields ``docs/api.md``; ``README.md`` yields ``README.md``.
    """
    for root in paths:
        base = root.resolve().parent
        if root.is_dir():
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                if path.suffix.lower() in SUFFIXES and not _hidden(path.relative_to(root)):
                    yield path, path.resolve().relative_to(base).as_posix()
        else:
            yield root, root.resolve().relative_to(base).as_posix()


def read_file(path: Path, doc_id: str) -> Iterator[DocumentIn | ReadFailure]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            yield from _jsonl(path, doc_id)
            return
        if suffix == ".pdf":
            title, text = None, _pdf_text(path)
        elif suffix in (".html", ".htm"):
            title, text = _html_text(path.read_text(errors="replace"))
        elif suffix in (".md", ".markdown", ".txt"):
            text = path.read_text(encoding="utf-8")
            match = _MD_TITLE_RE.search(text) if suffix != ".txt" else None
            title = match.group(1).strip() if match else None
        else:
            yield ReadFailure(doc_id, f"unsupported file type {suffix or '(none)'}")
            return
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        yield ReadFailure(doc_id, _reason(exc))
        return
    yield from _document(doc_id, text, title, {"source": doc_id, "type": suffix.lstrip(".")})


def _document(
    doc_id: str, text: str, title: str | None, metadata: dict[str, Any]
) -> Iterator[DocumentIn | ReadFailure]:
    text = text.replace("\x00", "")
    if not text.strip():
        yield ReadFailure(doc_id, "no text in it")
    elif len(text) > MAX_TEXT_CHARS:
        yield ReadFailure(doc_id, f"longer than {MAX_TEXT_CHARS:,} characters; split it")
    else:
        yield DocumentIn(id=doc_id[:512], text=text, title=title, source=doc_id, metadata=metadata)


def _jsonl(path: Path, name: str) -> Iterator[DocumentIn | ReadFailure]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{name}:{number}"
            try:
                record = msgspec.json.decode(line)
            except msgspec.DecodeError as exc:
                yield ReadFailure(where, f"not JSON: {exc}")
                continue
            except RecursionError:
                yield ReadFailure(where, "nested too deeply to be a document")
                continue
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                yield ReadFailure(where, 'each line needs {"id": "...", "text": "..."}')
                continue
            if "chunks" in record:
                # Chunks of its own, vectors and all: the API's document, checked as such.
                try:
                    yield msgspec.convert(record, DocumentIn)
                except msgspec.ValidationError as exc:
                    yield ReadFailure(where, f"not a document with chunks: {exc}")
                continue
            text, metadata = record.get("text"), record.get("metadata", {})
            if not isinstance(text, str) or not isinstance(metadata, dict):
                yield ReadFailure(where, "text must be a string and metadata an object")
                continue
            if not 1 <= len(record["id"]) <= 512:
                yield ReadFailure(where, "id must have 1 to 512 characters")
                continue
            title = record.get("title")
            for doc in _document(
                record["id"], text, title if isinstance(title, str) else None, metadata
            ):
                yield ReadFailure(where, doc.error) if isinstance(doc, ReadFailure) else doc


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader  # imported on use: most ingests have no PDF
    from pypdf.errors import PdfReadError

    # pypdf logs every repair it makes as a warning; a failure is reported as ours.
    logging.getLogger("pypdf").setLevel(logging.ERROR)

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise ValueError("the PDF is encrypted")
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)
    except PdfReadError as exc:
        raise ValueError(f"not a readable PDF: {exc}") from None


class _HtmlText(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template", "svg", "head"}
    _BLOCK = {
        "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "pre",
        "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "header", "footer", "hr",
    }  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._skipping = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n" if tag.startswith("h") or tag == "p" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._skipping:
            self.parts.append(data)


def _html_text(html: str) -> tuple[str | None, str]:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    text = re.sub(r"[ \t]+", " ", "".join(parser.parts))
    text = re.sub(r"\n[ \t]*(\n[ \t]*)+", "\n\n", text).strip()
    title = " ".join("".join(parser.title).split()) or None
    return title, text


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)
