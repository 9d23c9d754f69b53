"""The vectors the search benchmarks run on: the worst case, and real text.

- ``random``: unit vectors drawn uniformly on the sphere. No structure at all: every
  point is about as far from every other, the hardest case for any graph index (HNSW
  in pgvector and in Chroma alike) and the one most benchmarks quote.
- ``docstrings``: real text that exists on every fresh machine -- the docstrings of
  the modules, classes and functions of the packages installed in this virtualenv
  (parsed with ``ast``, never imported), de-duplicated, in a fixed order. Each is
  embedded with the bundled WordLlama model (``l2_supercat``, 256 dimensions: what the
  ``wordllama`` embedder makes) and carried to 1,024 dimensions by one fixed random
  rotation-like projection (seeded Gaussian, then unit length).

Why the docstrings are representative: they are the kind of text RAG stores (technical
prose, short to long, many near-duplicates -- "Return the ...", overloads, vendored
copies), so their embeddings are clustered and anisotropic as real embeddings are,
unlike random points. The projection keeps every angle between two vectors (up to a
small distortion: Johnson-Lindenstrauss), so nearest neighbours are the model's own; it
only gives the vectors the width (1,024, like Voyage's and Cohere's models) whose cost
the benchmarks measure. What it cannot give is a higher intrinsic dimension than the
256 of the model: a 1,024-d model's neighbourhoods may be harder; the random set bounds
that from the other side.

Queries are held out: texts that are not in the stored set. The first call parses and
embeds (a minute or two); the result is cached under ``bench/.cache/``.
"""

from __future__ import annotations

import ast
import hashlib
import sys
import sysconfig
import warnings
from pathlib import Path

import numpy as np

__all__ = ["DIMS", "DataSet", "docstrings", "load", "random_unit"]

DIMS = 1024
_CACHE = Path(__file__).parent / ".cache"
_MODEL_DIMS = 256
_MIN_CHARS = 40  # shorter docstrings ("Return x.") say little and repeat a lot


class DataSet:
    def __init__(self, name: str, vectors: np.ndarray, queries: np.ndarray) -> None:
        self.name = name
        self.vectors = vectors  # float32, unit length, one row per stored chunk
        self.queries = queries  # float32, unit length, not among the stored rows

    def exact_top(self, k: int) -> np.ndarray:
        """The ids (row numbers) of each query's k nearest stored vectors by cosine."""
        top = np.empty((len(self.queries), k), dtype=np.int64)
        for start in range(0, len(self.queries), 64):
            scores = self.queries[start : start + 64] @ self.vectors.T
            part = np.argpartition(-scores, k, axis=1)[:, :k]
            order = np.take_along_axis(scores, part, axis=1).argsort(axis=1)[:, ::-1]
            top[start : start + 64] = np.take_along_axis(part, order, axis=1)
        return top


def random_unit(count: int, queries: int, *, seed: int = 5) -> DataSet:
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((count + queries, DIMS)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    return DataSet("random", data[:count], data[count:])


def _docstring_texts() -> list[str]:
    root = Path(sysconfig.get_paths()["purelib"])
    seen: set[str] = set()
    texts: list[str] = []
    for path in sorted(root.rglob("*.py")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # old escape sequences in some packages
                tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, OSError, RecursionError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                text = ast.get_docstring(node)
                if text and len(text) >= _MIN_CHARS:
                    text = " ".join(text.split())[:2000]
                    if text not in seen:
                        seen.add(text)
                        texts.append(text)
    return texts


def docstrings(count: int, queries: int) -> DataSet:
    """``count`` docstring embeddings to store and ``queries`` others to search with."""
    key = hashlib.sha256(f"{count}:{queries}:{sys.version}".encode()).hexdigest()[:12]
    cached = _CACHE / f"docstrings-{key}.npz"
    if cached.exists():
        saved = np.load(cached)
        return DataSet("docstrings", saved["vectors"], saved["queries"])
    from controlplane.embedding.wordllama import wordllama_embeddings

    texts = _docstring_texts()
    if len(texts) < count + queries:
        raise SystemExit(
            f"only {len(texts)} docstrings here; ask for fewer than {count} + {queries}"
        )
    # A fixed, spread-out choice: not the first N files (one package's style).
    order = np.random.default_rng(17).permutation(len(texts))[: count + queries]
    chosen = [texts[i] for i in order]
    embedded = np.empty((len(chosen), _MODEL_DIMS), dtype=np.float32)
    for start in range(0, len(chosen), 4096):
        part = chosen[start : start + 4096]
        embedded[start : start + len(part)] = wordllama_embeddings(part, _MODEL_DIMS, "l2_supercat")
    projection = np.random.default_rng(23).standard_normal((_MODEL_DIMS, DIMS)).astype(np.float32)
    wide = embedded @ projection
    wide /= np.linalg.norm(wide, axis=1, keepdims=True)
    _CACHE.mkdir(exist_ok=True)
    np.savez(cached, vectors=wide[:count], queries=wide[count:])
    return DataSet("docstrings", wide[:count], wide[count:])


def load(name: str, count: int, queries: int) -> DataSet:
    if name == "random":
        return random_unit(count, queries)
    if name == "docstrings":
        return docstrings(count, queries)
    raise SystemExit(f"unknown data set {name!r}: random or docstrings")
