"""Reading files into documents: a Markdown title is the first heading line, only."""

from __future__ import annotations

from pathlib import Path

from controlplane.retrieval import DocumentIn
from controlplane.retrieval.readers import read_file


def test_a_bare_hash_line_is_not_a_title_and_the_next_line_is_not_taken_for_one(
    tmp_path: Path,
) -> None:
    page = tmp_path / "page.md"
    page.write_text("#\nnot a title\n\n# The Real Title\n\nbody text\n")
    (doc,) = read_file(page, "page.md")
    assert isinstance(doc, DocumentIn) and doc.title == "The Real Title"
    plain = tmp_path / "notes.md"
    plain.write_text("no heading here\n#hashtag\n")
    (doc,) = read_file(plain, "notes.md")
    assert isinstance(doc, DocumentIn) and doc.title is None
