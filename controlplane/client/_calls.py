"""Every endpoint of the tenantvec API, once: what to send and how to read the answer.

A :class:`Call` is a request not yet sent -- method, path, query, body -- and the function
that turns its JSON answer into the library's types. The sync and the async client send
the same calls (``Client.send`` / ``AsyncClient.send``), so both cover the same API and
neither knows a path of its own. Path segments are percent-encoded here: a document id
may hold ``/``, ``?`` or ``#``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import msgspec

from controlplane.model.request import TenantOptions
from controlplane.model.views import (
    ApiKeyView,
    Identity,
    IssuedKeyView,
    MoveView,
    OperationView,
    RestoreView,
    TenantDetail,
    TenantView,
)
from controlplane.retrieval.models import (
    ChunkFetchResponse,
    ChunkUpsertResponse,
    ChunkWrite,
    DeleteResponse,
    Document,
    DocumentCount,
    DocumentIds,
    FetchResponse,
    Job,
    SearchRequest,
    SearchResponse,
    TenantStats,
    UpsertRequest,
    UpsertResponse,
)

__all__ = ["Call", "calls"]

T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[Any], T]
    params: Mapping[str, str | int | bool] = field(default_factory=dict)
    body: Any = None  # encoded with msgspec: a Struct, a dict, a list; bytes go as they are
    tenant_id: str | None = None  # the tenant the call is about (named in its errors)
    # Safe to send again when the answer was lost (a read, or a write that converges).
    repeatable: bool | None = None

    @property
    def idempotent(self) -> bool:
        if self.repeatable is not None:
            return self.repeatable
        return self.method in ("GET", "PUT", "DELETE")


def _as(kind: type[T]) -> Callable[[Any], T]:
    return lambda data: msgspec.convert(data, kind)


def _none(_: Any) -> None:
    return None


def _text(data: Any) -> str:
    return str(data)


def _bytes(data: Any) -> bytes:
    if not isinstance(data, bytes):
        raise TypeError("expected the backup file's bytes")
    return data


def _seg(value: str) -> str:
    return quote(value, safe="")


def _tenant(tenant_id: str) -> str:
    return f"/v1/tenants/{_seg(tenant_id)}"


class _Calls:
    """The API's operations, by the names the clients give them (``operationId`` in the
    OpenAPI document in brackets)."""

    # -- tenants (admin) ------------------------------------------------------------

    def create_tenant(
        self, options: TenantOptions | None = None, **fields: Any
    ) -> Call[TenantView]:
        """[createTenant] ``create_tenant(id="acme", dims=384)`` or a TenantOptions.
        Options are checked here first, so a typo fails before a request is sent."""
        if options is None:
            body: dict[str, Any] = dict(fields)
            msgspec.convert(body, TenantOptions)  # raises msgspec.ValidationError early
        elif fields:
            raise TypeError("pass TenantOptions or keyword options, not both")
        else:
            body = msgspec.to_builtins(options)
        return Call("POST", "/v1/tenants", _as(TenantView), body=body, tenant_id=body.get("id"))

    def list_tenants(self, *, include_deleted: bool = False) -> Call[list[TenantView]]:
        """[listTenants]"""
        params = {"include_deleted": "true"} if include_deleted else {}
        return Call("GET", "/v1/tenants", _as(list[TenantView]), params=params)

    def get_tenant(self, tenant_id: str) -> Call[TenantDetail]:
        """[getTenant] The record, live facts from its server, recent operations."""
        return Call("GET", _tenant(tenant_id), _as(TenantDetail), tenant_id=tenant_id)

    def delete_tenant(self, tenant_id: str) -> Call[TenantView]:
        """[deleteTenant] Its ``placement["erasure"]`` says what became of the data."""
        return Call("DELETE", _tenant(tenant_id), _as(TenantView), tenant_id=tenant_id)

    def suspend_tenant(self, tenant_id: str) -> Call[TenantView]:
        """[suspendTenant]"""
        path = f"{_tenant(tenant_id)}/suspend"
        return Call("POST", path, _as(TenantView), tenant_id=tenant_id)

    def resume_tenant(self, tenant_id: str) -> Call[TenantView]:
        """[resumeTenant]"""
        path = f"{_tenant(tenant_id)}/resume"
        return Call("POST", path, _as(TenantView), tenant_id=tenant_id)

    def set_limits(
        self,
        tenant_id: str,
        *,
        tier: str | None = None,
        connection_limit: int | None = None,
        statement_timeout: str | int | None = None,
        idle_in_transaction_timeout: str | int | None = None,
    ) -> Call[TenantView]:
        """[setTenantLimits] A tier and/or single limits overriding it."""
        given = {
            "tier": tier,
            "connection_limit": connection_limit,
            "statement_timeout": statement_timeout,
            "idle_in_transaction_timeout": idle_in_transaction_timeout,
        }
        body = {name: value for name, value in given.items() if value is not None}
        path = f"{_tenant(tenant_id)}/limits"
        return Call("PUT", path, _as(TenantView), body=body, tenant_id=tenant_id)

    def tune_recall(self, tenant_id: str, *, target: float | None = None) -> Call[TenantView]:
        """[tuneTenantRecall] Measure the tenant's recall now (against ``target``, a new
        recall target, if given) and keep the ef_search / probes that meets it."""
        body = {"target": target} if target is not None else {}
        path = f"{_tenant(tenant_id)}/recall"
        return Call("POST", path, _as(TenantView), body=body, tenant_id=tenant_id)

    def set_embedder(
        self,
        tenant_id: str,
        embedder: str,
        *,
        fallbacks: Sequence[str] = (),
        dims: int | None = None,
    ) -> Call[TenantView]:
        """[setTenantEmbedder] ``provider:model`` or ``none``; ``dims`` only if they change
        (every vector is emptied)."""
        body: dict[str, Any] = {"embedder": embedder}
        if fallbacks:
            body["fallbacks"] = list(fallbacks)
        if dims is not None:
            body["dims"] = dims
        path = f"{_tenant(tenant_id)}/embedder"
        return Call("PUT", path, _as(TenantView), body=body, tenant_id=tenant_id)

    def create_key(self, tenant_id: str, name: str | None = None) -> Call[IssuedKeyView]:
        """[createKey] The answer's ``key`` is the secret: shown once, never again."""
        body = {"name": name} if name is not None else {}
        path = f"{_tenant(tenant_id)}/keys"
        return Call("POST", path, _as(IssuedKeyView), body=body, tenant_id=tenant_id)

    def list_keys(self, tenant_id: str, *, include_revoked: bool = False) -> Call[list[ApiKeyView]]:
        """[listKeys] Never their secrets."""
        params = {"include_revoked": "true"} if include_revoked else {}
        path = f"{_tenant(tenant_id)}/keys"
        return Call("GET", path, _as(list[ApiKeyView]), params=params, tenant_id=tenant_id)

    def revoke_key(self, tenant_id: str, key_id: str) -> Call[None]:
        """[revokeKey]"""
        path = f"{_tenant(tenant_id)}/keys/{_seg(key_id)}"
        return Call("DELETE", path, _none, tenant_id=tenant_id)

    def list_operations(
        self, *, tenant: str | None = None, limit: int = 100
    ) -> Call[list[OperationView]]:
        """[listOperations] The audit log, newest first."""
        params: dict[str, str | int | bool] = {"limit": limit}
        if tenant is not None:
            params["tenant"] = tenant
        return Call("GET", "/v1/operations", _as(list[OperationView]), params=params)

    def backup_tenant(self, tenant_id: str) -> Call[bytes]:
        """[backupTenant] The backup file's bytes (write them to a file; for large
        tenants prefer ``tenantctl tenants backup``, which streams to disk)."""
        path = f"{_tenant(tenant_id)}/backup"
        return Call("POST", path, _bytes, tenant_id=tenant_id, repeatable=True)

    def move_tenant(
        self, tenant_id: str, backend: str, *, server: str | None = None
    ) -> Call[MoveView]:
        """[moveTenant] Move the tenant to ``backend`` (on ``server``), verified; done
        when it answers (as long as a backup and restore of it take)."""
        body: dict[str, Any] = {"backend": backend}
        if server is not None:
            body["server"] = server
        return Call(
            "POST", f"{_tenant(tenant_id)}/move", _as(MoveView), body=body, tenant_id=tenant_id
        )

    def restore_tenant(
        self,
        backup: bytes,
        *,
        as_id: str | None = None,
        backend: str | None = None,
        server: str | None = None,
    ) -> Call[RestoreView]:
        """[restoreTenant] A tenant from a backup file's bytes, verified; ready when it
        answers."""
        params: dict[str, str | int | bool] = {
            k: v for k, v in (("as", as_id), ("backend", backend), ("server", server)) if v
        }
        return Call(
            "POST",
            "/v1/restores",
            _as(RestoreView),
            params=params,
            body=bytes(backup),
            tenant_id=as_id,
        )

    # -- data (a tenant key, or the admin token) -------------------------------------

    def upsert(
        self, tenant_id: str, request: UpsertRequest, *, run_async: bool = False
    ) -> Call[UpsertResponse | Job]:
        """[upsertDocuments] An UpsertResponse, or -- queued as an ingestion job (with
        ``run_async``, or many texts to embed) -- the Job."""
        params = {"async": "true"} if run_async else {}
        path = f"{_tenant(tenant_id)}/documents"
        return Call("PUT", path, _upserted, params=params, body=request, tenant_id=tenant_id)

    def get_job(self, tenant_id: str, job_id: str) -> Call[Job]:
        """[getJob]"""
        path = f"{_tenant(tenant_id)}/jobs/{_seg(job_id)}"
        return Call("GET", path, _as(Job), tenant_id=tenant_id)

    def list_jobs(self, tenant_id: str, *, limit: int = 50) -> Call[list[Job]]:
        """[listJobs] Newest first."""
        path = f"{_tenant(tenant_id)}/jobs"
        return Call("GET", path, _as(list[Job]), params={"limit": limit}, tenant_id=tenant_id)

    def get_document(
        self, tenant_id: str, document_id: str, *, include_embeddings: bool = False
    ) -> Call[Document]:
        """[getDocument] Any document id: it is percent-encoded into the path."""
        params = {"include_embeddings": "true"} if include_embeddings else {}
        path = f"{_tenant(tenant_id)}/documents/{_seg(document_id)}"
        return Call("GET", path, _as(Document), params=params, tenant_id=tenant_id)

    def delete_document(self, tenant_id: str, document_id: str) -> Call[None]:
        """[deleteDocument] DocumentNotFound if there is none."""
        path = f"{_tenant(tenant_id)}/documents/{_seg(document_id)}"
        return Call("DELETE", path, _none, tenant_id=tenant_id)

    def search(self, tenant_id: str, request: SearchRequest) -> Call[SearchResponse]:
        """[search] By vector, keyword or both (``SearchRequest``)."""
        path = f"{_tenant(tenant_id)}/search"
        return Call(
            "POST", path, _as(SearchResponse), body=request, tenant_id=tenant_id, repeatable=True
        )

    def list_document_ids(
        self, tenant_id: str, *, cursor: str | None = None, limit: int = 100
    ) -> Call[DocumentIds]:
        """[listDocumentIds] A page of ids; pass ``next_cursor`` back for the next."""
        params: dict[str, str | int | bool] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        path = f"{_tenant(tenant_id)}/ids"
        return Call("GET", path, _as(DocumentIds), params=params, tenant_id=tenant_id)

    def count_documents(
        self, tenant_id: str, filter: dict[str, Any] | None = None
    ) -> Call[DocumentCount]:
        """[countDocuments] All documents, or those ``filter`` matches (document metadata)."""
        path = f"{_tenant(tenant_id)}/count"
        body = {"filter": filter} if filter is not None else {}
        return Call(
            "POST", path, _as(DocumentCount), body=body, tenant_id=tenant_id, repeatable=True
        )

    def fetch_documents(
        self, tenant_id: str, ids: list[str], *, include_embeddings: bool = False
    ) -> Call[FetchResponse]:
        """[fetchDocuments] Many documents by id; ``missing`` lists those not there."""
        path = f"{_tenant(tenant_id)}/fetch"
        body = {"ids": ids, "include_embeddings": include_embeddings}
        return Call(
            "POST", path, _as(FetchResponse), body=body, tenant_id=tenant_id, repeatable=True
        )

    def delete_documents(
        self,
        tenant_id: str,
        *,
        ids: list[str] | None = None,
        filter: dict[str, Any] | None = None,
    ) -> Call[DeleteResponse]:
        """[deleteDocuments] By ``ids`` or by ``filter`` (exactly one); all or nothing."""
        body: dict[str, Any] = {}
        if ids is not None:
            body["ids"] = ids
        if filter is not None:
            body["filter"] = filter
        path = f"{_tenant(tenant_id)}/delete"
        return Call(
            "POST", path, _as(DeleteResponse), body=body, tenant_id=tenant_id, repeatable=True
        )

    def upsert_chunks(
        self, tenant_id: str, chunks: Sequence[ChunkWrite]
    ) -> Call[ChunkUpsertResponse]:
        """[upsertChunks] Each chunk replaces the chunk of its id or joins its document;
        the document's other chunks stay. Safe to resend: ids make it converge."""
        body = {"chunks": list(chunks)}
        path = f"{_tenant(tenant_id)}/chunks"
        return Call("PUT", path, _as(ChunkUpsertResponse), body=body, tenant_id=tenant_id)

    def fetch_chunks(
        self, tenant_id: str, ids: list[str], *, include_embeddings: bool = False
    ) -> Call[ChunkFetchResponse]:
        """[fetchChunks] Chunks by id; ``missing`` lists those not there."""
        body = {"ids": ids, "include_embeddings": include_embeddings}
        path = f"{_tenant(tenant_id)}/chunks/fetch"
        return Call(
            "POST", path, _as(ChunkFetchResponse), body=body, tenant_id=tenant_id, repeatable=True
        )

    def delete_chunks(self, tenant_id: str, ids: list[str]) -> Call[DeleteResponse]:
        """[deleteChunks] Chunks by id; their documents and other chunks stay."""
        path = f"{_tenant(tenant_id)}/chunks/delete"
        return Call(
            "POST",
            path,
            _as(DeleteResponse),
            body={"ids": ids},
            tenant_id=tenant_id,
            repeatable=True,
        )

    def stats(self, tenant_id: str) -> Call[TenantStats]:
        """[tenantStats]"""
        return Call("GET", f"{_tenant(tenant_id)}/stats", _as(TenantStats), tenant_id=tenant_id)

    def whoami(self) -> Call[Identity]:
        """[whoami] The tenant this client's key opens (``admin`` for the admin token)."""
        return Call("GET", "/v1/whoami", _as(Identity))

    # -- the process ---------------------------------------------------------------

    def healthz(self) -> Call[dict[str, Any]]:
        """[healthz] The process is up."""
        return Call("GET", "/healthz", _as(dict[str, Any]))

    def readyz(self) -> Call[dict[str, Any]]:
        """[readyz] The catalog answers (``ready``), or tenants verified before still
        serve while it does not (``degraded``)."""
        return Call("GET", "/readyz", _as(dict[str, Any]))

    def metrics(self) -> Call[str]:
        """[metrics] Prometheus text."""
        return Call("GET", "/metrics", _text)


def _upserted(data: Any) -> UpsertResponse | Job:
    if isinstance(data, dict) and "documents" in data:
        return msgspec.convert(data, UpsertResponse)
    return msgspec.convert(data, Job)


calls = _Calls()

# operationId -> the call that sends it: how a test holds the clients to the API.
OPERATIONS: dict[str, str] = {
    "createTenant": "create_tenant",
    "listTenants": "list_tenants",
    "getTenant": "get_tenant",
    "deleteTenant": "delete_tenant",
    "suspendTenant": "suspend_tenant",
    "resumeTenant": "resume_tenant",
    "backupTenant": "backup_tenant",
    "restoreTenant": "restore_tenant",
    "moveTenant": "move_tenant",
    "setTenantLimits": "set_limits",
    "tuneTenantRecall": "tune_recall",
    "setTenantEmbedder": "set_embedder",
    "createKey": "create_key",
    "listKeys": "list_keys",
    "revokeKey": "revoke_key",
    "listOperations": "list_operations",
    "upsertDocuments": "upsert",
    "getJob": "get_job",
    "listJobs": "list_jobs",
    "getDocument": "get_document",
    "deleteDocument": "delete_document",
    "search": "search",
    "listDocumentIds": "list_document_ids",
    "countDocuments": "count_documents",
    "fetchDocuments": "fetch_documents",
    "deleteDocuments": "delete_documents",
    "upsertChunks": "upsert_chunks",
    "fetchChunks": "fetch_chunks",
    "deleteChunks": "delete_chunks",
    "tenantStats": "stats",
    "whoami": "whoami",
    "healthz": "healthz",
    "readyz": "readyz",
    "metrics": "metrics",
}
