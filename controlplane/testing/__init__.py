"""Throwaway tenant databases for test suites: the pytest plugin and its harness.

``controlplane.testing.plugin`` is registered with pytest by tenantvec's ``pytest11``
entry point (fixtures ``tenantvec_tenant``, ``tenantvec_client``,
``tenantvec_session_tenant``, ``tenantvec``); :class:`Harness` is usable without pytest
(``with Harness.throwaway() as h, h.tenant(dims=8) as t: ...``). README: "Testing
against tenantvec". ``controlplane.testing.servers`` makes a throwaway control plane's
home, settings and embedded server: the one way the harness, tenantvec's own tests and
its benchmarks make them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controlplane.testing.harness import Harness, ThrowawayTenant

__all__ = ["Harness", "ThrowawayTenant"]


def __getattr__(name: str) -> Any:
    # pytest imports the plugin in every run of any project with tenantvec installed:
    # the harness (psycopg and the rest) loads only when a test asks for a tenant.
    if name in __all__:
        from controlplane.testing import harness

        return getattr(harness, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
