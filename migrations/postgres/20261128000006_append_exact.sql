-- The common batch, in as few statements as possible: every append at an exact version (0 for
-- a new stream), each to a stream of its own, none appended before. All or nothing: if an
-- append is not at its version the call fails with SQLSTATE HW001, and if one was appended
-- before it fails on the unique event id; nothing is written either way, and the caller sends
-- the batch to homeward_append_batch, which decides each append on its own. A profile of 16
-- writers found most of that function's time in running its many small statements, not in
-- writing rows.
--
-- Its only lookups are backward index probes for the streams' heads, by design: an
-- `event_id = ANY (array)` check, and an EXISTS correlated to the batch's rows, were both
-- planned, once PostgreSQL cached a generic plan, as a scan of the whole events table.
CREATE FUNCTION homeward_append_exact(
    p_stream_ids      text[],
    p_stream_types    text[],
    p_expected        bigint[],
    p_command_ids     uuid[],
    p_metadata        jsonb[],
    p_occurred_at     timestamptz[],
    p_event_append    integer[],
    p_event_ids       uuid[],
    p_event_types     text[],
    p_schema_versions smallint[],
    p_payloads        jsonb[],
    -- The projection changes of all the appends, merged (the streams are distinct).
    p_projection      jsonb
) RETURNS TABLE (append_index integer, first_version bigint, last_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_heads bigint[];
BEGIN
    -- Every stream's lock, in one order (no deadlocks), before any write: as in
    -- homeward_append_batch, so each stream's events reach catch-up readers in version order.
    PERFORM pg_advisory_xact_lock(l.k)
      FROM (SELECT DISTINCT hashtextextended(s, 0) AS k
              FROM unnest(p_stream_ids) AS s ORDER BY 1) AS l;

    -- Each stream's head, one backward index probe per stream. Under the locks, no other writer
    -- moves them.
    SELECT array_agg(coalesce((SELECT max(e.stream_version) FROM events e WHERE e.stream_id = u.s), 0)
                     ORDER BY u.o)
      INTO v_heads
      FROM unnest(p_stream_ids) WITH ORDINALITY AS u(s, o);
    IF v_heads <> p_expected THEN
        RAISE EXCEPTION 'an append of this batch is not at its expected version'
            USING ERRCODE = 'HW001';
    END IF;

    -- An append sent before fails here on the unique event id, and the whole call with it.
    INSERT INTO events (stream_id, stream_version, event_id, command_id, event_type,
                        schema_version, payload, metadata, occurred_at)
    SELECT p_stream_ids[x.a], p_expected[x.a] + x.n, x.id, p_command_ids[x.a], x.t, x.sv, x.p,
           p_metadata[x.a], p_occurred_at[x.a]
    FROM (SELECT u.*, row_number() OVER (PARTITION BY u.a ORDER BY u.o) AS n
            FROM unnest(p_event_append, p_event_ids, p_event_types, p_schema_versions, p_payloads)
                 WITH ORDINALITY AS u(a, id, t, sv, p, o)) AS x
    ORDER BY x.o;

    IF 0 = ANY (p_expected) THEN
        INSERT INTO streams (stream_id, stream_type)
        SELECT p_stream_ids[i], p_stream_types[i]
        FROM generate_series(1, cardinality(p_stream_ids)) AS i
        WHERE p_expected[i] = 0;
    END IF;

    IF p_projection IS NOT NULL THEN
        PERFORM homeward_project(p_projection);
    END IF;

    RETURN QUERY
        SELECT u.a, p_expected[u.a] + 1, p_expected[u.a] + count(*)
        FROM unnest(p_event_append) AS u(a)
        GROUP BY u.a
        ORDER BY u.a;
END
$$;
