"""The lifecycle as data: the transitions ``set_state`` allows, and those it refuses."""

from __future__ import annotations

import pytest

from controlplane.errors import Conflict
from controlplane.model.records import LIVE_STATES, TRANSITIONS, TenantState, check_transition

S = TenantState


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.PROVISIONING, S.READY),
        (S.PROVISIONING, S.FAILED),
        (S.READY, S.SUSPENDED),
        (S.SUSPENDED, S.READY),
        (S.READY, S.DELETING),
        (S.SUSPENDED, S.DELETING),
        (S.FAILED, S.DELETING),
        (S.DELETING, S.DELETED),
        (S.DELETING, S.FAILED),
    ],
)
def test_the_drawn_transitions_are_allowed(current: TenantState, target: TenantState) -> None:
    check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.DELETED, S.READY),  # a deleted tenant's id is reused by a new row, never revived
        (S.FAILED, S.READY),  # a failed create is deleted and made again
        (S.SUSPENDED, S.SUSPENDED),
        (S.READY, S.PROVISIONING),
        (S.PROVISIONING, S.SUSPENDED),
    ],
)
def test_other_transitions_are_refused(current: TenantState, target: TenantState) -> None:
    with pytest.raises(Conflict, match=f"a {current} tenant cannot become {target}"):
        check_transition(current, target)


def test_every_live_state_can_end_in_deletion_and_deleted_is_final() -> None:
    assert set(TRANSITIONS) == set(TenantState)
    for state in LIVE_STATES - {S.DELETING}:
        assert S.DELETING in TRANSITIONS[state], state
    assert TRANSITIONS[S.DELETED] == frozenset()
