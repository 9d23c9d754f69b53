"""What an error from Postgres or libpq says to a person: the cause, never libpq's
boilerplate, never a password."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import pytest

from controlplane.dsn import ConnInfo
from controlplane.pgconnect import describe_pg_error


async def test_a_session_ended_under_a_statement_says_how(superuser_dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(superuser_dsn, autocommit=True) as admin:
        victim = await psycopg.AsyncConnection.connect(superuser_dsn, autocommit=True)
        pid = victim.info.backend_pid
        await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError) as caught:
            await victim.execute("SELECT 1")
        await victim.close()
    said = describe_pg_error(caught.value)
    assert "connection" in said and "before or while" not in said, said


async def test_a_refused_connection_names_the_cause_not_the_password(superuser_dsn: str) -> None:
    wrong = ConnInfo.parse(superuser_dsn).with_(dbname="no_such_database_here")
    with pytest.raises(psycopg.OperationalError) as caught:
        await psycopg.AsyncConnection.connect(wrong.dsn, connect_timeout=5)
    said = describe_pg_error(caught.value)
    assert "no_such_database_here" in said, said


async def test_a_connection_cut_without_a_word_says_it_was_closed(superuser_dsn: str) -> None:
    """libpq's "server closed the connection unexpectedly" comes with two lines of
    boilerplate; the last of them ("before or while processing the request.") is not
    a cause. A connection through a proxy that hangs up shows it."""
    target = ConnInfo.parse(superuser_dsn)
    writers: list[asyncio.StreamWriter] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(target.host, target.port)
        writers.extend((client_w, server_w))
        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))

    proxy = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    async with proxy:
        conn = await psycopg.AsyncConnection.connect(
            target.with_(host="127.0.0.1", port=port).dsn, autocommit=True
        )
        await conn.execute("SELECT 1")
        for writer in writers:
            writer.transport.abort()
        with pytest.raises(psycopg.OperationalError) as caught:
            await conn.execute("SELECT 1")
        await conn.close()
    said = describe_pg_error(caught.value)
    assert "closed the connection" in said and "before or while" not in said, said
