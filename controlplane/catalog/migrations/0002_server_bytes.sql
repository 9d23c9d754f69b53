-- A server's room in bytes, beside its room in tenants: placement weighs both.
ALTER TABLE servers ADD COLUMN IF NOT EXISTS capacity_bytes bigint;
