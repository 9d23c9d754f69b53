"""The tenantvec exception tree.

Every error the library raises on purpose is a :class:`TenantvecError`. Errors from the
layers below (psycopg, SQLAlchemy, subprocesses) are translated into this tree at one
boundary each; the CLI derives exit codes and the API derives HTTP statuses from it in
one place each (``cli/errors.py``, ``controlplane/api``)::

    TenantvecError
    ├── InvalidRequest            bad input: ids, options, DSNs (the caller can fix it)
    │   ├── NotConfigured         asks for a backend or provider this control plane lacks
    │   ├── BackupInvalid         a file given as a backup is not one, or is damaged
    │   └── DocumentRejected      the tenant's database refused one document's data
    ├── AuthenticationFailed      no, malformed or revoked credentials
    ├── PermissionDenied          valid credentials that may not do this
    ├── NotFound
    │   ├── TenantNotFound
    │   ├── ServerNotFound
    │   ├── DocumentNotFound
    │   ├── JobNotFound
    │   └── KeyNotFound
    ├── Conflict                  the request clashes with the current state
    │   ├── TenantExists
    │   ├── ServerExists
    │   ├── ChunkIdTaken          a chunk id another document's chunk already has
    │   ├── TenantHasNoEmbedder   text sent to a tenant that stores callers' vectors only
    │   └── TenantBusy            another operation on the tenant is in progress
    ├── OverCapacity              no room: servers full, connection budget in use
    ├── BackendUnavailable        a Postgres server or service cannot be reached
    │   ├── CatalogUnavailable    the catalog database cannot be reached
    │   ├── TenantUnavailable     one tenant's database cannot serve (state or outage)
    │   └── EmbedderUnavailable   the embedding provider is down or rate-limiting us
    ├── EmbeddingFailed           the embedding provider refused or answered wrongly
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
    "AuthenticationFailed",
    "BackendUnavailable",
    "BackupInvalid",
    "CatalogUnavailable",
    "ChunkIdTaken",
    "ConfigurationError",
    "Conflict",
    "DocumentNotFound",
    "DocumentRejected",
    "EmbeddedServerError",
    "EmbedderUnavailable",
    "EmbeddingFailed",
    "InvalidRequest",
    "JobNotFound",
    "KeyNotFound",
    "MigrationChecksumMismatch",
    "MigrationError",
    "NotConfigured",
    "NotFound",
    "OverCapacity",
    "PermissionDenied",
    "ProvisioningError",
    "ServerExists",
    "ServerNotFound",
    "TenantBusy",
    "TenantChanged",
    "TenantExists",
    "TenantHasNoEmbedder",
    "TenantNotFound",
    "TenantUnavailable",
    "TenantvecError",
]


class TenantvecError(Exception):
    """Base of every error tenantvec raises on purpose."""


class InvalidRequest(TenantvecError):
    """The input is malformed or out of range; nothing was changed."""


class NotConfigured(InvalidRequest):
    """The request needs a backend or provider whose settings this control plane lacks
    (e.g. ``backend: neon`` without a Neon API key): choose another, or ask the operator."""


class BackupInvalid(InvalidRequest):
    """A file given as a tenantvec backup is not one, or is damaged."""


class DocumentRejected(InvalidRequest):
    """The tenant's database refused a document's data (a chunk too large for its
    full-text index, say); ``document_id`` says which, when it can be told."""

    def __init__(self, document_id: str | None, message: str) -> None:
        super().__init__(message)
        self.document_id = document_id


class AuthenticationFailed(TenantvecError):
    """The request carries no credentials, malformed ones, or ones that are not valid."""


class PermissionDenied(TenantvecError):
    """The credentials are valid but do not allow this request."""


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


class DocumentNotFound(NotFound):
    def __init__(self, tenant_id: str, document_id: str) -> None:
        super().__init__(f"document {document_id!r} not found in tenant {tenant_id!r}")
        self.tenant_id = tenant_id
        self.document_id = document_id


class JobNotFound(NotFound):
    def __init__(self, tenant_id: str, job_id: str) -> None:
        super().__init__(f"ingestion job {job_id!r} not found in tenant {tenant_id!r}")
        self.tenant_id = tenant_id
        self.job_id = job_id


class KeyNotFound(NotFound):
    def __init__(self, tenant_id: str, key_id: str) -> None:
        super().__init__(f"key {key_id!r} not found for tenant {tenant_id!r}")
        self.tenant_id = tenant_id
        self.key_id = key_id


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


class ChunkIdTaken(Conflict):
    """``document_id``: the document written when it clashed (batch ingestion leaves it
    out and writes the others)."""

    def __init__(self, tenant_id: str, chunk_id: str, document_id: str | None = None) -> None:
        super().__init__(
            f"chunk id {chunk_id!r} is taken by a chunk of another document in tenant "
            f"{tenant_id!r}: chunk ids are unique in a tenant (delete that chunk first, "
            "or choose another id)"
        )
        self.tenant_id = tenant_id
        self.chunk_id = chunk_id
        self.document_id = document_id


class TenantHasNoEmbedder(Conflict):
    """Text to embed (a text query, a chunk without a vector, a backfill) for a tenant
    that has no embedder: it stores the vectors its callers send."""

    def __init__(self, tenant_id: str, what: str) -> None:
        super().__init__(
            f"tenant {tenant_id!r} has no embedder, so {what} cannot be embedded: send "
            "vectors (an 'embedding' with each chunk, a 'vector' to search), or give it the "
            "model that made its vectors: tenantctl tenants set-embedder "
            f"{tenant_id} PROVIDER:MODEL (PUT /v1/tenants/{tenant_id}/embedder)"
        )
        self.tenant_id = tenant_id


class TenantBusy(Conflict):
    def __init__(self, tenant_id: str) -> None:
        super().__init__(
            f"another operation on tenant {tenant_id!r} is in progress; retry when it ends"
        )
        self.tenant_id = tenant_id


class TenantChanged(Conflict):
    """A step of an operation found the tenant's row changed under it (another process
    settled or took over what it was doing)."""

    def __init__(self, tenant_id: str, what: str) -> None:
        super().__init__(
            f"tenant {tenant_id!r} changed while an operation on it ran (its {what}); "
            "the operation stopped: look at 'tenantctl tenants show' and retry"
        )
        self.tenant_id = tenant_id


class OverCapacity(TenantvecError):
    """No room: no server takes another tenant, or a connection budget is in use.

    ``retry_after`` (seconds), when set, is when trying again is likely to help.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BackendUnavailable(TenantvecError):
    """A Postgres server or outside service cannot be reached (transient)."""


class CatalogUnavailable(BackendUnavailable):
    """The catalog database does not answer; routes and keys verified recently may still
    serve for ``TENANTVEC_CATALOG_GRACE_SECONDS`` (``routing.grace``)."""


class TenantUnavailable(BackendUnavailable):
    """One tenant's database cannot serve requests: its state, or an outage."""

    def __init__(
        self,
        tenant_id: str,
        state: str,
        reason: str,
        *,
        retry_after: float = 1,
        lost: bool = False,
    ) -> None:
        super().__init__(f"tenant {tenant_id!r} ({state}) is unavailable: {reason}")
        self.tenant_id = tenant_id
        self.state = state
        self.retry_after = retry_after
        # The connection was lost while a statement ran (its server died under it).
        self.lost = lost


class EmbedderUnavailable(BackendUnavailable):
    """The embedding provider kept failing transiently (429, 5xx, timeouts) past retries."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class EmbeddingFailed(TenantvecError):
    """The embedding provider refused the request or answered with unusable vectors."""


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
