"""Checks that depend on the tenant: a vector's length, its values, the metric's ranges.

Everything here runs before a connection is taken, so a bad request costs no database
work and leaves nothing half written.
"""

from __future__ import annotations

import math

from controlplane.errors import InvalidRequest
from tenant_schema.spec import Metric

__all__ = ["check_min_similarity", "check_vector"]

# pgvector stores float4: larger magnitudes cannot be represented.
_FLOAT4_MAX = 3.4028234663852886e38


def check_vector(
    values: list[float], *, tenant_id: str, dims: int, metric: Metric, where: str
) -> None:
    if len(values) != dims:
        raise InvalidRequest(
            f"tenant {tenant_id} expects {dims} dimensions, got {len(values)} ({where})"
        )
    # sum() runs in C; only a vector that is not finite in total is looked at closely
    # (a sum can also overflow with every value finite, hence the element check).
    if not math.isfinite(sum(values)):
        for i, value in enumerate(values):
            if not math.isfinite(value):
                raise InvalidRequest(f"{where}[{i}] is {value}; values must be finite numbers")
    if max(values) > _FLOAT4_MAX or min(values) < -_FLOAT4_MAX:
        raise InvalidRequest(f"{where} has a value beyond float4 range (±3.4e38)")
    if metric is Metric.COSINE and not any(values):
        raise InvalidRequest(f"{where} is all zeros: it has no direction for cosine similarity")


def check_min_similarity(value: float, metric: Metric) -> float:
    """The largest distance ``value`` admits, as the metric's operator measures it."""
    if not math.isfinite(value):
        raise InvalidRequest("min_similarity must be a finite number")
    if metric is Metric.COSINE:
        if not -1 <= value <= 1:
            raise InvalidRequest("min_similarity for cosine must be between -1 and 1")
        return 1 - value  # <=> is 1 - cosine similarity
    if metric is Metric.IP:
        return -value  # <#> is the negated inner product
    if not 0 < value <= 1:
        raise InvalidRequest("min_similarity for l2 must be in (0, 1]: score = 1 / (1 + distance)")
    return 1 / value - 1


def score_sql(metric: Metric, distance: str = "distance") -> str:
    """SQL turning the operator's distance (the SQL expression ``distance``) into a
    similarity score."""
    return {
        Metric.COSINE: f"1 - {distance}",
        Metric.IP: f"-{distance}",
        Metric.L2: f"1 / (1 + {distance})",
    }[metric]
