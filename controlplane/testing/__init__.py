"""Throwaway tenant databases for test suites: the pytest plugin and its harness.

``controlplane.testing.plugin`` is registered with pytest by tenantvec's ``pytest11``
entry point (fixtures ``tenantvec_tenant``, ``tenantvec_client``,
``tenantvec_session_tenant``, ``tenantvec``); :class:`Harness` is usable without pytest
(``with Harness.throwaway() as h, h.tenant(dims=8) as t: ...``). README: "Testing
against tenantvec".
"""

from controlplane.testing.harness import Harness, ThrowawayTenant

__all__ = ["Harness", "ThrowawayTenant"]
