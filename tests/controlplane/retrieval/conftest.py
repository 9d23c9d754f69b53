from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.embeddings import FakeEmbeddings


@pytest.fixture
def fake_openai() -> Iterator[FakeEmbeddings]:
    fake = FakeEmbeddings().start()
    try:
        yield fake
    finally:
        fake.stop()
