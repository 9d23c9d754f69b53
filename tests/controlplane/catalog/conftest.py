"""A fresh, empty catalog database per test, on the session's server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import sql

from controlplane.dsn import ConnInfo


@pytest.fixture
async def empty_catalog(superuser_dsn: str) -> AsyncIterator[ConnInfo]:
    """The DSN of a new database, dropped after the test."""
    name = f"tv_test_catalog_{uuid.uuid4().hex[:10]}"
    admin = ConnInfo.parse(superuser_dsn)
    async with await psycopg.AsyncConnection.connect(admin.dsn, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin.with_(dbname=name)
    finally:
        async with await psycopg.AsyncConnection.connect(admin.dsn, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
