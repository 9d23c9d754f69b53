"""Which embedder a new tenant gets: the caller's own vectors of any size need none."""

from __future__ import annotations

import pytest

from controlplane.errors import InvalidRequest
from controlplane.model.embedder import (
    NO_EMBEDDER,
    EmbedderSpec,
    embedder_from_json,
    embedder_json,
    parse_embedder,
)
from controlplane.model.request import DEFAULT_DIMS, TenantOptions, TenantRequest
from tenantvec_schema.spec import MAX_DIMS, MAX_INDEXED_DIMS, IndexKind, IndexSpec

WORDLLAMA = EmbedderSpec.parse("wordllama")
OPENAI = EmbedderSpec.parse("openai:text-embedding-3-small")


@pytest.mark.parametrize("dims", [1, 3, 16, 384, 768, 1536, 2000, 3072, MAX_DIMS])
def test_dims_alone_make_a_tenant_for_the_callers_vectors_of_any_size(dims: int) -> None:
    # pgvector indexes vectors of up to 2,000 dimensions; larger ones are searched exactly.
    index = IndexSpec() if dims <= MAX_INDEXED_DIMS else IndexSpec(kind=IndexKind.NONE)
    for default in (WORDLLAMA, OPENAI, EmbedderSpec.parse("hash")):
        resolved = TenantRequest(id="acme", dims=dims, index=index).resolve(default)
        assert resolved.dims == dims and resolved.resolved_embedder is None
    # The API's body and the CLI's flags: the same.
    request = TenantOptions(id="acme", dims=dims, index=index.kind).to_request()
    assert request.resolve(WORDLLAMA).resolved_embedder is None


def test_neither_option_gives_the_default_embedder_and_its_size() -> None:
    assert TenantRequest(id="acme").resolve(WORDLLAMA).dims == 256
    assert TenantRequest(id="acme").resolve(WORDLLAMA).resolved_embedder == WORDLLAMA
    # A model that does not fix its size: the general default.
    assert TenantRequest(id="acme").resolve(OPENAI).dims == DEFAULT_DIMS


def test_an_embedder_named_is_used_and_must_fit_the_dims() -> None:
    named = TenantRequest(id="acme", dims=64, embedder=WORDLLAMA).resolve(OPENAI)
    assert named.resolved_embedder == WORDLLAMA and named.dims == 64
    with pytest.raises(InvalidRequest, match="not 768: use dims 256"):
        TenantOptions(id="acme", dims=768, embedder="wordllama").to_request()
    with pytest.raises(InvalidRequest, match="not 768"):
        TenantRequest(id="acme", dims=768, embedder=WORDLLAMA)


def test_none_is_a_choice_and_needs_dims() -> None:
    assert parse_embedder("none") is NO_EMBEDDER
    explicit = TenantOptions(id="acme", dims=8, embedder="none").to_request()
    assert explicit.resolve(WORDLLAMA).resolved_embedder is None
    with pytest.raises(InvalidRequest, match="without an embedder needs dims"):
        TenantOptions(id="acme", embedder="none").to_request()
    # A control plane whose default is none: a tenant then says its size.
    with pytest.raises(InvalidRequest, match="without an embedder needs dims"):
        TenantRequest(id="acme").resolve(NO_EMBEDDER)
    assert TenantRequest(id="acme", dims=5).resolve(NO_EMBEDDER).dims == 5
    with pytest.raises(InvalidRequest, match="fallbacks need an embedder"):
        parse_embedder("none", ["hash"])


def test_the_catalog_and_backups_tell_none_from_older_rows() -> None:
    assert embedder_from_json(embedder_json(None)) is None
    assert embedder_from_json(embedder_json(OPENAI)) == OPENAI
    # Rows from before tenants had an embedder recorded were the hash embedder's.
    assert embedder_from_json({}) == EmbedderSpec.parse("hash")
