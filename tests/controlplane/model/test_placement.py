"""A tenant's placement, typed: the facts routing and the lifecycle read of it."""

from __future__ import annotations

from controlplane.model.limits import RoleLimits
from controlplane.model.placement import Placement


def test_the_budget_is_the_server_the_compute_or_the_tenants_own() -> None:
    on_server = Placement.parse("postgres", "local", {"database": "tv_x", "layout": 2})
    assert on_server.budget_key == "local" and on_server.own_server is None
    assert on_server.own_max_connections is None and on_server.layout == 2
    own = Placement.parse(
        "instance", None, {"instance": "acme-1a2b3c", "compute": {"max_connections": 40}}
    )
    assert (own.budget_key, own.own_server, own.own_max_connections) == (
        "acme-1a2b3c",
        "acme-1a2b3c",
        40,
    )
    container = Placement.parse("docker", None, {"container": "tv-acme"})
    assert container.budget_key == "tv-acme" and container.own_max_connections == 25
    neon = Placement.parse("neon", None, {"project_id": "p", "endpoint_id": "ep-1"})
    assert neon.budget_key == "ep-1" and neon.own_server is None
    assert Placement.parse("neon", None, {}).budget_key == "neon"  # nothing recorded yet


def test_limits_layout_and_reserved_slots_as_recorded_or_their_defaults() -> None:
    limits = RoleLimits.resolve("medium", {"connection_limit": 7})
    recorded = Placement.parse(
        "postgres", "local", {"limits": limits.to_json(), "reserved_slots": False}
    )
    assert recorded.limits == limits and recorded.reserved_slots is False
    older = Placement.parse("postgres", "local", {"reserved_slots": "yes"})
    assert older.limits == RoleLimits.resolve("small", {})  # made before limits existed
    assert older.layout == 1 and older.reserved_slots is None
