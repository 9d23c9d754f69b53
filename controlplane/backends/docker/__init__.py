"""A pgvector container per tenant, through Docker's API socket."""

from controlplane.backends.docker.backend import DockerBackend

__all__ = ["DockerBackend"]
