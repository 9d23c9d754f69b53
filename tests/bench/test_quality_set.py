"""The labelled retrieval set stays true to the docs it was built from."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.quality_set import CORPUS, QUESTIONS, Question

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: q.text[:40])
def test_each_answer_is_where_the_set_says(question: Question) -> None:
    assert question.file in CORPUS
    text = (ROOT / question.file).read_text()
    assert text.count(question.phrase) >= 1, f"{question.phrase!r} is no longer in {question.file}"


def test_the_set_is_big_enough_and_has_no_duplicates() -> None:
    assert len(QUESTIONS) >= 25
    assert len({q.text for q in QUESTIONS}) == len(QUESTIONS)
