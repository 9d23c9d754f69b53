"""A labelled retrieval set built from the project's own documentation.

Each entry is a question, the file that answers it, and a phrase found in that file
where the answer is: the chunks holding the phrase are the right answers. The phrases
are checked against the files by a test (``tests/bench/test_quality_set.py``), so an
edit of the docs that removes an answer fails the suite instead of skewing the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CORPUS", "QUESTIONS", "Question"]

CORPUS = ("README.md", "docs/api.md", "docs/ingestion.md", "docs/operations.md")


@dataclass(frozen=True)
class Question:
    text: str
    file: str
    phrase: str


QUESTIONS = [
    Question(
        "How is deleting a tenant for GDPR done?", "README.md", "Deleting a tenant (GDPR) on a"
    ),
    Question(
        "Which Postgres and pgvector versions does the embedded server run?",
        "README.md",
        "embedded Postgres 18 with pgvector 0.8.5",
    ),
    Question(
        "What exit code means the request conflicted with the current state?",
        "README.md",
        "| 4 | conflict",
    ),
    Question(
        "How does a CI pipeline get a throwaway database?",
        "README.md",
        "A CI pipeline that wants a throwaway database",
    ),
    Question(
        "What does the default TENANTVEC_PG_PORT keep clear of?",
        "README.md",
        "clear of a system Postgres on 5432",
    ),
    Question(
        "Which setting limits connections to each Postgres server?",
        "README.md",
        "`TENANTVEC_MAX_CONNECTIONS_PER_SERVER` | `100`",
    ),
    Question(
        "How long is a cached route trusted by an API process?",
        "README.md",
        "how long an API process trusts a cached tenant route",
    ),
    Question(
        "What permissions does the role of a registered server need?",
        "README.md",
        "The role needs `CREATEDB` and `CREATEROLE`",
    ),
    Question(
        "Which providers can embed text for a tenant?",
        "docs/ingestion.md",
        "the OpenAI embeddings wire format",
    ),
    Question(
        "Is the hash embedder semantic?",
        "docs/ingestion.md",
        "The `hash` embedder is lexical, not semantic.",
    ),
    Question(
        "Which errors from the embedding provider are retried and for how long?",
        "docs/ingestion.md",
        "connection errors are retried with tenacity",
    ),
    Question(
        "What happens when a provider returns vectors with the wrong dimensions?",
        "docs/ingestion.md",
        "**nothing is stored** from the batch",
    ),
    Question(
        "Why does each chunk record the model that embedded it?",
        "docs/ingestion.md",
        "every chunk records",
    ),
    Question(
        "Are fenced code blocks split across chunks?",
        "docs/ingestion.md",
        "Fenced code blocks and markdown tables stay whole",
    ),
    Question(
        "How are tokens counted without downloading a tokenizer?",
        "docs/ingestion.md",
        "Tokens are counted offline",
    ),
    Question(
        "Is an unchanged document embedded again when it is sent twice?",
        "docs/ingestion.md",
        "an **unchanged** document is skipped",
    ),
    Question(
        "When does an upsert become an ingestion job?",
        "docs/ingestion.md",
        "`TENANTVEC_INLINE_INGEST_DOCUMENTS` (32)",
    ),
    Question(
        "What happens to an ingestion job when the API process holding it is killed?",
        "docs/ingestion.md",
        "a process killed mid-job leaves the job exactly at its last",
    ),
    Question(
        "What does changing a tenant's dimensions do to its vectors?",
        "docs/ingestion.md",
        "the\n  `chunks.embedding` column is recreated",
    ),
    Question(
        "How is the hybrid score computed from the two rankings?",
        "docs/ingestion.md",
        "fused by **reciprocal rank**",
    ),
    Question(
        "What does min_similarity do in hybrid mode?",
        "docs/ingestion.md",
        "`min_similarity` is a floor on the **vector similarity** in every mode",
    ),
    Question(
        "What is the document id of an ingested file?",
        "docs/ingestion.md",
        "whose id is its path relative to where it was named",
    ),
    Question(
        "How is an import from ChromaDB verified at the end?",
        "docs/ingestion.md",
        "a random\nsample of 20 ids",
    ),
    Question(
        "What must I back up so the catalog's connection strings can be decrypted?",
        "docs/operations.md",
        "Back up `secret.key`",
    ),
    Question(
        "What does reconcile do with a tenant stuck in provisioning after a crash?",
        "docs/operations.md",
        "provisioning rolls forward",
    ),
    Question(
        "How do failpoints simulate a crash?",
        "docs/operations.md",
        "makes a process exit abruptly",
    ),
    Question(
        "Can I edit a migration file that was already released?",
        "docs/operations.md",
        "Never edit a released file",
    ),
    Question(
        "Which system user runs Postgres when tenantvec runs as root?",
        "docs/operations.md",
        "Postgres refuses to run as root",
    ),
    Question(
        "Is it safe to turn off fsync?",
        "docs/operations.md",
        "a machine crash can corrupt it",
    ),
]
