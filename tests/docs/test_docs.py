"""Every shell and Python block of README.md and docs/*.md, run as written, in order, one
session per document against a throwaway control plane (``tests/docs/session.py``).

A document is one test (one worker runs it, its blocks in order) and each block one of
its subtests: a block that fails fails with what it printed, the blocks after it in the
same document are skipped naming it, and a marked block is skipped with its mark's
reason. How blocks are written and marked: ``blocks.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.blocks import document_blocks
from tests.docs.session import BlockFailed, DocSession

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
BLOCKS = {doc: [b for b in document_blocks(ROOT, doc) if b.runs] for doc in DOCS}


@pytest.mark.parametrize("doc", [doc for doc, blocks in BLOCKS.items() if blocks])
def test_document_runs_as_written(doc: str, subtests: pytest.Subtests) -> None:
    session: DocSession | None = None
    failed: str | None = None
    try:
        for block in BLOCKS[doc]:
            with subtests.test(msg=block.id):
                if block.mark is not None and block.mark.kind in ("skip", "elsewhere"):
                    pytest.skip(f"{block.mark.kind}: {block.mark.reason}")
                if failed is not None:
                    pytest.skip(f"{failed}, earlier in {doc}, failed")
                if session is None:
                    session = DocSession(ROOT, doc, BLOCKS[doc])
                failure = None
                try:
                    session.run(block)
                except BlockFailed as exc:
                    failed, failure = block.id, str(exc)
                if failure is not None:
                    pytest.fail(failure, pytrace=False)
    finally:
        if session is not None:
            session.close()


def test_few_blocks_are_skipped() -> None:
    # A document whose examples are marked away tells nothing: a skip is for an absent
    # outside thing (a Docker engine), and there are few.
    for doc, blocks in BLOCKS.items():
        skipped = [b.id for b in blocks if b.mark is not None and b.mark.kind == "skip"]
        assert len(skipped) <= 2, f"{doc}: {skipped} are skipped"
