"""One tenant through the API, for the framework stores: a sync client, an async
client per event loop, and upserts that wait for the ingestion job they may become."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

from controlplane.client import AsyncClient, Client
from controlplane.errors import DocumentRejected, EmbeddingFailed, InvalidRequest
from controlplane.retrieval.models import MAX_BATCH_DOCUMENTS, Job, UpsertRequest, UpsertResponse

__all__ = ["TenantSession", "in_batches"]

T = TypeVar("T")

# How often a waiting upsert asks for its job, and for how long at most.
_JOB_POLL_SECONDS = 0.2
DEFAULT_JOB_TIMEOUT = 600.0


class TenantSession:
    """The tenant a key opens, with both clients. ``timeout`` bounds each request;
    ``retry_seconds`` the retries of a 503 (the client's own)."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 30.0,
        retry_seconds: float = 10.0,
        job_timeout: float = DEFAULT_JOB_TIMEOUT,
    ) -> None:
        self.url = url
        self._key = key
        self._timeout = timeout
        self._retry_seconds = retry_seconds
        self.job_timeout = job_timeout
        self.client = Client(url, key, timeout=timeout, retry_seconds=retry_seconds)
        identity = self.client.whoami()
        if identity.tenant is None:
            self.client.close()
            raise InvalidRequest(
                "a store opens one tenant: give it a tenant key ('tenantctl keys create'), "
                "not the admin token"
            )
        self.tenant: str = identity.tenant
        self._async: AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:  # never the key
        return f"TenantSession(url={self.url!r}, tenant={self.tenant!r})"

    def _new_async(self) -> AsyncClient:
        return AsyncClient(
            self.url, self._key, timeout=self._timeout, retry_seconds=self._retry_seconds
        )

    @contextlib.asynccontextmanager
    async def aclient(self) -> AsyncIterator[AsyncClient]:
        """An async client for one call: the one ``async with store:`` holds open (on
        its event loop), or else one of the call's own, closed when the call ends -- an
        httpx pool belongs to one event loop, and a store may outlive its loop."""
        if self._async is not None and self._loop is asyncio.get_running_loop():
            yield self._async
            return
        async with self._new_async() as client:
            yield client

    async def open_async(self) -> None:
        """Hold one async client (and its connections) until :meth:`aclose`."""
        await self.aclose()
        self._async = self._new_async()
        self._loop = asyncio.get_running_loop()

    def close(self) -> None:
        self.client.close()

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.close()
        self._async = None

    def upsert(self, request: UpsertRequest) -> None:
        """Write the batch; if the API queued it as a job, wait for the job to end."""
        answer = self.client.upsert(self.tenant, request)
        deadline = time.monotonic() + self.job_timeout
        while isinstance(answer, Job) and not _finished(answer, deadline):
            time.sleep(_JOB_POLL_SECONDS)
            answer = self.client.get_job(self.tenant, answer.id)

    async def aupsert(self, request: UpsertRequest) -> None:
        async with self.aclient() as client:
            answer: UpsertResponse | Job = await client.upsert(self.tenant, request)
            deadline = time.monotonic() + self.job_timeout
            while isinstance(answer, Job) and not _finished(answer, deadline):
                await asyncio.sleep(_JOB_POLL_SECONDS)
                answer = await client.get_job(self.tenant, answer.id)


def _finished(job: Job, deadline: float) -> bool:
    """True once the job ended well; raises if it ended badly or takes too long."""
    if job.state == "completed" and not job.failed:
        return True
    if job.state == "completed":
        first = job.errors[0] if job.errors else None
        raise DocumentRejected(
            first.document if first else None,
            f"ingestion job {job.id}: {job.failed} documents were not written"
            + (f" (first: {first.document!r}: {first.error})" if first else ""),
        )
    if job.state == "failed":
        raise EmbeddingFailed(f"ingestion job {job.id} stopped: {job.error or 'no reason given'}")
    if time.monotonic() > deadline:
        raise TimeoutError(
            f"ingestion job {job.id} is still {job.state}; it goes on (GET its job to follow it)"
        )
    return False


def in_batches(items: Sequence[T], size: int = MAX_BATCH_DOCUMENTS) -> list[list[T]]:
    """``items`` in requests of at most ``size`` (the API's batch limit)."""
    return [list(items[start : start + size]) for start in range(0, len(items), size)]
