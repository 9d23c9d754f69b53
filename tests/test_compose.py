"""compose.yaml and the Dockerfile cannot run here (no Docker engine); check their structure."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from controlplane.settings import setting_docs

ROOT = Path(__file__).parents[1]


def _spec() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text()))


def test_services_images_and_healthchecks() -> None:
    services = _spec()["services"]
    assert set(services) == {"controlplane", "catalog", "tenants-pg"}
    assert services["controlplane"]["build"] == "."
    for name in ("catalog", "tenants-pg"):
        assert services[name]["image"].startswith("pgvector/pgvector:pg18")
        assert "pg_isready" in " ".join(services[name]["healthcheck"]["test"])
    assert "/readyz" in " ".join(services["controlplane"]["healthcheck"]["test"])
    # The control plane starts once both databases answer.
    assert services["controlplane"]["depends_on"] == {
        "catalog": {"condition": "service_healthy"},
        "tenants-pg": {"condition": "service_healthy"},
    }


def test_only_loopback_ports_are_published() -> None:
    services = _spec()["services"]
    assert services["controlplane"]["ports"] == ["127.0.0.1:8000:8000"]
    assert services["tenants-pg"]["ports"] == ["127.0.0.1:55432:5432"]
    assert "ports" not in services["catalog"]  # reachable on the compose network only


def test_the_control_plane_is_wired_with_real_settings_and_no_secrets() -> None:
    services = _spec()["services"]
    env = services["controlplane"]["environment"]
    known = {doc.env for doc in setting_docs()}
    tenantvec_vars = {k for k in env if k.startswith("TENANTVEC_")}
    assert tenantvec_vars <= known, tenantvec_vars - known  # no misspelt setting
    assert {"TENANTVEC_CATALOG_URL", "TENANTVEC_SECRET_KEY", "TENANTVEC_ADMIN_TOKEN"} <= set(env)
    assert "@catalog:5432/tenantvec_catalog" in env["TENANTVEC_CATALOG_URL"]
    assert "@tenants-pg:5432/" in env["TENANTS_PG_URL"]
    # The catalog's password is the catalog service's own, from the environment.
    catalog_password = services["catalog"]["environment"]["POSTGRES_PASSWORD"]
    assert catalog_password.startswith("${CATALOG_PG_PASSWORD")
    assert "${CATALOG_PG_PASSWORD" in env["TENANTVEC_CATALOG_URL"]
    # No secret is committed: every password, key and token comes from the environment.
    for service in services.values():
        for name, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN|_URL$", name):
                assert "${" in str(value), (name, value)
    command = " ".join(services["controlplane"]["command"])
    assert "tenantctl servers add tenants-pg" in command and "--replace" in command
    assert "tenantctl serve --host 0.0.0.0 --port 8000" in command


def test_the_dockerfile_installs_pinned_and_runs_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    # The control plane is the server extra: the wheel alone is the client.
    assert "PIP_CONSTRAINT=constraints.txt pip install '.[server]'" in dockerfile
    assert re.search(r"^USER tenantvec$", dockerfile, re.M)
    assert '"tenantctl", "serve", "--host", "0.0.0.0"' in dockerfile
    for package in ("controlplane", "tenant_schema", "cli"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert ".env" in (ROOT / ".gitignore").read_text().split()
