"""The catalog's registered Postgres servers."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from controlplane.catalog._base import StoreBase
from controlplane.catalog.models import (
    ServerRow,
)
from controlplane.errors import (
    ServerExists,
    ServerNotFound,
)
from controlplane.model.records import (
    Server,
    ServerState,
)

__all__ = ["ServerStore"]


class ServerStore(StoreBase):
    """Server rows."""

    async def add_server(self, server: Server, *, replace: bool = False) -> Server:
        async with self._session() as session:
            existing = await session.get(ServerRow, server.name)
            if existing is not None and not replace:
                raise ServerExists(server.name)
            values: dict[str, Any] = {
                "kind": server.kind,
                "state": server.state.value,
                "address": server.address,
                "admin_dsn_encrypted": server.admin_dsn_encrypted,
                "capacity": server.capacity,
                "capacity_bytes": server.capacity_bytes,
                "server_version": server.server_version,
                "pgvector_version": server.pgvector_version,
            }
            if existing is None:
                row = ServerRow(name=server.name, created_at=server.created_at, **values)
            else:
                row = existing
                del values["state"]  # re-registering must not undo a drain
                for key, value in values.items():
                    setattr(row, key, value)
            session.add(row)
            await session.commit()
            await session.refresh(row)
            return _server(row)

    async def find_server(self, name: str) -> Server | None:
        async with self._session() as session:
            row = await session.get(ServerRow, name)
            return _server(row) if row else None

    async def get_server(self, name: str) -> Server:
        server = await self.find_server(name)
        if server is None:
            raise ServerNotFound(name)
        return server

    async def list_servers(self) -> list[Server]:
        async with self._session() as session:
            rows = (await session.exec(select(ServerRow).order_by(col(ServerRow.name)))).all()
            return [_server(row) for row in rows]

    async def update_server(self, name: str, **changes: Any) -> Server:
        """Change a registered server's ``state``, ``capacity`` or ``capacity_bytes``."""
        async with self._session() as session:
            row = await session.get(ServerRow, name)
            if row is None:
                raise ServerNotFound(name)
            for key, value in changes.items():
                setattr(row, key, value.value if hasattr(value, "value") else value)
            session.add(row)
            await session.commit()
            await session.refresh(row)
            return _server(row)

    async def remove_server(self, name: str) -> None:
        async with self._session() as session:
            row = await session.get(ServerRow, name)
            if row is None:
                raise ServerNotFound(name)
            await session.delete(row)
            await session.commit()


def _server(row: ServerRow) -> Server:
    return Server(
        name=row.name,
        kind=row.kind,
        state=ServerState(row.state),
        address=row.address,
        capacity=row.capacity,
        capacity_bytes=row.capacity_bytes,
        server_version=row.server_version,
        pgvector_version=row.pgvector_version,
        created_at=row.created_at,
        admin_dsn_encrypted=row.admin_dsn_encrypted,
    )
