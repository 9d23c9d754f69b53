"""Settings of the docker backend (a container per tenant)."""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.settings._fields import SettingsGroup, setting

__all__ = ["DockerSettings"]


@dataclass(frozen=True, kw_only=True)
class DockerSettings(SettingsGroup):
    concern = "the docker backend"

    host: str = setting(
        "TENANTVEC_DOCKER_HOST",
        "Docker engine of the docker backend (DOCKER_HOST is read too).",
        default="unix:///var/run/docker.sock",
        aliases=("DOCKER_HOST",),
    )
    image: str = setting(
        "TENANTVEC_DOCKER_IMAGE",
        "Image of docker tenants' servers: Postgres with pgvector.",
        default="pgvector/pgvector:pg18",
    )
