"""What a chunk's id is, in SQL: the caller's key, or "<document id>#<ordinal>".

One expression, written once, because the tenant's unique index
``chunks_chunk_id_idx`` (tenant_schema 0004) is on exactly this expression: a lookup
by chunk id uses the index only when it spells the expression the same way.
"""

from __future__ import annotations

__all__ = ["chunk_id_sql", "made_up_chunk_id"]


def chunk_id_sql(alias: str = "") -> str:
    """The chunk id of a row of ``chunks`` (``alias``: the table's alias in the query)."""
    c = f"{alias}." if alias else ""
    return f"coalesce({c}key, {c}document_id || '#' || {c}ordinal::text)"


def made_up_chunk_id(document_id: str, ordinal: int) -> str:
    """The id of a chunk the caller gave none: the same the expression above makes."""
    return f"{document_id}#{ordinal}"
