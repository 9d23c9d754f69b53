"""The LlamaIndex store against the real API: nodes as chunks (added over several calls,
replaced and deleted alone), dense / keyword / hybrid / MMR queries, metadata filters,
documents deleted with their nodes, an index built on it, and the async twins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("llama_index.core", reason="the [llamaindex] extra is not installed")

from llama_index.core import Document, StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.embeddings import MockEmbedding  # noqa: E402
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from controlplane.integrations.llamaindex import TenantvecVectorStore, to_filter  # noqa: E402
from controlplane.testing import Harness  # noqa: E402


@pytest.fixture
def store(tenantvec: Harness) -> Iterator[TenantvecVectorStore]:
    """A store on a throwaway tenant from tenantvec's pytest plugin (controlplane.testing)."""
    with tenantvec.tenant(dims=3, embedder="hash") as tenant:
        made = TenantvecVectorStore(tenant.api_url, tenant.api_key)
        yield made
        made.close()


def _node(node_id: str, doc: str, text: str, vector: list[float], **metadata: object) -> TextNode:
    node = TextNode(id_=node_id, text=text, embedding=vector, metadata=dict(metadata))
    node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc)
    return node


NODES = [
    _node("a1", "guide", "Refunds are paid within 14 days", [1, 0, 0], year=2024, lang="en"),
    _node("a2", "guide", "Refunds are paid within 14 days.", [0.99, 0.1, 0], year=2020, lang="en"),
    _node("b1", "faq", "Shipping to Leeds takes two days", [0, 1, 0], year=2023, lang="en"),
    _node(
        "c1", "faq-de", "Versand nach Leeds dauert zwei Tage", [0, 0.9, 0.3], year=2023, lang="de"
    ),
]


def _ids(store: TenantvecVectorStore, query: VectorStoreQuery) -> list[str]:
    result = store.query(query)
    assert result.ids == [n.node_id for n in result.nodes]
    return list(result.ids or [])


def test_nodes_added_in_two_calls_all_stay_and_one_is_replaced_alone(
    store: TenantvecVectorStore,
) -> None:
    assert store.add(NODES[:2]) == ["a1", "a2"]
    store.add(NODES[2:])
    guide = store.client.get_document(store.tenant, "guide")
    assert [c.id for c in guide.chunks] == ["a1", "a2"]
    store.add([_node("a1", "guide", "Refunds take 3 days now", [1, 0, 0], year=2025)])
    nodes = store.get_nodes(["a1", "a2", "gone"])
    assert [(n.node_id, n.get_content()) for n in nodes] == [
        ("a1", "Refunds take 3 days now"),
        ("a2", "Refunds are paid within 14 days."),
    ]
    assert nodes[0].metadata == {"year": 2025} and nodes[0].ref_doc_id == "guide"
    assert nodes[1].embedding == pytest.approx([0.99, 0.1, 0], abs=1e-6)
    store.delete_nodes(["a2"])
    assert [n.node_id for n in store.get_nodes(["a1", "a2"])] == ["a1"]
    store.delete("faq")  # the document, with its node
    assert store.get_nodes(["b1", "c1"])[0].node_id == "c1"
    store.clear()
    assert store.client.count_documents(store.tenant).documents == 0
    with pytest.raises(ValueError, match="give node_ids"):
        store.get_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="y", value=1)]))


def test_dense_keyword_hybrid_and_mmr_queries(store: TenantvecVectorStore) -> None:
    store.add(NODES)
    dense = VectorStoreQuery(query_embedding=[1, 0, 0], similarity_top_k=2)
    assert _ids(store, dense) == ["a1", "a2"]
    keyword = VectorStoreQuery(
        query_str="Leeds", similarity_top_k=5, mode=VectorStoreQueryMode.TEXT_SEARCH
    )
    assert set(_ids(store, keyword)) == {"b1", "c1"}
    hybrid = VectorStoreQuery(
        query_str="Leeds shipping",
        query_embedding=[0, 1, 0],
        similarity_top_k=1,
        mode=VectorStoreQueryMode.HYBRID,
        alpha=0.5,
    )
    assert _ids(store, hybrid) == ["b1"]
    mmr = VectorStoreQuery(
        query_embedding=[1, 0.05, 0],
        similarity_top_k=2,
        mode=VectorStoreQueryMode.MMR,
        mmr_threshold=0.3,
    )
    picked = _ids(store, mmr)
    assert picked[0] == "a1" and picked[1] not in ("a2",)  # not the near-duplicate
    with pytest.raises(ValueError, match="query mode 'svm'"):
        store.query(VectorStoreQuery(query_embedding=[1, 0, 0], mode=VectorStoreQueryMode.SVM))


def test_metadata_filters_and_doc_ids(store: TenantvecVectorStore) -> None:
    store.add(NODES)
    everything = [0.5, 0.5, 0.5]

    def ids(**query: object) -> set[str]:
        q = VectorStoreQuery(query_embedding=everything, similarity_top_k=10, **query)  # type: ignore[arg-type]
        return set(_ids(store, q))

    recent = MetadataFilters(
        filters=[MetadataFilter(key="year", value=2023, operator=FilterOperator.GTE)]
    )
    assert ids(filters=recent) == {"a1", "b1", "c1"}
    either = MetadataFilters(
        filters=[
            MetadataFilter(key="lang", value="de"),
            MetadataFilters(
                filters=[
                    MetadataFilter(key="year", value=2020, operator=FilterOperator.LT),
                    MetadataFilter(key="year", value=2024, operator=FilterOperator.GTE),
                ],
                condition=FilterCondition.OR,
            ),
        ],
        condition=FilterCondition.OR,
    )
    assert ids(filters=either) == {"a1", "c1"}
    assert ids(
        filters=MetadataFilters(
            filters=[MetadataFilter(key="lang", value=["de", "fr"], operator=FilterOperator.IN)]
        )
    ) == {"c1"}
    assert ids(doc_ids=["faq", "faq-de"]) == {"b1", "c1"}
    assert to_filter(
        MetadataFilters(filters=[MetadataFilter(key="x", value=1)], condition=FilterCondition.NOT)
    ) == {"$not": {"x": {"$eq": 1}}}
    with pytest.raises(ValueError, match="'text_match' is not supported"):
        to_filter(
            MetadataFilters(
                filters=[MetadataFilter(key="x", value="a", operator=FilterOperator.TEXT_MATCH)]
            )
        )


def test_an_index_built_on_the_store(store: TenantvecVectorStore) -> None:
    embed = MockEmbedding(embed_dim=3)
    context = StorageContext.from_defaults(vector_store=store)
    index = VectorStoreIndex.from_documents(
        [Document(text="Tenants are deleted with DROP DATABASE.", id_="ops", metadata={"k": 1})],
        storage_context=context,
        embed_model=embed,
    )
    found = index.as_retriever(similarity_top_k=1).retrieve("how are tenants deleted?")
    assert found[0].node.get_content() == "Tenants are deleted with DROP DATABASE."
    assert found[0].node.ref_doc_id == "ops" and found[0].node.metadata == {"k": 1}
    index.delete_ref_doc("ops")
    assert store.client.count_documents(store.tenant).documents == 0


async def test_async_twins(store: TenantvecVectorStore) -> None:
    assert await store.async_add(NODES) == ["a1", "a2", "b1", "c1"]
    result = await store.aquery(VectorStoreQuery(query_embedding=[0, 1, 0], similarity_top_k=1))
    assert result.ids == ["b1"]
    assert [n.node_id for n in await store.aget_nodes(["c1"])] == ["c1"]
    await store.adelete_nodes(["c1"])
    await store.adelete("guide")
    assert [n.node_id for n in await store.aget_nodes(["a1", "b1", "c1"])] == ["b1"]
    await store.aclear()
    assert store.client.count_documents(store.tenant).documents == 0


def test_a_large_top_k_is_not_clamped(store: TenantvecVectorStore) -> None:
    """A rerank pipeline's similarity_top_k of a few hundred comes back whole (the store
    once cut it to 100 without a word)."""
    nodes = [_node(f"n{i}", f"doc{i // 10}", f"note {i}", [1.0, i / 300, 0.2]) for i in range(300)]
    store.add(nodes)
    found = _ids(store, VectorStoreQuery(query_embedding=[1, 0, 0], similarity_top_k=250))
    assert len(found) == 250 and len(set(found)) == 250
