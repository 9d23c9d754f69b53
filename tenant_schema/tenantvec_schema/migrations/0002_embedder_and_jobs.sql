-- tenant_schema 0002: which model embedded each chunk, and richer ingestion jobs.
-- A chunk's embedder ("provider:model", NULL for vectors the caller sent) lets a model
-- change re-embed exactly the chunks it affects ('tenantctl backfill').

ALTER TABLE chunks ADD COLUMN embedder text;
CREATE INDEX chunks_unembedded_idx ON chunks (id) WHERE embedding IS NULL;

ALTER TABLE ingestion_jobs
    ADD COLUMN kind      text NOT NULL DEFAULT 'documents',
    ADD COLUMN created   integer NOT NULL DEFAULT 0 CHECK (created >= 0),
    ADD COLUMN updated   integer NOT NULL DEFAULT 0 CHECK (updated >= 0),
    ADD COLUMN unchanged integer NOT NULL DEFAULT 0 CHECK (unchanged >= 0),
    ADD COLUMN error     text;
