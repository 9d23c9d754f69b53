"""A Postgres server of the tenant's own, run by tenantvec (own data directory and port)."""

from controlplane.backends.instance.backend import InstanceBackend

__all__ = ["InstanceBackend"]
