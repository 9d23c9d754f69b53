-- tenant_schema 0004: chunks with ids callers can address.
-- A chunk's id is the caller's (key, e.g. a LlamaIndex node id) or, when none was given,
-- "<document id>#<ordinal>": stable across a re-upsert of the same document, so a
-- chunk can be read, replaced or deleted on its own without touching its siblings.
-- Ids are unique in the tenant, over caller ids and made-up ones alike, by one
-- expression index; adding the nullable column rewrites nothing, so existing chunks
-- keep their made-up ids without an UPDATE. The bigint id stays internal.
ALTER TABLE chunks ADD COLUMN key text CHECK (length(key) BETWEEN 1 AND 512);
CREATE UNIQUE INDEX chunks_chunk_id_idx
    ON chunks ((coalesce(key, document_id || '#' || ordinal::text)));
