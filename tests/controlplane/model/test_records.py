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
        (S.RESTORING, S.READY),
        (S.RESTORING, S.FAILED),
        (S.READY, S.MOVING),
        (S.MOVING, S.SWITCHED),
        (S.MOVING, S.ROLLING_BACK),
        (S.SWITCHED, S.READY),
        (S.ROLLING_BACK, S.READY),
        (S.MOVING, S.DELETING),
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
        (S.MOVING, S.READY),  # a move ends by settling its other copy, forward or back
        (S.SWITCHED, S.ROLLING_BACK),  # past the switch there is no going back
        (S.ROLLING_BACK, S.SWITCHED),  # nor forward once given up
        (S.SUSPENDED, S.MOVING),  # a copy is read from a running database
        (S.MOVING, S.SUSPENDED),
        (S.RESTORING, S.PROVISIONING),  # a dead restore is rolled back, never resumed
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


def test_a_moving_tenant_is_served_in_every_phase_and_every_phase_leads_back_to_ready() -> None:
    for state in (S.MOVING, S.SWITCHED, S.ROLLING_BACK):
        assert state.serves and state.usable, state
        reachable, frontier = set(), {state}
        while frontier:
            step = {t for s in frontier for t in TRANSITIONS[s]} - reachable
            reachable |= step
            frontier = step
        assert S.READY in reachable, state
    assert not S.SUSPENDED.serves and S.SUSPENDED.usable
    assert not any(s.usable for s in (S.PROVISIONING, S.RESTORING, S.FAILED, S.DELETING))
