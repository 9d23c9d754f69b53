"""Embedding providers over HTTP: the OpenAI wire format and Voyage AI.

Both are JSON over ``POST {base_url}/embeddings`` with a bearer key. Texts are sent in
batches no larger than the provider takes (by count and by estimated tokens), a few
batches at a time. 429, 5xx, timeouts and connection errors are retried with tenacity
-- waiting what ``Retry-After`` says when the provider says it, else exponential backoff
with jitter -- for at most ``TENANTVEC_EMBED_RETRY_SECONDS``. Any other answer fails at
once with the provider's own message, with the API key scrubbed from it.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from controlplane.embedding._base import Embeddings, Purpose, check_embeddings
from controlplane.errors import EmbedderUnavailable, EmbeddingFailed
from controlplane.model.embedder import EmbedderSpec
from controlplane.tokens import count_tokens

__all__ = ["HttpEmbedder", "OpenAIEmbedder", "ProviderEndpoint", "VoyageEmbedder"]

logger = logging.getLogger(__name__)

# Key-shaped strings a provider may echo back in an error (partly masked or not).
_KEYLIKE_RE = re.compile(r"\b(?:sk|pa|tvk)[-_][A-Za-z0-9_*\-]{6,}")
_MAX_MESSAGE = 300
_BACKOFF = wait_exponential_jitter(multiplier=0.5, max=8.0, jitter=0.5)


@dataclass(frozen=True)
class ProviderEndpoint:
    """Where a provider answers and the key it takes (never logged, never in errors)."""

    base_url: str
    api_key: str | None
    timeout: float
    retry_seconds: float
    concurrency: int


class _Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the provider's hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class HttpEmbedder:
    max_batch: int = 1
    max_batch_tokens: int = 100_000

    def __init__(
        self, spec: EmbedderSpec, endpoint: ProviderEndpoint, client: httpx.AsyncClient
    ) -> None:
        self.spec = spec
        self.identity = spec.identity
        self._endpoint = endpoint
        self._client = client
        self._url = endpoint.base_url.rstrip("/") + "/embeddings"
        self._slots = asyncio.Semaphore(endpoint.concurrency)

    def body(self, texts: list[str], dims: int, purpose: Purpose) -> dict[str, Any]:
        raise NotImplementedError

    async def embed(self, texts: Sequence[str], *, dims: int, purpose: Purpose) -> Embeddings:
        batches = list(_batches(texts, self.max_batch, self.max_batch_tokens))
        answers = await asyncio.gather(*(self._embed_batch(b, dims, purpose) for b in batches))
        vectors = [v for answer in answers for v in answer]
        check_embeddings(vectors, count=len(texts), dims=dims, identity=self.identity)
        return Embeddings(vectors, self.identity)

    async def _embed_batch(
        self, texts: list[str], dims: int, purpose: Purpose
    ) -> list[list[float]]:
        body = self.body(texts, dims, purpose)
        async with self._slots:
            payload = await self._post_with_retries(body)
        return _vectors(payload, len(texts), self.identity)

    async def _post_with_retries(self, body: dict[str, Any]) -> Any:
        started = time.monotonic()
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_delay(self._endpoint.retry_seconds),
            wait=self._wait,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._post(body)
        except _Transient as exc:
            waited = time.monotonic() - started
            raise EmbedderUnavailable(
                f"{self.identity} kept failing for {waited:.0f} s: {exc}",
                retry_after=exc.retry_after or 5,
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "retry_after", None)
        if hint is not None:
            return float(min(hint, self._endpoint.retry_seconds))
        return float(_BACKOFF(state))

    async def _post(self, body: dict[str, Any]) -> Any:
        headers = {"Accept": "application/json"}
        if self._endpoint.api_key:
            headers["Authorization"] = f"Bearer {self._endpoint.api_key}"
        try:
            response = await self._client.post(
                self._url, json=body, headers=headers, timeout=self._endpoint.timeout
            )
        except httpx.TimeoutException:
            raise _Transient(f"no answer within {self._endpoint.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise _Transient(f"cannot reach the provider ({type(exc).__name__})") from None
        if response.status_code == 429 or response.status_code >= 500:
            logger.info("%s answered %d; retrying", self.identity, response.status_code)
            raise _Transient(
                f"HTTP {response.status_code}: {self._message(response)}",
                _retry_after(response.headers.get("retry-after")),
            )
        if response.status_code != 200:
            raise EmbeddingFailed(
                f"{self.identity} refused the request (HTTP {response.status_code}): "
                f"{self._message(response)}"
            )
        try:
            return response.json()
        except ValueError:
            raise EmbeddingFailed(f"{self.identity} answered with invalid JSON") from None

    def _message(self, response: httpx.Response) -> str:
        """The provider's error message, with anything key-like scrubbed out."""
        try:
            body = response.json()
        except ValueError:
            text = response.text
        else:
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict):
                text = str(error.get("message", error))
            elif isinstance(body, dict) and "detail" in body:
                text = str(body["detail"])
            else:
                text = str(error or body)
        key = self._endpoint.api_key
        if key:
            text = text.replace(key, "***")
        text = _KEYLIKE_RE.sub("***", text)
        text = " ".join(text.split())
        return text[:_MAX_MESSAGE] or response.reason_phrase


class OpenAIEmbedder(HttpEmbedder):
    """The OpenAI embeddings API, and every server speaking its wire format."""

    max_batch = 2048  # inputs per request
    max_batch_tokens = 250_000  # OpenAI takes 300k per request; our count is an estimate

    def body(self, texts: list[str], dims: int, purpose: Purpose) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.spec.model,
            "input": texts,
            "encoding_format": "float",
        }
        # The text-embedding-3 models shorten their vectors on request; older models and
        # most self-hosted servers refuse the parameter.
        if "text-embedding-3" in self.spec.model:
            body["dimensions"] = dims
        return body


class VoyageEmbedder(HttpEmbedder):
    max_batch = 1000
    max_batch_tokens = 100_000
    _FLEXIBLE = re.compile(r"^voyage-(3-large|3\.5|code-3|4)")

    def body(self, texts: list[str], dims: int, purpose: Purpose) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.spec.model,
            "input": texts,
            "input_type": purpose.value,
        }
        if self._FLEXIBLE.match(self.spec.model):
            body["output_dimension"] = dims
        return body


def _batches(texts: Sequence[str], max_count: int, max_tokens: int) -> Iterator[list[str]]:
    batch: list[str] = []
    tokens = 0
    for text in texts:
        cost = count_tokens(text)
        if batch and (len(batch) >= max_count or tokens + cost > max_tokens):
            yield batch
            batch, tokens = [], 0
        batch.append(text)
        tokens += cost
    if batch:
        yield batch


def _vectors(payload: Any, count: int, identity: str) -> list[list[float]]:
    """``data[].embedding`` ordered by ``data[].index``, as both wire formats answer."""
    try:
        items = sorted(payload["data"], key=lambda item: item["index"])
        vectors = [item["embedding"] for item in items]
    except (KeyError, TypeError):
        raise EmbeddingFailed(f"{identity} answered without data[].embedding") from None
    if any(not isinstance(v, list) for v in vectors):
        raise EmbeddingFailed(f"{identity} answered with embeddings that are not lists")
    if [item["index"] for item in items] != list(range(len(items))):
        raise EmbeddingFailed(f"{identity} answered with gaps in data[].index")
    try:
        return [[float(x) for x in v] for v in vectors]
    except (TypeError, ValueError):
        raise EmbeddingFailed(f"{identity} answered with non-numeric embeddings") from None


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds or an HTTP date (RFC 9110); None when absent or garbled."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
