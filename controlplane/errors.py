"""The tenantvec exception tree.

Every error the library raises on purpose is a :class:`TenantvecError`. Errors from the
layers below (psycopg, SQLAlchemy, subprocesses) are translated into this tree at one
boundary each; the CLI derives exit codes and the API derives HTTP statuses from it in
one place each (``cli/errors.py``, ``controlplane/api``)::

    TenantvecError
    ├── InvalidRequest            bad input: ids, options, DSNs (the caller can fix it)
    ├── NotFound
    │   ├── TenantNotFound
    │   └── ServerNotFound
    ├── Conflict                  the request clashes with the current state
    │   ├── TenantExists
    │   ├── ServerExists
    │   └── TenantBusy            another operation on the tenant is in progress
    ├── OverCapacity              no server has room (retry later or add a server)
    ├── BackendUnavailable        a Postgres server or service cannot be reached
    ├── ProvisioningError         a backend refused a step (permanent)
    ├── MigrationError
    │   └── MigrationChecksumMismatch
    ├── EmbeddedServerError       the local Postgres cannot be set up or started
    └── ConfigurationError        settings are missing or inconsistent

Messages are written for the person who reads them: they say what happened and, where
there is one, what to do. They never contain a password or key.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "ConfigurationError",
    "Conflict",
    "EmbeddedServerError",
    "InvalidRequest",
    "MigrationChecksumMismatch",
    "MigrationError",
    "NotFound",
    "OverCapacity",
    "ProvisioningError",
    "ServerExists",
    "ServerNotFound",
    "TenantBusy",
    "TenantExists",
    "TenantNotFound",
    "TenantvecError",
]


class TenantvecError(Exception):
    """Base of every error tenantvec raises on purpose."""


class InvalidRequest(TenantvecError):
    """The input is malformed or out of range; nothing was changed."""


class NotFound(TenantvecError):
    """The named object does not exist."""


class TenantNotFound(NotFound):
    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"tenant {tenant_id!r} not found")
        self.tenant_id = tenant_id


class ServerNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"server {name!r} is not registered (see 'tenantctl servers list')")
        self.name = name


class Conflict(TenantvecError):
    """The request is valid but clashes with the current state."""


class TenantExists(Conflict):
    def __init__(self, tenant_id: str, state: str) -> None:
        super().__init__(f"tenant {tenant_id!r} already exists (state {state})")
        self.tenant_id = tenant_id
        self.state = state


class ServerExists(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"server {name!r} is already registered")
        self.name = name


class TenantBusy(Conflict):
    def __init__(self, tenant_id: str) -> None:
        super().__init__(
            f"another operation on tenant {tenant_id!r} is in progress; retry when it ends"
        )
        self.tenant_id = tenant_id


class OverCapacity(TenantvecError):
    """No placement target has room; retry later or register another server."""


class BackendUnavailable(TenantvecError):
    """A Postgres server or outside service cannot be reached (transient)."""


class ProvisioningError(TenantvecError):
    """A backend refused a provisioning step; retrying the same request will not help."""


class MigrationError(TenantvecError):
    """A tenant schema migration could not be applied."""


class MigrationChecksumMismatch(MigrationError):
    """An applied migration's file has changed since it was applied."""


class EmbeddedServerError(TenantvecError):
    """The embedded Postgres server cannot be initialised, started or stopped."""


class ConfigurationError(TenantvecError):
    """A setting is missing, malformed or inconsistent."""
