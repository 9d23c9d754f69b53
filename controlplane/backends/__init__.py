"""Where tenants live: one subpackage per backend, each holding everything about it.

``base`` is the protocol every backend implements (plan, create, delete, conform,
suspend, resume, describe, list and remove its resources); ``tenantdb`` the database
and role steps the Postgres-based backends share; ``servers`` the registered Postgres
servers; ``ports`` the instance port range. The subpackages -- ``postgres``,
``instance``, ``docker``, ``neon`` (with its API client) -- import only what is below
them, and the composition root (``controlplane.plane``) builds them.

This package's top level loads nothing: a backend's dependencies (httpx for Neon, Docker's
socket) load when it is first built.
"""
