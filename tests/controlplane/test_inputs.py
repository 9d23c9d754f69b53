"""Property-based tests of the validators: what they accept, Postgres stores unchanged;
what they refuse, they refuse with InvalidRequest -- never anything else."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from controlplane.backends.markers import parse_marker
from controlplane.errors import InvalidRequest
from controlplane.inputs import MAX_JSON_DEPTH, check_json, check_text, has_control
from controlplane.localpg import EmbeddedServer
from controlplane.model.labels import validate_labels
from controlplane.model.records import TENANT_ID_RE, validate_tenant_id
from controlplane.retrieval.documents import check_document_id
from controlplane.settings import Settings

CONTROL = st.characters(codec="utf-8", categories=["Cc"])
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=80)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.from_regex(TENANT_ID_RE, fullmatch=True))
def test_every_id_the_pattern_allows_is_valid_unless_reserved(tenant_id: str) -> None:
    reserved = {"postgres", "template0", "template1", "public", "none", "all"}
    if tenant_id.startswith("tenantvec") or tenant_id in reserved:
        with pytest.raises(InvalidRequest, match="reserved"):
            validate_tenant_id(tenant_id)
    else:
        assert validate_tenant_id(tenant_id) == tenant_id


@PROPERTY
@given(st.from_regex(TENANT_ID_RE, fullmatch=True), CONTROL, st.booleans())
def test_no_id_with_a_control_character_anywhere_is_valid(
    tenant_id: str, control: str, at_end: bool
) -> None:
    spoiled = tenant_id + control if at_end else tenant_id[:2] + control + tenant_id[2:]
    with pytest.raises(InvalidRequest):
        validate_tenant_id(spoiled)
    with pytest.raises(InvalidRequest):
        check_document_id(spoiled)
    with pytest.raises(InvalidRequest):
        validate_labels({"env": spoiled})
    with pytest.raises(InvalidRequest):
        validate_labels({spoiled: "x"})


@PROPERTY
@given(ANY_TEXT)
def test_validators_refuse_only_with_invalid_request(text: str) -> None:
    for check in (validate_tenant_id, check_document_id, lambda t: validate_labels({t: "v"})):
        with contextlib.suppress(InvalidRequest):
            check(text)
    # The single-line check is exactly "no control character".
    try:
        check_text(text, "x", single_line=True)
        assert not has_control(text)
    except InvalidRequest:
        assert has_control(text)


@PROPERTY
@given(ANY_TEXT)
def test_markers_parse_exactly_or_not_at_all(text: str) -> None:
    marker = parse_marker(text)
    if marker is not None:
        rebuilt = (
            f"tenantvec catalog={marker.catalog_id} uid={marker.uid}"
            if marker.uid
            else f"tenantvec tenant={marker.tenant_id}"
        )
        assert rebuilt == text  # nothing before, after, or in between was tolerated
    legacy = parse_marker(f"tenantvec tenant=acme{text}")
    assert (legacy is not None) == bool(TENANT_ID_RE.fullmatch(f"acme{text}"))


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4)
    ),
    max_leaves=25,
)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.fixture(scope="module")
def jsonb(pg_settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(EmbeddedServer(pg_settings).superuser_conninfo().dsn) as conn:
        conn.autocommit = True
        yield conn


@PROPERTY
@given(JSON)
def test_json_the_check_accepts_round_trips_through_postgres(jsonb: Any, value: Any) -> None:
    try:
        check_json(value, "metadata")
    except InvalidRequest:
        return
    stored = jsonb.execute("SELECT %s::jsonb", (Jsonb(value),)).fetchone()[0]
    assert _same(stored, value), (stored, value)


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON: numbers by the double a client reads (1, 1.0 and 1e0 alike)."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b or (type(a) is type(b) and a == b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def test_depth_is_bounded_at_the_documented_limit() -> None:
    check_json(_nested(MAX_JSON_DEPTH), "metadata")
    with pytest.raises(InvalidRequest, match="nested more than"):
        check_json(_nested(MAX_JSON_DEPTH + 1), "metadata")
