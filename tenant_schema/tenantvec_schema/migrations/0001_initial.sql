-- tenant_schema 0001: documents, chunks with embeddings, search indexes, ingestion jobs.
-- Rendered per tenant by tenant_schema.render: {dims}, {text_config} and {vector_index}
-- are filled in with psycopg.sql; literal braces are doubled.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE documents (
    id           text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 512),
    title        text,
    source       text,
    metadata     jsonb NOT NULL DEFAULT '{{}}',
    content_hash text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chunks (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id  text NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal      integer NOT NULL CHECK (ordinal >= 0),
    start_offset integer CHECK (start_offset >= 0),
    end_offset   integer CHECK (end_offset >= start_offset),
    content      text NOT NULL,
    embedding    vector({dims}),
    tsv          tsvector GENERATED ALWAYS AS (to_tsvector({text_config}::regconfig, content)) STORED,
    metadata     jsonb NOT NULL DEFAULT '{{}}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (document_id, ordinal)
);

{vector_index}

CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv);
CREATE INDEX chunks_metadata_idx ON chunks USING gin (metadata jsonb_path_ops);
CREATE INDEX documents_metadata_idx ON documents USING gin (metadata jsonb_path_ops);

CREATE TABLE ingestion_jobs (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'running', 'completed', 'failed')),
    total       integer NOT NULL DEFAULT 0 CHECK (total >= 0),
    processed   integer NOT NULL DEFAULT 0 CHECK (processed >= 0),
    failed      integer NOT NULL DEFAULT 0 CHECK (failed >= 0),
    errors      jsonb NOT NULL DEFAULT '[]',
    payload     jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingestion_jobs_unfinished_idx ON ingestion_jobs (created_at)
    WHERE state IN ('pending', 'running');
