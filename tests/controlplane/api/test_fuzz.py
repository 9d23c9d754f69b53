"""Schemathesis against the real server's OpenAPI document (``bench/fuzz.py``): no input
answers 5xx, and every answer is one the document describes (status, content type, body
schema), with the admin token and with a tenant key aimed at its own tenant.

The budget is small to keep the suite fast (``TENANTVEC_FUZZ_EXAMPLES`` raises it);
``make bench-faults`` reports a longer run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bench.fuzz import fuzz
from controlplane.settings import Settings
from tests.fixtures.api import RunningApi, launch

EXAMPLES = int(os.environ.get("TENANTVEC_FUZZ_EXAMPLES", "15"))


@dataclass(frozen=True)
class Target:
    api: RunningApi
    tenant: str
    key: str


@pytest.fixture(scope="module")
def target(pg_settings: Settings) -> Iterator[Target]:
    # A server of its own: the fuzzer creates, suspends and deletes tenants freely.
    api = launch(pg_settings, {"TENANTVEC_JOB_WORKERS": "0", "TENANTVEC_SUPERVISE_SECONDS": "3600"})
    try:
        tenant = f"fuzz-{uuid.uuid4().hex[:8]}"
        key = api.new_tenant(tenant, dims=3)
        with api.client(key) as client:
            doc = {"id": "d1", "chunks": [{"content": "x", "embedding": [1, 0, 0]}]}
            client.put(
                f"/v1/tenants/{tenant}/documents", json={"documents": [doc]}
            ).raise_for_status()
        yield Target(api, tenant, key)
        with api.admin() as admin:  # what the fuzzer made
            for made in admin.get("/v1/tenants").json():
                if made["labels"].get("made-by") == "fuzz":
                    admin.delete(f"/v1/tenants/{made['id']}")
            admin.delete(f"/v1/tenants/{tenant}")
    finally:
        api.stop()


def test_fuzz_with_the_admin_token(target: Target) -> None:
    report = fuzz(
        target.api.url, target.api.admin_token, examples=EXAMPLES, spare_tenant=target.tenant
    )
    assert not report.failures, "\n".join(report.failures)
    assert report.requests > 200 and report.server_errors == 0, report.statuses


def test_fuzz_with_a_tenant_key(target: Target) -> None:
    report = fuzz(target.api.url, target.key, examples=EXAMPLES, own_tenant=target.tenant)
    assert not report.failures, "\n".join(report.failures)
    assert report.requests > 200 and report.server_errors == 0, report.statuses
    assert report.statuses[200] > 0  # the key did reach its tenant
