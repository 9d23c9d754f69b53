-- tenant_schema 0003: vectors kept in the row.
-- A vector of more than ~500 dimensions outgrows the 2 kB TOAST threshold, and with the
-- type's default (EXTENDED) storage it moves out of line. The planner prices a
-- sequential scan by the heap's pages alone, so it sees a table of 4 kB vectors as one
-- of a few bytes per row and, from a few ten thousand chunks on, prefers scanning every
-- vector to the HNSW index: measured, 910 ms instead of 7 ms on 41,000 x 1024. MAIN
-- keeps a vector in the row (out of line only as a last resort), so the heap is as big
-- as the data and the index is chosen. Rows written before this migration move in when
-- the table is rewritten (VACUUM FULL chunks).
ALTER TABLE chunks ALTER COLUMN embedding SET STORAGE MAIN;
