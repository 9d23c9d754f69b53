"""What every part of the catalog store shares: its engine, sessions, and the one place
where driver errors about the catalog become ours."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from controlplane.dsn import ConnInfo
from controlplane.errors import (
    CatalogUnavailable,
    InvalidRequest,
    OverCapacity,
)

__all__ = ["StoreBase"]


class StoreBase:
    _engine: AsyncEngine
    conninfo: ConnInfo

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        with self._translate():
            async with AsyncSession(self._engine, expire_on_commit=False) as session:
                yield session

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """The one place where driver errors about the catalog become ours."""
        try:
            yield
        except sqlalchemy.exc.DataError as exc:
            # Inputs are validated before they get here; this is the net under them.
            raise InvalidRequest(f"the catalog refused a value: {_first_line(exc.orig)}") from exc
        except sqlalchemy.exc.TimeoutError as exc:
            raise OverCapacity(
                "every catalog connection of this process is busy; retry shortly",
                retry_after=1,
            ) from exc
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
            raise CatalogUnavailable(
                f"the catalog database at {self.conninfo.host}:{self.conninfo.port} is "
                f"unreachable: {_first_line(exc.orig)}"
            ) from exc


def _first_line(exc: BaseException | None) -> str:
    return str(exc).strip().splitlines()[0] if exc and str(exc).strip() else "no detail"
