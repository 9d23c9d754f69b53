"""Bringing a copy of a tenant database up to date with its source, document by document.

A move copies the tenant while it still takes writes, then pauses them and catches up:
this module. Each document is summed up on both sides -- an MD5 of its row and of all
its chunks' rows, every column -- and the documents whose sums differ (new, changed)
are copied again with their chunks, those gone from the source deleted from the copy;
ingestion jobs (small, and advancing while the copy ran) are copied whole; identity
sequences are set to the source's. Then the fingerprints of both sides (counts and a
digest of every row) must be equal, or the catch-up fails.

Both databases must be at the same schema version (the copy was migrated to the
source's): a row's text is then the same on both sides for the same content. Rows move
as ``COPY ... TO STDOUT`` from the source streamed into ``COPY ... FROM STDIN`` on the
copy, inside one transaction there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from controlplane.errors import ProvisioningError
from controlplane.lifecycle.backup import Fingerprint, fingerprint

__all__ = ["CatchUp", "catch_up"]

Conn = psycopg.AsyncConnection[Any]

# One line per document: its id, and an MD5 of its row and its chunks' rows in order.
_DOCUMENT_SUMS = """
SELECT d.id, md5(d::text || coalesce(
  (SELECT string_agg(c::text, '|' ORDER BY c.ordinal) FROM chunks c WHERE c.document_id = d.id),
  ''))
FROM documents d
"""
# Copied whole at the end of a catch-up: rows that change while the first copy runs and
# have no document to be compared by.
_WHOLE_TABLES = ("ingestion_jobs",)


@dataclass(frozen=True)
class CatchUp:
    copied: int  # documents (re)copied
    deleted: int  # documents deleted from the copy
    fingerprint: Fingerprint


async def catch_up(source: Conn, target: Conn, *, where: str) -> CatchUp:
    """Make ``target`` hold what ``source`` holds. ``source`` must not change meanwhile
    (its writes paused); ``target`` must be in a transaction of its own, committed
    here on success."""
    ours = await _document_sums(source)
    theirs = await _document_sums(target)
    changed = [doc for doc, digest in ours.items() if theirs.get(doc) != digest]
    gone = [doc for doc in theirs if doc not in ours]
    if changed or gone:
        await target.execute("DELETE FROM documents WHERE id = ANY(%s)", (changed + gone,))
    if changed:
        await _copy_rows(source, target, "documents", "id", changed)
        await _copy_rows(source, target, "chunks", "document_id", changed)
    for table in _WHOLE_TABLES:
        await target.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
        await _copy_rows(source, target, table, None, None)
    await _match_sequences(source, target)
    expected, found = await fingerprint(source), await fingerprint(target)
    if found != expected:
        raise ProvisioningError(
            f"{where}: the copy does not match its source after catching up: "
            f"{found.documents} documents and {found.chunks} chunks (digest {found.digest}) "
            f"where the source holds {expected.documents} and {expected.chunks} "
            f"({expected.digest})"
        )
    await target.commit()
    return CatchUp(copied=len(changed), deleted=len(gone), fingerprint=found)


async def _document_sums(conn: Conn) -> dict[str, str]:
    rows = await (await conn.execute(_DOCUMENT_SUMS)).fetchall()
    return {str(doc): str(digest) for doc, digest in rows}


async def _columns(conn: Conn, table: str) -> list[str]:
    """The columns rows are copied by: every stored one but generated columns."""
    cur = await conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
        (table,),
    )
    return [str(row[0]) for row in await cur.fetchall()]


async def _copy_rows(
    source: Conn, target: Conn, table: str, key: str | None, values: list[str] | None
) -> None:
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in await _columns(source, table))
    select = sql.SQL("SELECT {} FROM {}").format(columns, sql.Identifier(table))
    if key is not None:
        select = sql.SQL("{} WHERE {} = ANY({})").format(
            select, sql.Identifier(key), sql.Literal(values)
        )
    copy_out = sql.SQL("COPY ({}) TO STDOUT").format(select)
    # COPY writes identity columns as given (chunk ids stay the chunk ids).
    copy_in = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), columns)
    async with (
        source.cursor() as out_cur,
        target.cursor() as in_cur,
        out_cur.copy(copy_out) as out,
        in_cur.copy(copy_in) as into,
    ):
        async for data in out:
            await into.write(data)


async def _match_sequences(source: Conn, target: Conn) -> None:
    """Identity columns' sequences where the source's are, so that new rows on the copy
    get ids the source never gave."""
    cur = await source.execute(
        """
        SELECT s.seqrelid::regclass::text, q.last_value, q.is_called
        FROM pg_sequence s
        CROSS JOIN LATERAL pg_sequence_last_value(s.seqrelid) AS lv(value)
        CROSS JOIN LATERAL (SELECT coalesce(lv.value, s.seqstart) AS last_value,
                                   lv.value IS NOT NULL AS is_called) q
        """
    )
    for name, last_value, is_called in await cur.fetchall():
        await target.execute("SELECT setval(%s, %s, %s)", (name, last_value, is_called))
