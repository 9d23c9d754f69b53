"""Maximal marginal relevance over search hits: relevance to the query traded against
likeness to what was already picked (Carbonell and Goldstein, 1998).

The query's relevance is each hit's similarity as the server scored it, so a store
needs no query vector of its own: a tenant that embeds on the server gets MMR too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["mmr_order"]


def mmr_order(
    relevance: Sequence[float],
    vectors: Sequence[Sequence[float]],
    *,
    k: int,
    lambda_mult: float = 0.5,
) -> list[int]:
    """Indexes of up to ``k`` hits: each next one maximises ``lambda_mult * relevance -
    (1 - lambda_mult) * max cosine to those picked``. 1 is plain relevance order, 0 the
    most diverse."""
    if not 0 <= lambda_mult <= 1:
        raise ValueError("lambda_mult must be between 0 and 1")
    if not relevance or k <= 0:
        return []
    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = matrix / np.where(norms == 0, 1, norms)
    likeness = unit @ unit.T
    scores = np.asarray(relevance, dtype=np.float64)
    picked = [int(np.argmax(scores))]
    closest = likeness[picked[0]].copy()  # each hit's highest likeness to a picked one
    while len(picked) < min(k, len(scores)):
        value = lambda_mult * scores - (1 - lambda_mult) * closest
        value[picked] = -np.inf
        best = int(np.argmax(value))
        picked.append(best)
        closest = np.maximum(closest, likeness[best])
    return picked
