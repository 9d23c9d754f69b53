"""The backends of one control plane, each built the first time it is needed.

Building one loads its dependencies (the Neon client, Docker's client): a command
that touches only ``postgres`` tenants never pays for the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from controlplane.backends.base import Backend
from controlplane.errors import InvalidRequest

__all__ = ["Backends"]


class Backends:
    def __init__(self, factories: Mapping[str, Callable[[], Backend]]) -> None:
        self._factories = dict(factories)
        self._built: dict[str, Backend] = {}

    @property
    def kinds(self) -> list[str]:
        return sorted(self._factories)

    def get(self, kind: str) -> Backend:
        backend = self._built.get(kind)
        if backend is None:
            factory = self._factories.get(kind)
            if factory is None:
                known = ", ".join(self.kinds)
                raise InvalidRequest(f"unknown backend {kind!r}; available: {known}")
            backend = self._built[kind] = factory()
        return backend

    def all(self) -> list[Backend]:
        """Every backend (reconcile looks at each one's resources)."""
        return [self.get(kind) for kind in self.kinds]

    async def aclose(self) -> None:
        for backend in self._built.values():
            await backend.aclose()
        self._built.clear()
