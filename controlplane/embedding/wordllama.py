"""The offline ``wordllama`` embedder: WordLlama's static token embeddings.

WordLlama (the ``wordllama`` package, MIT) is a table of one 256-number vector per token
of the Llama 2 vocabulary, trained so that the mean of a text's token vectors places
texts of like meaning near each other. Its weights (16 MB) and tokenizer ship inside the
package, so it works with no download and no network, and it embeds tens of thousands
of sentences a second on one core. It is semantic where ``hash`` is lexical, and far
weaker than a transformer model: a good default, not a ceiling. Licence terms of the
weights: docs/ingestion.md.

tenantvec reads the two bundled files itself rather than through ``WordLlama.load``,
which looks for its tokenizer in the wrong folder and then tries to download it, and
whose batching pads every text of a batch to the longest one (a 1 MB chunk would need a
gigabyte). Here a text's vector is the sum of its token vectors, accumulated in slices of
bounded size -- the same direction as WordLlama's mean pooling, which the tests check --
cut to the tenant's dimensions (the Matryoshka truncation) and L2-normalised.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from controlplane.embedding._base import Embeddings, Purpose
from controlplane.errors import ConfigurationError

if TYPE_CHECKING:
    import numpy as np
    from tokenizers import Tokenizer

__all__ = ["WordLlamaEmbedder"]

# Texts shorter than this in all are embedded on the event loop (a query: ~0.1 ms);
# longer batches go to a thread so that the loop keeps serving requests.
_INLINE_CHARS = 2_000
# Token vectors gathered at once: 4 MB of scratch at 256 dimensions, which stays in the
# CPU's caches (measured: 2x faster than steps of 32k tokens).
_TOKENS_PER_STEP = 4_096


@dataclass(frozen=True)
class _Model:
    matrix: np.ndarray  # (vocabulary, 256) float32
    tokenizer: Tokenizer


_models: dict[str, _Model] = {}
_load_lock = threading.Lock()


def _package_dir() -> Path:
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "the wordllama embedder needs the wordllama package: pip install wordllama"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _model(name: str) -> _Model:
    """The bundled model, loaded once per process (~0.2 s; numpy and tokenizers on first use)."""
    model = _models.get(name)
    if model is not None:
        return model
    with _load_lock:
        if name not in _models:
            import numpy as np
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer

            root = _package_dir()
            weights = root / "weights" / f"{name}_256.safetensors"
            vocabulary = root / "tokenizers" / f"{name}_tokenizer_config.json"
            if not weights.is_file() or not vocabulary.is_file():
                raise ConfigurationError(
                    f"the wordllama package at {root} lacks the bundled {name} model "
                    f"({weights.name}, {vocabulary.name}); reinstall wordllama"
                )
            matrix = np.ascontiguousarray(load_file(weights)["embedding.weight"], np.float32)
            tokenizer = Tokenizer.from_file(str(vocabulary))
            tokenizer.no_padding()
            tokenizer.no_truncation()
            _models[name] = _Model(matrix, tokenizer)
    return _models[name]


def wordllama_embeddings(texts: Sequence[str], dims: int, model: str) -> list[list[float]]:
    """One unit vector of ``dims`` numbers per text; a text with no tokens (empty) gets a
    fixed direction, so that it can still be stored and compared."""
    import numpy as np

    loaded = _model(model)
    matrix = loaded.matrix[:, :dims]
    encodings = loaded.tokenizer.encode_batch(list(texts), add_special_tokens=False)
    lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
    tokens = np.fromiter(
        (i for e in encodings for i in e.ids), dtype=np.int64, count=int(lengths.sum())
    )
    owners = np.repeat(np.arange(len(texts)), lengths)
    sums = np.zeros((len(texts), dims), dtype=np.float32)
    scratch = np.empty((min(len(tokens), _TOKENS_PER_STEP), dims), dtype=np.float32)
    for start in range(0, len(tokens), _TOKENS_PER_STEP):
        step = slice(start, start + _TOKENS_PER_STEP)
        owner = owners[step]
        gathered = np.take(matrix, tokens[step], axis=0, out=scratch[: len(owner)], mode="clip")
        # mode="clip": an id past the table (none in the bundled model) takes its last row.
        # The tokens of a text are contiguous: sum each run, then add it to its text.
        runs = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        sums[owner[runs]] += np.add.reduceat(gathered, runs, axis=0)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    empty = norms[:, 0] == 0
    vectors = sums / np.where(empty[:, None], 1.0, norms)
    vectors[empty, 0] = 1.0
    result: list[list[float]] = vectors.tolist()
    return result


class WordLlamaEmbedder:
    def __init__(self, model: str = "l2_supercat") -> None:
        self.identity = f"wordllama:{model}"
        self._model = model

    async def embed(self, texts: Sequence[str], *, dims: int, purpose: Purpose) -> Embeddings:
        # Queries and documents embed alike: the model is symmetric.
        if self._model in _models and sum(len(t) for t in texts) < _INLINE_CHARS:
            return Embeddings(wordllama_embeddings(texts, dims, self._model), self.identity)
        # Loading the model, or embedding a large batch, takes a while: off the loop.
        vectors = await asyncio.to_thread(wordllama_embeddings, texts, dims, self._model)
        return Embeddings(vectors, self.identity)

    async def warm(self) -> None:
        """Load the model now rather than on the first request (the API does at start)."""
        await asyncio.to_thread(_model, self._model)
