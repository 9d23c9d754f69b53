"""Prometheus metrics: requests per tenant and route, latency per route, pools, connections.

Each app has its own registry (no process-global state), served at ``/metrics``. The
router's figures are read at scrape time, so they are never stale. With several API
workers each process answers for itself; scrape them through a port per worker or sum
in Prometheus.

Label sets stay bounded whatever the traffic: the latency histogram has no tenant label
(a dozen buckets per tenant would be ~150,000 series at 10,000 tenants); the request
counter's tenant label takes only ids a caller proved it may use -- the tenant its key
opens, or with the admin token a tenant that answered; requests that fail
authentication add to one counter that exists from the start. So ``/metrics`` grows by
one series per tenant and route that answered (``make bench-scale``), and no more.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from controlplane.api._caller import CALLER, Caller

if TYPE_CHECKING:
    from controlplane.routing import TenantRouter

__all__ = ["ApiMetrics", "metrics_middleware"]

# No "_created" timestamp beside every counter: it doubled the series per tenant (2,047
# at 1,000 tenants, make bench-scale) and says only when a process first saw a tenant.
disable_created_metrics()  # type: ignore[no-untyped-call]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tenantvec_requests",
            "HTTP requests by tenant (empty for admin routes and refused callers), route "
            "and status.",
            ["tenant", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tenantvec_request_seconds",
            "HTTP request latency by route.",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.unauthenticated = Counter(
            "tenantvec_unauthenticated_requests",
            "Requests refused for missing, malformed or invalid credentials (401).",
            registry=self.registry,
        )

        # labels() validates and locks on every call; each label set's child is looked
        # up once and kept (as many as /metrics has series: bounded as it is).
        self._request_children: dict[tuple[str, str, str], Any] = {}
        self._latency_children: dict[str, Any] = {}

    def record(
        self, route: str, status: int, seconds: float, *, caller: object, tenant: object
    ) -> None:
        """One request to ``route`` answered with ``status``: ``caller`` as authentication
        found it (or not at all), ``tenant`` the id its path named."""
        if status == 401:
            self.unauthenticated.inc()
        else:
            self.count(_tenant_label(caller, tenant, status), route, status, seconds)

    def count(self, tenant: str, route: str, status: int, seconds: float) -> None:
        """One answered request: its latency and its count by tenant, route, status."""
        latency = self._latency_children.get(route)
        if latency is None:
            latency = self._latency_children[route] = self.latency.labels(route)
        latency.observe(seconds)
        key = (tenant, route, str(status))
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.requests.labels(*key)
        counter.inc()

    def watch(self, router: TenantRouter) -> None:
        self.registry.register(_RouterCollector(router))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _RouterCollector(Collector):
    def __init__(self, router: TenantRouter) -> None:
        self._router = router

    def collect(self) -> Iterator[Metric]:
        stats = self._router.stats()
        pools = GaugeMetricFamily("tenantvec_open_pools", "Tenant pools open in this process.")
        pools.add_metric([], stats.open_pools)
        yield pools
        opened = CounterMetricFamily(
            "tenantvec_pools_opened", "Tenant pools opened (cold first requests) since start."
        )
        opened.add_metric([], stats.pools_opened)
        yield opened
        connected = CounterMetricFamily(
            "tenantvec_connections_opened",
            "Tenant database connections made since start (cold pools, pools growing).",
        )
        connected.add_metric([], stats.connections_opened)
        yield connected
        budget = GaugeMetricFamily(
            "tenantvec_connection_budget",
            "This process's budget of tenant connections per server.",
        )
        budget.add_metric([], stats.budget_per_server)
        yield budget
        families = {
            "connections": "Tenant connections open to the server.",
            "in_use": "Tenant connections checked out by requests.",
            "reserved": "Budget slots held by open pools.",
            "limit": "Connection budget for the server.",
            "peak": "Most budget slots ever held at once.",
        }
        for name, doc in families.items():
            family = GaugeMetricFamily(f"tenantvec_server_{name}", doc, labels=["server"])
            for server, figures in stats.budgets.items():
                family.add_metric([server], figures[name])
            yield family


def _tenant_label(caller: object, tenant: object, status: int) -> str:
    """The tenant a request may be counted under: one its caller proved it may use."""
    if not isinstance(caller, Caller):
        return ""
    if caller.tenant_id is not None:
        return caller.tenant_id  # a valid key of this tenant
    # The admin may name any id; only one that answered is known to exist.
    return str(tenant) if status < 400 else ""


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Count and time every routed request, labelled by tenant and operation id."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        metrics: ApiMetrics | None = getattr(scope["litestar_app"].state, "metrics", None)
        handler: Any = scope.get("route_handler")
        route = getattr(handler, "operation_id", None) or "unknown"
        if metrics is None or route == "metrics":
            await app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, record_status)
        finally:
            metrics.record(
                route,
                status,
                time.perf_counter() - started,
                caller=scope.get(CALLER),
                tenant=scope.get("path_params", {}).get("tenant_id", ""),
            )

    return middleware
