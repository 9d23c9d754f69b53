"""What deleting a tenant did to its data -- said by the backend that did it.

"Deleting a tenant is DROP DATABASE" is true of a Postgres server; a Neon project is
soft-deleted and recoverable for days. Each backend's ``delete`` answers an
:class:`Erasure`, which the lifecycle records in the deleted tenant's placement
(``erasure``) and the CLI and API show: an operator answering a GDPR request can say
when the data is gone, not guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["Erasure"]


@dataclass(frozen=True)
class Erasure:
    immediate: bool  # the data is gone when delete returns
    detail: str  # one sentence for the operator: what is gone, what is kept, how long
    recoverable_until: datetime | None = None  # when whatever keeps it lets go of it

    def to_json(self) -> dict[str, Any]:
        return {
            "immediate": self.immediate,
            "detail": self.detail,
            "recoverable_until": (
                self.recoverable_until.isoformat() if self.recoverable_until else None
            ),
        }

    def and_then(self, other: Erasure) -> Erasure:
        """Both erasures as one (a moving tenant's two copies): gone when both are,
        recoverable as long as either is."""
        until = [t for t in (self.recoverable_until, other.recoverable_until) if t is not None]
        return Erasure(
            immediate=self.immediate and other.immediate,
            detail=f"{self.detail} {other.detail}",
            recoverable_until=max(until) if until else None,
        )
