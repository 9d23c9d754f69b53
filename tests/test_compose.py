"""compose.yaml cannot run here (no Docker engine); check its structure instead."""

from __future__ import annotations

from pathlib import Path

import yaml


def test_compose_structure() -> None:
    spec = yaml.safe_load((Path(__file__).parents[1] / "compose.yaml").read_text())
    service = spec["services"]["tenants-pg"]
    assert service["image"].startswith("pgvector/pgvector:pg18")
    assert service["ports"] == ["127.0.0.1:55432:5432"]  # loopback only
    assert "pg_isready" in " ".join(service["healthcheck"]["test"])
    # No password is committed: it must come from the environment.
    assert service["environment"]["POSTGRES_PASSWORD"].startswith("${")
