-- The append functions look rows up by key only (a stream's head, an event id, a read-model row,
-- a timer): an index probe is right at any table size. But PL/pgSQL caches each statement's plan
-- for the life of the connection, and a plan made while a table was nearly empty (a new
-- deployment, a test, a benchmark after a purge) scans the whole table, and keeps doing so as
-- the table grows until statistics change. Measured: every single append scanning `events`
-- (thousands of rows) after such a start. Turning sequential scans off for these functions
-- (and the projection they call) makes their plans the same whatever the statistics said.
ALTER FUNCTION homeward_append(text, text, bigint, uuid, uuid[], text[], smallint[], jsonb[],
                               jsonb, timestamptz, jsonb)
    SET enable_seqscan = off;
ALTER FUNCTION homeward_append_batch(text[], text[], bigint[], uuid[], jsonb[], timestamptz[],
                                     jsonb[], integer[], uuid[], text[], smallint[], jsonb[],
                                     jsonb)
    SET enable_seqscan = off;
ALTER FUNCTION homeward_append_exact(text[], text[], bigint[], uuid[], jsonb[], timestamptz[],
                                     integer[], uuid[], text[], smallint[], jsonb[], jsonb)
    SET enable_seqscan = off;
