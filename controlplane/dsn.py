"""The one place that builds, parses and redacts Postgres connection strings."""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import quote

import psycopg.conninfo

from controlplane.errors import InvalidRequest

__all__ = ["ConnInfo", "redact"]


@dataclass(frozen=True)
class ConnInfo:
    """A parsed connection string. ``str()`` never shows the password; ``dsn`` does."""

    host: str
    port: int
    user: str
    dbname: str
    password: str | None = None
    # Extra libpq parameters (sslmode, options...), kept in order.
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, dsn: str) -> ConnInfo:
        """Parse a URI (``postgresql://...``) or key=value DSN; raise InvalidRequest."""
        try:
            parts = psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.ProgrammingError:
            # The parser's message may echo the DSN, password included: do not relay it.
            raise InvalidRequest(
                "malformed connection string; expected postgresql://USER:PASS@HOST:PORT/DB"
            ) from None
        values = {k: str(v) for k, v in parts.items() if v is not None}
        missing = [k for k in ("host", "user") if not values.get(k)]
        if missing:
            raise InvalidRequest(f"connection string lacks {' and '.join(missing)}")
        try:
            port = int(values.pop("port", "5432"))
        except ValueError:
            raise InvalidRequest("connection string has a non-numeric port") from None
        host = values.pop("host")
        user = values.pop("user")
        dbname = values.pop("dbname", user)
        password = values.pop("password", None)
        return cls(
            host=host,
            port=port,
            user=user,
            dbname=dbname,
            password=password,
            params=tuple(sorted(values.items())),
        )

    def with_(self, **changes: object) -> ConnInfo:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def dsn(self) -> str:
        """The full URI, password included: hand it to a driver, never to a log."""
        return self._uri(self.password)

    @property
    def redacted(self) -> str:
        return self._uri("***" if self.password else None)

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"ConnInfo({self.redacted!r})"

    def _uri(self, password: str | None) -> str:
        auth = quote(self.user, safe="")
        if password is not None:
            auth += ":" + (password if password == "***" else quote(password, safe=""))
        host = self.host
        if host.startswith("/"):
            # A unix socket directory goes in the query string, not the authority.
            netloc = f"{auth}@"
            query = [("host", host), ("port", str(self.port)), *self.params]
        else:
            if ":" in host:
                host = f"[{host}]"
            netloc = f"{auth}@{host}:{self.port}"
            query = list(self.params)
        uri = f"postgresql://{netloc}/{quote(self.dbname, safe='')}"
        if query:
            uri += "?" + "&".join(f"{k}={quote(v, safe='/')}" for k, v in query)
        return uri


def redact(dsn: str) -> str:
    """A DSN fit for display: the password masked, or a placeholder if unparsable."""
    try:
        return ConnInfo.parse(dsn).redacted
    except InvalidRequest:
        return "<unparsable connection string>"
