"""A Neon project (or a branch of a template project) per tenant, with its API client."""

from controlplane.backends.neon.backend import NeonBackend

__all__ = ["NeonBackend"]
