"""Ingestion jobs: large batches written in the background, resumable after a crash.

A job lives in the tenant's own database (``ingestion_jobs``: its documents, progress
and errors -- deleted with the tenant) and is scheduled through the catalog's queue
(``job_queue``), where API processes claim it with a lease. The runner writes the
documents in small batches; each batch and the job's progress commit in one
transaction, so a holder that dies mid-job leaves the job exactly at the last batch it
finished, and the next holder (after the lease runs out) goes on from there.

Per-document failures (a text the provider refuses) are recorded on the job and the
rest goes on; a job stops as ``failed`` when it cannot go on at all (the provider stays
down past its retries, the tenant is gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from psycopg.types.json import Jsonb

from controlplane.errors import (
    BackendUnavailable,
    ChunkIdTaken,
    DocumentRejected,
    EmbedderUnavailable,
    EmbeddingFailed,
    InvalidRequest,
    JobNotFound,
    OverCapacity,
    TenantHasNoEmbedder,
    TenantNotFound,
    TenantvecError,
)
from controlplane.inputs import printable
from controlplane.retrieval.documents import (
    PreparedDocument,
    validate_document,
    validate_upsert,
    write_documents,
)
from controlplane.retrieval.ingest import prepare_isolating_failures
from controlplane.retrieval.models import DocumentIn, Job, JobError, UpsertRequest
from controlplane.routing import Route, TenantRouter

__all__ = ["JobRunner", "get_job", "list_jobs", "submit_job"]

logger = logging.getLogger(__name__)

BATCH_DOCUMENTS = 16
_JOB_ID_RE = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}")  # whole string
MAX_RECORDED_ERRORS = 1_000
_MAX_ATTEMPTS = 5  # claims of one job before it is failed (each crash of a holder is one)
_IDLE_POLL_SECONDS = 2.0

_COLUMNS = (
    "id, kind, state, total, processed, created, updated, unchanged, failed, errors, error, "
    "created_at, started_at, finished_at"
)


async def submit_job(
    router: TenantRouter,
    tenant_id: str,
    request: UpsertRequest,
    *,
    incarnation: str | None = None,
) -> Job:
    """Queue ``request`` as an ingestion job; it is validated first, like an upsert."""
    route = await router.route(tenant_id, incarnation=incarnation)
    validate_upsert(route, request)
    payload = msgspec.to_builtins(request.documents)
    async with router.connection(route) as tc:
        cur = await tc.conn.execute(
            f"INSERT INTO ingestion_jobs (kind, total, payload) VALUES ('documents', %s, %s) "
            f"RETURNING {_COLUMNS}",
            (len(request.documents), Jsonb(payload)),
        )
        row = await cur.fetchone()
    assert row is not None
    job = _job(tenant_id, row)
    try:
        await router.plane.catalog.jobs.enqueue(job.id, route.uid, tenant_id)
    except TenantvecError:
        await _finish(router, route, job.id, "failed", "could not be queued: catalog down")
        raise
    router.plane.jobs_waiting.set()
    return job


async def get_job(
    router: TenantRouter, tenant_id: str, job_id: str, *, incarnation: str | None = None
) -> Job:
    if _JOB_ID_RE.fullmatch(job_id) is None:
        raise JobNotFound(tenant_id, printable(job_id, 40))
    route = await router.route(tenant_id, incarnation=incarnation)
    async with router.connection(route) as tc:
        cur = await tc.conn.execute(
            f"SELECT {_COLUMNS} FROM ingestion_jobs WHERE id = %s", (job_id,)
        )
        row = await cur.fetchone()
    if row is None:
        raise JobNotFound(tenant_id, job_id)
    return _job(tenant_id, row)


async def list_jobs(
    router: TenantRouter, tenant_id: str, *, limit: int = 50, incarnation: str | None = None
) -> list[Job]:
    route = await router.route(tenant_id, incarnation=incarnation)
    async with router.connection(route) as tc:
        cur = await tc.conn.execute(
            f"SELECT {_COLUMNS} FROM ingestion_jobs ORDER BY created_at DESC LIMIT %s", (limit,)
        )
        return [_job(tenant_id, row) for row in await cur.fetchall()]


def _job(tenant_id: str, row: Sequence[Any]) -> Job:
    return Job(
        id=str(row[0]),
        tenant=tenant_id,
        kind=row[1],
        state=row[2],
        total=row[3],
        processed=row[4],
        created=row[5],
        updated=row[6],
        unchanged=row[7],
        failed=row[8],
        errors=[JobError(document=e.get("document"), error=e["error"]) for e in row[9]],
        error=row[10],
        created_at=row[11].isoformat(),
        started_at=row[12].isoformat() if row[12] else None,
        finished_at=row[13].isoformat() if row[13] else None,
    )


async def _finish(
    router: TenantRouter, route: Route, job_id: str, state: str, error: str | None = None
) -> None:
    async with router.connection(route) as tc:
        await tc.conn.execute(
            "UPDATE ingestion_jobs SET state = %s, error = %s, finished_at = now(), "
            "updated_at = now() WHERE id = %s",
            (state, error, job_id),
        )


class JobRunner:
    """Claims queued jobs and runs them, a few at a time, until stopped."""

    def __init__(self, router: TenantRouter, *, lease_seconds: float, concurrency: int = 2):
        self._router = router
        self._catalog = router.plane.catalog
        self._wake = router.plane.jobs_waiting
        self._lease = lease_seconds
        self._concurrency = concurrency
        self._running: set[asyncio.Task[None]] = set()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    async def run(self) -> None:
        """Run until cancelled; a held job's lease runs out for the next holder."""
        running = self._running
        try:
            while True:
                while len(running) < self._concurrency:
                    try:
                        queued = await self._catalog.jobs.claim(self.owner, self._lease)
                    except BackendUnavailable as exc:
                        logger.warning("cannot claim ingestion jobs: %s", exc)
                        queued = None
                    if queued is None:
                        break
                    task = asyncio.create_task(
                        self._hold(queued.id, queued.tenant_id, queued.tenant_uid, queued.attempts)
                    )
                    running.add(task)
                    task.add_done_callback(self._done)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), _IDLE_POLL_SECONDS)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()  # room for the next job

    async def _hold(self, job_id: str, tenant_id: str, tenant_uid: str, attempts: int) -> None:
        """Run one job while renewing its lease; stop if the lease is lost."""
        work = asyncio.create_task(self._run_job(job_id, tenant_id, tenant_uid, attempts))
        try:
            while not work.done():
                done, _ = await asyncio.wait({work}, timeout=self._lease / 3)
                if done:
                    break
                if not await self._catalog.jobs.renew(job_id, self.owner, self._lease):
                    logger.warning("job %s: lease lost; leaving it to its new holder", job_id)
                    work.cancel()
            await work
        except asyncio.CancelledError:  # the process is stopping: hand the job back
            work.cancel()
            with contextlib.suppress(TenantvecError):
                await self._catalog.jobs.release(job_id, self.owner)
            raise
        except Exception:
            logger.exception("job %s of tenant %s crashed", job_id, tenant_id)
            target = _Target(tenant_id, tenant_uid)
            await self._end(job_id, target, "failed", "internal error; see the server log")

    async def _run_job(self, job_id: str, tenant_id: str, tenant_uid: str, attempts: int) -> None:
        try:
            # Only the incarnation the job was queued for: one deleted and created
            # again took its jobs with it.
            route = await self._router.route(tenant_id, incarnation=tenant_uid)
        except TenantNotFound:
            await self._catalog.jobs.finish(job_id)  # the tenant, and its jobs, are gone
            return
        if attempts > _MAX_ATTEMPTS:
            await self._end(job_id, route, "failed", f"gave up after {_MAX_ATTEMPTS} attempts")
            return
        try:
            await self._resume(route, job_id)
        except (EmbedderUnavailable, EmbeddingFailed, TenantHasNoEmbedder) as exc:
            # TenantHasNoEmbedder: its embedder was removed after the job was queued.
            await self._end(job_id, route, "failed", str(exc))
        except (TenantNotFound, BackendUnavailable, OverCapacity) as exc:
            # Transient: the lease runs out and this or another process tries again.
            logger.warning("job %s of tenant %s paused: %s", job_id, tenant_id, exc)

    async def _resume(self, route: Route, job_id: str) -> None:
        tenant_id = route.tenant_id
        async with self._router.connection(route) as tc:
            cur = await tc.conn.execute(
                "UPDATE ingestion_jobs SET state = 'running', "
                "started_at = coalesce(started_at, now()), updated_at = now() "
                "WHERE id = %s AND state IN ('pending', 'running') "
                "RETURNING processed, payload",
                (job_id,),
            )
            row = await cur.fetchone()
        if row is None:  # finished already (a holder died after finishing it)
            await self._catalog.jobs.finish(job_id)
            return
        processed, payload = int(row[0]), row[1]
        docs = msgspec.convert(payload, list[DocumentIn])
        if processed:
            logger.info("job %s of tenant %s resumes at document %d", job_id, tenant_id, processed)
        for start in range(processed, len(docs), BATCH_DOCUMENTS):
            await self._batch(route, job_id, docs[start : start + BATCH_DOCUMENTS])
        await self._end(job_id, route, "completed")

    async def _batch(self, route: Route, job_id: str, docs: list[DocumentIn]) -> None:
        """Write one batch and the job's progress in one transaction.

        A document the database refuses (a chunk too large to index, say) is recorded
        with its error and the batch is written again without it: the good documents
        go in, each bad one is reported.
        """
        valid: list[DocumentIn] = []
        errors: list[dict[str, str | None]] = []
        for doc in docs:
            try:
                validate_document(route, doc, f"document {doc.id!r}")
            except InvalidRequest as exc:
                errors.append({"document": doc.id, "error": str(exc)})
            else:
                valid.append(doc)
        prepared, failures = await prepare_isolating_failures(self._router, route, valid)
        errors += [{"document": doc_id, "error": error} for doc_id, error in failures]
        while True:
            try:
                await self._write_batch(route, job_id, len(docs), prepared, errors)
                return
            except (DocumentRejected, ChunkIdTaken) as exc:
                if exc.document_id is None:
                    raise
                errors.append({"document": exc.document_id, "error": str(exc)})
                prepared = [p for p in prepared if p.doc.id != exc.document_id]

    async def _write_batch(
        self,
        route: Route,
        job_id: str,
        processed: int,
        prepared: list[PreparedDocument],
        errors: list[dict[str, str | None]],
    ) -> None:
        async with self._router.connection(route) as tc, tc.conn.transaction():
            results = await write_documents(tc.conn, route, prepared)
            counts = {"created": 0, "updated": 0, "unchanged": 0}
            for result in results.values():
                counts[result.status] += 1
            await tc.conn.execute(
                "UPDATE ingestion_jobs SET processed = processed + %(n)s, "
                "created = created + %(created)s, updated = updated + %(updated)s, "
                "unchanged = unchanged + %(unchanged)s, failed = failed + %(failed)s, "
                "errors = CASE WHEN jsonb_array_length(errors) < %(cap)s "
                "THEN errors || %(errors)s ELSE errors END, updated_at = now() "
                "WHERE id = %(id)s",
                {
                    "n": processed,
                    **counts,
                    "failed": len(errors),
                    "errors": Jsonb(errors),
                    "cap": MAX_RECORDED_ERRORS,
                    "id": job_id,
                },
            )

    async def _end(
        self, job_id: str, target: Route | _Target, state: str, error: str | None = None
    ) -> None:
        try:
            route = target if isinstance(target, Route) else await target.route(self._router)
            await _finish(self._router, route, job_id, state, error)
        finally:
            await self._catalog.jobs.finish(job_id)
        logger.info(
            "job %s of tenant %s %s%s",
            job_id,
            target.tenant_id,
            state,
            f": {error}" if error else "",
        )


@dataclass(frozen=True)
class _Target:
    """The tenant incarnation a job belongs to, when no route was read yet."""

    tenant_id: str
    uid: str

    async def route(self, router: TenantRouter) -> Route:
        return await router.route(self.tenant_id, incarnation=self.uid)
