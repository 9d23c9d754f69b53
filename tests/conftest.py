"""Fixtures of tenantvec's own pytest plugin (controlplane.testing), pointed at the
session's server and API rather than a throwaway server of their own: tenantvec's tests
use them where a test needs what an application's test needs -- a tenant, its key, a
client. (Here, not in tests/fixtures: a conftest's fixtures override a plugin's.)"""

from __future__ import annotations

import pytest

from controlplane.settings import Settings
from tests.fixtures.api import RunningApi


@pytest.fixture(scope="session")
def tenantvec_settings(pg_settings: Settings) -> Settings:
    return pg_settings


@pytest.fixture(scope="session")
def tenantvec_api_url(api: RunningApi) -> str:
    return api.url
