"""A database and two roles per tenant on a registered Postgres server."""

from controlplane.backends.postgres.backend import PostgresBackend

__all__ = ["PostgresBackend"]
