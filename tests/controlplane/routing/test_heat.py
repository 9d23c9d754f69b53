"""Tenant heat: decayed request counts, and the order eviction goes by."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controlplane.routing._heat import TenantHeat


def test_a_tenant_asked_often_outranks_one_asked_once_more_recently() -> None:
    heat = TenantHeat(half_life=30)
    for t in range(5):
        heat.hit("often", now=100.0 + t)
    heat.hit("once", now=110.0)
    assert heat.rank("often") > heat.rank("once")


def test_among_equals_the_more_recent_is_hotter_and_unknown_is_coldest() -> None:
    heat = TenantHeat(half_life=30)
    heat.hit("earlier", now=10.0)
    heat.hit("later", now=11.0)
    assert heat.rank("later") > heat.rank("earlier") > heat.rank("never")


def test_heat_halves_every_half_life() -> None:
    heat = TenantHeat(half_life=30)
    for _ in range(8):
        heat.hit("t", now=1000.0)
    assert heat.of("t", now=1000.0) == pytest.approx(8)
    assert heat.of("t", now=1030.0) == pytest.approx(4)
    assert heat.of("t", now=1090.0) == pytest.approx(1)
    assert heat.of("never", now=1090.0) == 0.0


def test_a_long_running_process_neither_overflows_nor_loses_order() -> None:
    heat = TenantHeat(half_life=1)
    now = 10.0**9  # ~30 years of monotonic seconds at a 1 s half-life
    heat.hit("a", now=now)
    heat.hit("a", now=now)
    heat.hit("b", now=now)
    assert math.isfinite(heat.rank("a"))
    assert heat.rank("a") > heat.rank("b")
    assert heat.of("a", now=now) == pytest.approx(2)


def test_cold_tenants_are_forgotten_unless_kept() -> None:
    heat = TenantHeat(half_life=1)
    for tenant in ("gone", "kept", "fresh"):
        heat.hit(tenant, now=0.0)
    heat.hit("fresh", now=20.0)
    heat.forget_cold(20.0, keep={"kept"})
    assert len(heat) == 2
    assert heat.rank("gone") == -math.inf
    assert heat.rank("kept") > -math.inf


@given(st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 1000)), max_size=40))
def test_rank_orders_tenants_as_their_decayed_counts_do(
    hits: list[tuple[str, float]],
) -> None:
    heat = TenantHeat(half_life=50)
    for tenant, at in sorted(hits, key=lambda h: h[1]):
        heat.hit(tenant, now=at)
    now = 1000.0
    decayed = {t: sum(0.5 ** ((now - at) / 50) for tt, at in hits if tt == t) for t in "abc"}
    for t in "abc":
        assert heat.of(t, now) == pytest.approx(decayed[t], rel=1e-9, abs=1e-12)
    for x in "abc":
        for y in "abc":
            if decayed[x] > decayed[y] * (1 + 1e-9):
                assert heat.rank(x) > heat.rank(y)
