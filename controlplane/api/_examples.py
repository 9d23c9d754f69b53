"""Examples shown in the OpenAPI document, one set per operation."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from msgspec import Struct

__all__ = ["ADMIN", "DATA", "EMBEDS", "Problem", "example", "ok", "ok_admin", "problems"]

_VECTOR = [0.12, -0.03, 0.88]

TENANT: dict[str, Any] = {
    "id": "acme",
    "state": "ready",
    "backend": "postgres",
    "server": "local",
    "placement": {"database": "acme", "role": "acme"},
    "dims": 3,
    "metric": "cosine",
    "index": {"kind": "hnsw", "m": 16, "ef_construction": 64},
    "text_config": "english",
    "schema_version": 1,
    "labels": {"plan": "pro"},
    "created_at": "2026-11-20T09:30:00+00:00",
    "updated_at": "2026-11-20T09:30:00+00:00",
    "expires_at": None,
    "deleted_at": None,
    "error": None,
}
KEY = {
    "id": "k3x9q2m7w1ab",
    "tenant": "acme",
    "name": "search-backend",
    "created_by": "api:admin",
    "created_at": "2026-11-20T09:31:00+00:00",
    "revoked_at": None,
}
OPERATION = {
    "id": 42,
    "action": "create",
    "actor": "api:admin",
    "tenant": "acme",
    "outcome": "succeeded",
    "started_at": "2026-11-20T09:30:00+00:00",
    "ended_at": "2026-11-20T09:30:00+00:00",
    "error": None,
    "details": {"schema_version": 1},
}
UPSERT = {
    "documents": [
        {
            "id": "doc-1",
            "title": "Refund policy",
            "metadata": {"lang": "en"},
            "chunks": [
                {"content": "Refunds are issued within 14 days.", "embedding": _VECTOR},
            ],
        }
    ]
}
DOCUMENT = {
    "id": "doc-1",
    "title": "Refund policy",
    "source": None,
    "metadata": {"lang": "en"},
    "created_at": "2026-11-20T09:32:00+00:00",
    "updated_at": "2026-11-20T09:32:00+00:00",
    "chunks": [
        {
            "id": "doc-1#0",
            "ordinal": 0,
            "content": "Refunds are issued within 14 days.",
            "metadata": {"lang": "en"},
        }
    ],
}
UPSERT_TEXT = {
    "documents": [
        {
            "id": "refunds.md",
            "text": "# Refunds\n\nRefunds are issued within 14 days of a return.",
            "metadata": {"lang": "en"},
        }
    ]
}
JOB = {
    "id": "7f7a3c4e-2d51-4b0e-9a57-0b3c2f9f1e2a",
    "tenant": "acme",
    "kind": "documents",
    "state": "running",
    "total": 5000,
    "processed": 1216,
    "created": 1200,
    "updated": 10,
    "unchanged": 5,
    "failed": 1,
    "errors": [{"document": "scan-17.pdf", "error": "openai:text-embedding-3-small refused..."}],
    "error": None,
    "created_at": "2026-11-20T09:40:00+00:00",
    "started_at": "2026-11-20T09:40:01+00:00",
    "finished_at": None,
}
SEARCH = {"vector": _VECTOR, "k": 10, "filter": {"lang": "en"}, "min_similarity": 0.5}
SEARCH_TEXT = {"text": "how long do refunds take?", "k": 5, "hybrid": True}
SEARCH_RESULTS = {
    "results": [
        {
            "document_id": "doc-1",
            "chunk": 0,
            "chunk_id": "doc-1#0",
            "score": 0.93,
            "content": "Refunds are issued within 14 days.",
            "metadata": {"lang": "en"},
        }
    ]
}
STATS = {
    "tenant": "acme",
    "documents": 1,
    "chunks": 1,
    "dims": 3,
    "metric": "cosine",
    "index": "hnsw",
    "schema_version": 1,
    "index_bytes": 16384,
    "table_bytes": 90112,
    "database_bytes": 7823491,
}


CHUNK_WRITES = {
    "chunks": [
        {
            "id": "node-7f3a",
            "document_id": "doc-1",
            "content": "Refunds of digital goods take 3 days.",
            "embedding": _VECTOR,
            "metadata": {"lang": "en"},
        }
    ]
}
STORED_CHUNK = {
    "id": "node-7f3a",
    "document_id": "doc-1",
    "ordinal": 1,
    "content": "Refunds of digital goods take 3 days.",
    "metadata": {"lang": "en"},
}


def example(value: Any, summary: str = "example") -> list[Example]:
    return [Example(summary=summary, value=value)]


class Problem(Struct):
    """An RFC 9457 problem: every error response of the API."""

    type: str
    title: str
    status: int
    detail: str
    code: str


_PROBLEMS: dict[int | tuple[int, str], tuple[str, str, str]] = {
    400: (
        "The request is malformed or out of range.",
        "invalid_request",
        "k: at most 1000 hits per search here (TENANTVEC_MAX_K); ask for fewer, or page by "
        "narrowing the filter",
    ),
    401: (
        "No, malformed or revoked credentials.",
        "authentication_failed",
        "invalid or revoked API key",
    ),
    403: (
        "A tenant key on an admin endpoint.",
        "permission_denied",
        "this endpoint needs the admin token, not a tenant key",
    ),
    404: (
        "No such tenant, document or key -- or not yours.",
        "tenant_not_found",
        "tenant 'acme' not found",
    ),
    408: (
        "The request's headers took over 10 s, or its body paused longer than "
        "TENANTVEC_REQUEST_TIMEOUT_SECONDS or came slower than 64 kB/s past it; the "
        "connection is closed.",
        "request_timeout",
        "the request did not arrive in time; send it whole, faster",
    ),
    409: (
        "The request clashes with the current state.",
        "tenant_exists",
        "tenant 'acme' already exists (state ready)",
    ),
    413: (
        "The body is larger than TENANTVEC_MAX_BODY_BYTES.",
        "request_entity_too_large",
        "request body is larger than TENANTVEC_MAX_BODY_BYTES allows; send smaller batches",
    ),
    502: (
        "The embedding provider refused the request or answered with unusable vectors.",
        "embedding_failed",
        "openai:text-embedding-3-small returned 768 dimensions, the tenant expects 1536; ...",
    ),
    503: (
        "Over the connection budget, or the tenant's database is unavailable; see Retry-After.",
        "over_capacity",
        "all 100 connections to server 'local' are in use and none freed up within 5 s; "
        "retry shortly",
    ),
}


# A 409 of an operation that embeds text: the tenant has none (it stores its callers'
# vectors). The key of its entry in _PROBLEMS; the status is the key's first item.
NO_EMBEDDER = (409, "tenant_has_no_embedder")
_PROBLEMS[NO_EMBEDDER] = (
    "Text to embed for a tenant without an embedder (it stores the vectors its callers "
    "send): send vectors, or give it the model that made them (PUT "
    "/v1/tenants/{tenant_id}/embedder).",
    "tenant_has_no_embedder",
    "tenant 'acme' has no embedder, so a text query cannot be embedded: send vectors (an "
    "'embedding' with each chunk, a 'vector' to search), or give it the model that made its "
    "vectors: tenantctl tenants set-embedder acme PROVIDER:MODEL (PUT "
    "/v1/tenants/acme/embedder)",
)

# Every authenticated operation may answer 400, 401, 408 and 503 (the catalog or the
# tenant's database unavailable); those with a body also 413.
DATA = (400, 401, 404, 408, 503)
DATA_BODY = (*DATA, 413)
# Operations that may call the embedding provider (502), or find no embedder (409).
EMBEDS: tuple[int | tuple[int, str], ...] = (*DATA_BODY, NO_EMBEDDER, 502)
ADMIN = (400, 401, 403, 404, 408, 409, 502, 503)
ADMIN_BODY = (*ADMIN, 413)


def problems(codes: tuple[int | tuple[int, str], ...] = DATA) -> dict[int, ResponseSpec]:
    """The error responses of an operation, each a problem+json with an example (a
    ``(status, variant)`` key picks another example of that status)."""
    responses = {}
    for key in codes:
        code = key if isinstance(key, int) else key[0]
        doc, name, detail = _PROBLEMS[key]
        body = {
            "type": "about:blank",
            "title": HTTPStatus(code).phrase,
            "status": code,
            "detail": detail,
            "code": name,
        }
        responses[code] = ResponseSpec(
            data_container=Problem,
            description=doc,
            media_type="application/problem+json",
            examples=example(body),
            generate_examples=False,
        )
    return responses


def ok(
    container: Any,
    value: Any,
    description: str,
    *,
    status: int = 200,
    errors: tuple[int | tuple[int, str], ...] = DATA,
) -> dict[int, ResponseSpec]:
    """A success response documented with its type and an example, plus error responses."""
    return {
        status: ResponseSpec(
            data_container=container,
            description=description,
            examples=example(value),
            generate_examples=False,
        ),
        **problems(errors),
    }


def ok_admin(
    container: Any, value: Any, description: str, *, status: int = 200, body: bool = False
) -> dict[int, ResponseSpec]:
    return ok(container, value, description, status=status, errors=ADMIN_BODY if body else ADMIN)
