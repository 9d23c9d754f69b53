"""Loading a backup's (or a move's) two dumps so that they can do no more than the tenant.

* **tenantvec's rows** (``tenant.dump``): every entry of the archive is checked against
  what a backup writes -- the rows of tenantvec's own tables and the counter of chunk
  ids -- and the rows are streamed out of it by ``pg_restore`` (which connects to
  nothing: it only decodes the archive) into ``COPY public.<table> (...) FROM STDIN``
  statements written here. A crafted entry whose "rows" are SQL text is refused: no SQL
  of the file is ever executed, and the stream is bounded in size.
* **what the tenant made itself** (``own.dump``: its schema ``app`` and any other of
  its own, their tables, views, functions, sequences and rows): loaded by ``pg_restore``
  as the tenant's own role -- never a superuser, never the service role -- in one
  transaction and within a time bound. It can do nothing there that the tenant's DSN
  could not; tenantvec's schema (``public``) and the extensions are not in it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from controlplane.backends.markers import TENANT_SCHEMA
from controlplane.dsn import ConnInfo
from controlplane.errors import BackendUnavailable, ProvisioningError
from controlplane.localpg.tools import run_pg_tool
from tenantvec_schema.spec import ROW_TABLES

__all__ = [
    "DumpRefused",
    "load_own_objects",
    "load_rows",
    "own_objects",
    "own_objects_in_public",
]

logger = logging.getLogger(__name__)


class DumpRefused(Exception):
    """A dump holds something a backup never does, or loads beyond its bounds: the
    restore (BackupInvalid) or move (ProvisioningError) says why in its own words."""


# -- what pg_restore --list says an archive holds -----------------------------------

_ENTRY = re.compile(r"(\d+); (\d+) (\d+) (.*)")
_ROW_ENTRY = re.compile(r"TABLE DATA public (" + "|".join(ROW_TABLES) + r")(?: \S*)?")
# The counter behind chunk ids: recomputed from the rows, never taken from the file.
_SEQUENCE_ENTRY = re.compile(r"SEQUENCE SET public chunks_id_seq(?: \S*)?")
# What an own-objects dump holds that the new database has already, or that only a
# superuser may make: the extensions (and their comments), schema app itself.
_PROVIDED = re.compile(
    r"EXTENSION - \S+ ?\S*|COMMENT - EXTENSION \S+ ?\S*|SCHEMA - (?:public|"
    + TENANT_SCHEMA
    + r") ?\S*|ACL .*|DATABASE .*|DATABASE PROPERTIES .*"
)


@dataclass(frozen=True)
class Entry:
    line: str  # as pg_restore --list wrote it: what --use-list reads back
    what: str  # type, schema, name, owner


async def _entries(pg_restore: Path, dump: Path) -> list[Entry]:
    process = await asyncio.create_subprocess_exec(
        str(pg_restore),
        "--list",
        dump.name,
        cwd=dump.parent,  # its messages name the file, never our scratch directory
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise DumpRefused(f"its {dump.name} is not a readable archive ({_said(err)})")
    entries = []
    for raw in out.decode(errors="replace").splitlines():
        if not raw.strip() or raw.startswith(";"):
            continue
        match = _ENTRY.fullmatch(raw)
        if match is None:
            raise DumpRefused(f"its {dump.name} lists an entry pg_restore cannot name")
        entries.append(Entry(raw, match.group(4)))
    return entries


# -- tenantvec's rows ------------------------------------------------------------------


async def load_rows(
    conn: psycopg.AsyncConnection[Any], pg_restore: Path, dump: Path, *, max_bytes: int
) -> dict[str, int]:
    """Load the rows of ``dump`` into tenantvec's tables through ``conn`` (in its open
    transaction); bytes loaded per table. DumpRefused if the archive holds anything but
    rows of those tables, or more than ``max_bytes`` of them."""
    rows: list[Entry] = []
    for entry in await _entries(pg_restore, dump):
        if _ROW_ENTRY.fullmatch(entry.what):
            rows.append(entry)
        elif not _SEQUENCE_ENTRY.fullmatch(entry.what):
            raise DumpRefused(
                f"its {dump.name} holds {_shown(entry.what)}, which is not a row of "
                "tenantvec's tables"
            )
    listing = dump.with_name(dump.name + ".list")
    listing.write_text("".join(f"{entry.line}\n" for entry in rows))
    process = await asyncio.create_subprocess_exec(
        str(pg_restore),
        "--data-only",
        f"--use-list={listing.name}",
        "--file=-",
        dump.name,
        cwd=dump.parent,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    errors = asyncio.ensure_future(process.stderr.read())
    try:
        loaded = await _RowStream(conn, process.stdout, max_bytes, dump.name).run()
    except BaseException:
        # Refused (or cancelled) mid-stream: stop the tool, whatever it was writing.
        if process.returncode is None:
            process.kill()
        await process.wait()
        await errors
        raise
    # Its output ended: wait for it to exit by itself (it may not have yet), then judge.
    await process.wait()
    said = await errors
    if process.returncode != 0:
        raise DumpRefused(f"its {dump.name} could not be read ({_said(said)})")
    await conn.execute(
        "SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('public.chunks', 'id'), "
        "greatest(max(id), 1), max(id) IS NOT NULL) FROM public.chunks"
    )
    return loaded


# pg_restore's text output around the rows: settings, comments, its restrict keys.
_AROUND_ROWS = re.compile(
    rb"|--[^\n]*|SET [a-z_]+ = [^;\n]*;|SELECT pg_catalog\.set_config\('search_path', '', false\);"
    rb"|\\(?:un)?restrict [A-Za-z0-9]+"
)
_COPY = re.compile(rb"COPY public\.([a-z_]+) \(([a-z_, \"]*)\) FROM stdin;")
_COLUMN = re.compile(r'"?([a-z_][a-z0-9_]*)"?')
_END_OF_ROWS = b"\\.\n"
_READ = 1 << 20


class _RowStream:
    """pg_restore's text output, parsed strictly: each block of rows goes to a COPY
    written here; anything else but settings and comments refuses the dump."""

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        source: asyncio.StreamReader,
        max_bytes: int,
        name: str,
    ) -> None:
        self.conn = conn
        self.source = source
        self.max_bytes = max_bytes
        self.name = name
        self.buf = bytearray()
        self.total = 0

    async def _fill(self) -> bool:
        chunk = await self.source.read(_READ)
        self.buf.extend(chunk)
        return bool(chunk)

    async def run(self) -> dict[str, int]:
        loaded: dict[str, int] = {}
        while True:
            newline = self.buf.find(b"\n")
            while newline < 0:
                if not await self._fill():
                    if self.buf.strip():
                        self._check_around(bytes(self.buf))
                    return loaded
                newline = self.buf.find(b"\n")
            line = bytes(self.buf[:newline])
            del self.buf[: newline + 1]
            header = _COPY.fullmatch(line)
            if header is None:
                self._check_around(line)
                continue
            table = header.group(1).decode()
            if table not in ROW_TABLES or table in loaded:
                raise DumpRefused(f"its {self.name} loads table {table!r} where it may not")
            columns = [_COLUMN.fullmatch(c.strip()) for c in header.group(2).decode().split(",")]
            if not all(columns):
                raise DumpRefused(f"its {self.name} names columns of {table!r} it may not")
            statement = sql.SQL("COPY public.{} ({}) FROM STDIN").format(
                sql.Identifier(table),
                sql.SQL(", ").join(sql.Identifier(c.group(1)) for c in columns if c),
            )
            loaded[table] = await self._copy(statement, table)

    def _check_around(self, line: bytes) -> None:
        if not _AROUND_ROWS.fullmatch(line):
            shown = _shown(line.decode(errors="replace"))
            raise DumpRefused(f"its {self.name} holds something other than rows: {shown}")

    async def _copy(self, statement: sql.Composed, table: str) -> int:
        """Stream one block of rows (up to its ``\\.`` line) into ``statement``."""
        sent = 0
        at_line_start = True  # where self.buf begins
        async with self.conn.cursor() as cur, cur.copy(statement) as copy:
            while True:
                end = 0 if at_line_start and self.buf.startswith(_END_OF_ROWS) else -1
                if end < 0:
                    found = self.buf.find(b"\n" + _END_OF_ROWS)
                    end = found + 1 if found >= 0 else -1
                if end >= 0:
                    await copy.write(bytes(self.buf[:end]))
                    sent += end
                    self.total += end
                    del self.buf[: end + len(_END_OF_ROWS)]
                    break
                # Keep a tail that may be the start of the end line.
                ready = len(self.buf) - len(_END_OF_ROWS)
                if ready > 0:
                    await copy.write(bytes(self.buf[:ready]))
                    sent += ready
                    at_line_start = self.buf[ready - 1] == ord("\n")
                    del self.buf[:ready]
                    self.total += ready
                if self.total > self.max_bytes:
                    raise DumpRefused(
                        f"its rows grow past {self.max_bytes:,} bytes, more than a backup "
                        "of its size can hold (TENANTVEC_RESTORE_MAX_EXPANSION)"
                    )
                if not await self._fill():
                    raise DumpRefused(f"its {self.name} ends inside the rows of {table!r}")
        return sent


# -- what the tenant made itself -------------------------------------------------------

# Schemas that are not the tenant's own making.
_SYSTEM_SCHEMAS = ("public", "pg_catalog", "information_schema", "pg_toast")
_OWN_OBJECTS = """
SELECT n.nspname, c.relname
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT n.nspname = ANY(%(system)s) AND n.nspname NOT LIKE 'pg\\_%%'
UNION ALL
SELECT n.nspname, p.proname
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE NOT n.nspname = ANY(%(system)s) AND n.nspname NOT LIKE 'pg\\_%%'
UNION ALL
SELECT n.nspname, t.typname
FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE NOT n.nspname = ANY(%(system)s) AND n.nspname NOT LIKE 'pg\\_%%'
UNION ALL
SELECT n.nspname, ''
FROM pg_catalog.pg_namespace n
WHERE NOT n.nspname = ANY(%(system)s) AND n.nspname NOT LIKE 'pg\\_%%'
  AND n.nspname <> %(tenant_schema)s
LIMIT 1
"""


async def own_objects(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether the tenant made anything of its own (outside ``public``)."""
    cur = await conn.execute(
        _OWN_OBJECTS, {"system": list(_SYSTEM_SCHEMAS), "tenant_schema": TENANT_SCHEMA}
    )
    return await cur.fetchone() is not None


async def own_objects_in_public(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    """Relations, routines and types in ``public`` that tenantvec did not make (only a
    tenant of an older layout can have them: ``migrate`` moves them to ``app``)."""
    cur = await conn.execute(
        """
        SELECT c.relname FROM pg_catalog.pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r','p','v','m','S','f')
          AND NOT c.relname = ANY(%(ours)s)
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                            AND d.deptype IN ('a', 'i', 'e'))
        UNION ALL
        SELECT p.proname FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                          WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                            AND d.deptype = 'e')
        ORDER BY 1 LIMIT 5
        """,
        {"ours": [*ROW_TABLES, "schema_migrations", "chunks_id_seq"]},
    )
    return [str(row[0]) for row in await cur.fetchall()]


async def load_own_objects(
    pg_restore: Path,
    dump: Path,
    owner: ConnInfo,
    *,
    end_sessions: Any,
    where: str,
    timeout: float,
) -> None:
    """Re-create what ``dump`` holds of the tenant's own, as its own role ``owner``, in
    one transaction, within ``timeout`` seconds (past it, the tool is stopped and
    ``end_sessions`` -- a coroutine function -- ends what it left running)."""
    keep = [
        entry for entry in await _entries(pg_restore, dump) if not _PROVIDED.fullmatch(entry.what)
    ]
    if not keep:
        return
    listing = dump.with_name(dump.name + ".list")
    listing.write_text("".join(f"{entry.line}\n" for entry in keep))
    try:
        await run_pg_tool(
            pg_restore,
            [
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                f"--use-list={listing}",
                str(dump),
            ],
            owner,
            where=where,
            timeout=timeout,
        )
    except TimeoutError:
        await end_sessions()
        raise DumpRefused(
            f"re-creating the tenant's own objects took over {timeout:g} s "
            "(TENANTVEC_RESTORE_OWN_OBJECTS_SECONDS)"
        ) from None
    except BackendUnavailable:
        raise
    except ProvisioningError as exc:
        said = str(exc).replace(str(dump.parent) + os.sep, "")
        raise DumpRefused(
            f"its {dump.name} does not load as the tenant's own role: {said}"
        ) from None


def _said(stderr: bytes) -> str:
    lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no reason given"


def _shown(text: str) -> str:
    """A piece of a file's text, safe to quote in one line."""
    printable = "".join(ch if ch.isprintable() else "?" for ch in text)
    return repr(printable[:80] + ("..." if len(printable) > 80 else ""))
