"""The HTTP API (Litestar): thin handlers over the library."""

from controlplane.api.app import create_app, create_app_from_env, create_litestar

__all__ = ["create_app", "create_app_from_env", "create_litestar"]
