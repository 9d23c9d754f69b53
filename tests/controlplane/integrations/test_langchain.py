"""The LangChain store against the real API: langchain-tests' standard suite (sync and
async), then what the suite does not ask -- the tenant's own embedder, filters, hybrid
search, MMR, the retriever, jobs, and refusing the admin token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("langchain_core", reason="the [langchain] extra is not installed")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.vectorstores import VectorStore  # noqa: E402
from langchain_tests.integration_tests.vectorstores import (  # noqa: E402
    EMBEDDING_SIZE,
    VectorStoreIntegrationTests,
)

from controlplane.errors import InvalidRequest  # noqa: E402
from controlplane.integrations.langchain import TenantvecVectorStore  # noqa: E402
from controlplane.testing import Harness  # noqa: E402
from tests.fixtures.api import RunningApi, StartApi  # noqa: E402


# The tenants come from tenantvec's own pytest plugin (controlplane.testing), as they
# would in an application's tests: a throwaway tenant, its key and the API's URL.
class TestStandardSuite(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tenantvec: Harness) -> Iterator[VectorStore]:
        with (
            tenantvec.tenant(dims=EMBEDDING_SIZE, embedder="hash") as tenant,
            TenantvecVectorStore(
                tenant.api_url, tenant.api_key, embedding=self.get_embeddings()
            ) as store,
        ):
            yield store


@pytest.fixture
def served(tenantvec: Harness) -> Iterator[TenantvecVectorStore]:
    """A store with no LangChain embeddings: the tenant's embedder embeds on the server."""
    with (
        tenantvec.tenant(dims=64, embedder="hash") as tenant,
        TenantvecVectorStore(tenant.api_url, tenant.api_key) as store,
    ):
        yield store


CORPUS = [
    Document(id="refunds", page_content="Refunds are paid within 14 days", metadata={"y": 2024}),
    Document(id="refunds-2", page_content="Refunds are paid within 14 days!", metadata={"y": 2020}),
    Document(id="ship", page_content="Shipping to Leeds takes two days", metadata={"y": 2023}),
    Document(id="keys", page_content="API keys are shown once", metadata={"y": 2022}),
]


def test_the_tenants_embedder_filters_and_modes(served: TenantvecVectorStore) -> None:
    assert served.add_documents(CORPUS) == ["refunds", "refunds-2", "ship", "keys"]
    assert served.similarity_search("refunds paid", k=1)[0].id in ("refunds", "refunds-2")
    recent = served.similarity_search("refunds paid", k=4, filter={"y": {"$gte": 2023}})
    assert {d.id for d in recent} == {"refunds", "ship"}
    keyword = served.similarity_search("Leeds", k=4, mode="keyword")
    assert [d.id for d in keyword] == ["ship"]
    hybrid = served.similarity_search_with_score("shown once", k=2, mode="hybrid")
    assert hybrid[0][0].id == "keys" and hybrid[0][1] > hybrid[1][1]
    served.delete(filter={"y": {"$lt": 2021}})
    assert [d.id for d in served.get_by_ids(["refunds-2", "ship"])] == ["ship"]


def test_mmr_and_the_retriever_prefer_variety(served: TenantvecVectorStore) -> None:
    served.add_documents(CORPUS)
    plain = served.similarity_search("refunds paid within 14 days", k=2)
    assert {d.id for d in plain} == {"refunds", "refunds-2"}  # the near-duplicates
    diverse = served.max_marginal_relevance_search(
        "refunds paid within 14 days", k=2, fetch_k=4, lambda_mult=0.3
    )
    assert diverse[0].id in ("refunds", "refunds-2") and diverse[1].id not in (
        "refunds",
        "refunds-2",
    )
    retriever = served.as_retriever(
        search_type="mmr", search_kwargs={"k": 2, "fetch_k": 4, "lambda_mult": 0.3}
    )
    assert [d.id for d in retriever.invoke("refunds paid within 14 days")] == [
        d.id for d in diverse
    ]
    filtered = served.as_retriever(search_kwargs={"k": 3, "filter": {"y": 2022}})
    assert [d.id for d in filtered.invoke("anything")] == ["keys"]


async def test_async_twins_with_the_tenants_embedder(served: TenantvecVectorStore) -> None:
    async with served:  # one async client for all of it
        await _async_twins(served)


async def _async_twins(served: TenantvecVectorStore) -> None:
    await served.aadd_documents(CORPUS)
    found = await served.asimilarity_search("Leeds shipping", k=1)
    assert found[0].id == "ship"
    diverse = await served.amax_marginal_relevance_search(
        "refunds paid within 14 days", k=2, fetch_k=4, lambda_mult=0.3
    )
    assert len({d.id for d in diverse} & {"refunds", "refunds-2"}) == 1
    retrieved = await served.as_retriever(search_kwargs={"k": 1}).ainvoke("API keys")
    assert retrieved[0].id == "keys"
    await served.adelete(["keys"])
    assert await served.aget_by_ids(["keys"]) == []


def test_batches_past_the_inline_limit_wait_for_their_job(
    start_api: StartApi, tenant_id: str
) -> None:
    # Texts the server embeds, more than it embeds inline: each request becomes a job
    # (run by this server's worker), and add_texts returns once the jobs are done.
    api = start_api({"TENANTVEC_JOB_WORKERS": "1", "TENANTVEC_INLINE_INGEST_DOCUMENTS": "8"})
    with TenantvecVectorStore(
        api.url, api.new_tenant(tenant_id, dims=32, embedder="hash")
    ) as store:
        texts = [f"document number {i}" for i in range(1_100)]  # two requests
        ids = store.add_texts(texts, ids=[f"d{i}" for i in range(1_100)])
        assert ids == [f"d{i}" for i in range(1_100)]
        assert store.get_by_ids(["d1099"])[0].page_content == "document number 1099"
        jobs = store._session.client.list_jobs(store.tenant)
        assert [(j.state, j.total) for j in jobs] == [("completed", 100), ("completed", 1_000)]


def test_a_store_opens_one_tenant_and_refuses_the_admin_token(
    api: RunningApi, served: TenantvecVectorStore
) -> None:
    with pytest.raises(InvalidRequest, match="give it a tenant key"):
        TenantvecVectorStore(api.url, api.admin_token)
    assert "tvk_" not in repr(served) and served.tenant in repr(served)
    with pytest.raises(ValueError, match="ids, or filter="):
        served.delete()
