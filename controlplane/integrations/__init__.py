"""Vector stores for RAG frameworks over the tenantvec API: each tenant is one store.

- ``controlplane.integrations.langchain``: a LangChain ``VectorStore`` (and, through
  ``as_retriever()``, its retriever); ``pip install 'tenantvec[langchain]'``.
- ``controlplane.integrations.llamaindex``: a LlamaIndex ``BasePydanticVectorStore``;
  ``pip install 'tenantvec[llamaindex]'``.

A store takes the API's URL and one tenant key, nothing else: the key says which
tenant it opens (``GET /v1/whoami``), and the tenant's database is reached only through
the API, as that tenant.
"""
