"""A Python client for the tenantvec HTTP API, sync and async (httpx), typed.

``Client`` and ``AsyncClient`` cover every API endpoint (their methods are the calls of
``calls``, one definition each), raise the library's own errors -- ``TenantNotFound``,
``TenantExists``, ``OverCapacity`` with ``retry_after``... -- and send a request again
after a 503's ``Retry-After`` for up to ``retry_seconds``. docs/client.md shows them.
"""

from controlplane.client._calls import Call, calls
from controlplane.client._clients import AsyncClient, Client

# The name before the sync client existed (``tenantctl --api``, the demo).
ApiClient = AsyncClient

__all__ = ["ApiClient", "AsyncClient", "Call", "Client", "calls"]
