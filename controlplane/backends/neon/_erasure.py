"""What deleting a Neon tenant does to its data, said plainly (``model.erasure``).

A branch is deleted with ``hard_delete=true``: gone at once. A project is soft-deleted
by Neon -- kept, data included, recoverable for 7 days -- and Neon's API offers no
immediate deletion of a project; Neon's answer says until when (``recoverable_until``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from controlplane.model.erasure import Erasure

__all__ = ["BRANCH_DELETED", "project_already_gone", "project_deleted"]

# How long Neon keeps a deleted project recoverable (its API description: 7 days), when
# its answer does not say (recoverable_until).
RECOVERY = timedelta(days=7)

BRANCH_DELETED = Erasure(
    immediate=True,
    detail="Neon branch deleted with hard_delete: its data is gone now, with no recovery window",
)


def project_deleted(project_id: str, answer: dict[str, Any] | None) -> Erasure:
    until = _moment((answer or {}).get("recoverable_until")) or datetime.now(UTC) + RECOVERY
    return Erasure(
        immediate=False,
        detail=f"Neon project {project_id} deleted; Neon keeps it, data included, "
        f"recoverable until {until:%Y-%m-%d %H:%M} UTC and then erases it (Neon's API has "
        "no immediate deletion of a project)",
        recoverable_until=until,
    )


def project_already_gone() -> Erasure:
    return Erasure(
        immediate=False,
        detail="no Neon project of the tenant's was left to delete; a project deleted earlier "
        f"stays recoverable for {RECOVERY.days} days after its deletion",
    )


def _moment(value: Any) -> datetime | None:
    """A timestamp of Neon's (RFC 3339), or None if absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
