-- The SQL functions of Homeward's PostgreSQL schema, one current body each. Applied with
-- CREATE OR REPLACE at every start, under the migration lock, after the migrations: change a
-- body here and every database gets it at its next start. A change of a function's arguments or
-- result needs a migration that drops the old one first (CREATE OR REPLACE cannot change them).
--
-- Three append entry points, each for a case the store meets on its hot path:
-- `homeward_append_exact` takes the common batch (every append at an exact version, each to a
-- stream of its own, none sent before) in a few statements, with typed read-model rows;
-- `homeward_append_batch` decides each append of any other batch on its own (conflicts,
-- repeated commands, a stream twice in one batch); `homeward_append` appends one command at
-- whatever version its stream is. A profile of 16 writers found most of the batch function's
-- time in running its many small statements, which is what the exact one spares the common case.
--
-- The append functions run with sequential scans off and generic plans forced. They look rows up
-- by key only (a stream's head, an event id, a read-model row, a timer), so an index probe is
-- right at any table size; but PL/pgSQL caches each statement's plan for the life of the
-- connection, and a plan made while a table was nearly empty (a new deployment, a test) scanned
-- the whole table, and kept doing so as it grew. Measured: every single append scanning
-- `events` after such a start. Left to choose, PL/pgSQL also planned some statements afresh on
-- one call in four (about 150 µs each, more than the statement's own run).

-- The one place that writes read-model rows. Empty (or NULL) arrays are skipped.
-- Deletes look rows up by key in every plan PostgreSQL may cache: the removed-step delete, a join
-- against the given rows, was once cached as a hash join over a whole index of step_view
-- (planned while the table was nearly empty) and kept as the table grew; `key = ANY (ARRAY(...))`
-- is an index condition in every plan.
CREATE OR REPLACE FUNCTION homeward_project_rows(
    p_plans          homeward_plan_row[],
    p_steps_delete   homeward_step_ref[],
    p_steps_upsert   homeward_step_row[],
    p_timers_cancel  uuid[],
    p_timers_arm     homeward_timer_row[],
    p_parties        homeward_party_row[],
    p_digests_delete uuid[],
    p_digests_upsert homeward_digest_row[]
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(p_plans) > 0 THEN
        INSERT INTO plan_view SELECT * FROM unnest(p_plans)
        ON CONFLICT (plan_id) DO UPDATE SET
            (version, person_id, template_name, template_version, case_worker, organisation,
             origin_country, status, suspended, opened_at, departed_at, arrived_at, closed_at,
             close_reason, next_due_at, steps_total, steps_open, steps_done, steps_blocked)
          = ROW(EXCLUDED.version, EXCLUDED.person_id, EXCLUDED.template_name,
             EXCLUDED.template_version, EXCLUDED.case_worker, EXCLUDED.organisation,
             EXCLUDED.origin_country, EXCLUDED.status, EXCLUDED.suspended, EXCLUDED.opened_at,
             EXCLUDED.departed_at, EXCLUDED.arrived_at, EXCLUDED.closed_at, EXCLUDED.close_reason,
             EXCLUDED.next_due_at, EXCLUDED.steps_total, EXCLUDED.steps_open, EXCLUDED.steps_done,
             EXCLUDED.steps_blocked);
    END IF;
    IF cardinality(p_steps_delete) > 0 THEN
        DELETE FROM step_view s
        USING unnest(p_steps_delete) AS d
        WHERE s.plan_id = d.plan_id AND s.step_key = d.step_key
          -- Whatever join is planned, step_view is read only for these plans.
          AND s.plan_id = ANY (ARRAY(SELECT r.plan_id FROM unnest(p_steps_delete) AS r));
    END IF;
    IF cardinality(p_steps_upsert) > 0 THEN
        INSERT INTO step_view SELECT * FROM unnest(p_steps_upsert)
        ON CONFLICT (plan_id, step_key) DO UPDATE SET
            (position, kind, title, status, assignee, candidate_group, priority, due_at,
             follow_up_on, document_status, status_reason)
          = ROW(EXCLUDED.position, EXCLUDED.kind, EXCLUDED.title, EXCLUDED.status,
             EXCLUDED.assignee, EXCLUDED.candidate_group, EXCLUDED.priority, EXCLUDED.due_at,
             EXCLUDED.follow_up_on, EXCLUDED.document_status, EXCLUDED.status_reason);
    END IF;
    IF cardinality(p_timers_cancel) > 0 THEN
        DELETE FROM timers WHERE timer_id = ANY (p_timers_cancel);
    END IF;
    IF cardinality(p_timers_arm) > 0 THEN
        INSERT INTO timers (timer_id, plan_id, step_key, kind, fire_at, recipient_party,
                            recipient_role)
        SELECT * FROM unnest(p_timers_arm)
        ON CONFLICT (timer_id) DO NOTHING;
    END IF;
    IF cardinality(p_parties) > 0 THEN
        INSERT INTO party_view SELECT * FROM unnest(p_parties)
        ON CONFLICT (party_id) DO UPDATE SET
            (version, display_name, email, role, organisation, country, language, time_zone,
             supervisor)
          = ROW(EXCLUDED.version, EXCLUDED.display_name, EXCLUDED.email, EXCLUDED.role,
             EXCLUDED.organisation, EXCLUDED.country, EXCLUDED.language, EXCLUDED.time_zone,
             EXCLUDED.supervisor);
    END IF;
    IF cardinality(p_digests_delete) > 0 THEN
        DELETE FROM digests WHERE party_id = ANY (p_digests_delete);
    END IF;
    IF cardinality(p_digests_upsert) > 0 THEN
        -- A new occurrence is a new piece of work: its claim and attempts start afresh.
        INSERT INTO digests (party_id, due_at)
        SELECT * FROM unnest(p_digests_upsert)
        ON CONFLICT (party_id) DO UPDATE SET
            due_at = EXCLUDED.due_at,
            claimed_by = NULL, lease_until = NULL, attempts = NULL
        WHERE digests.due_at IS DISTINCT FROM EXCLUDED.due_at;
    END IF;
END
$$;

-- The JSON form, still taken by homeward_append and homeward_append_batch: converted to the
-- typed rows and written by homeward_project_rows, so both forms write alike.
CREATE OR REPLACE FUNCTION homeward_project(p jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM homeward_project_rows(
        ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_plan_row, p->'plans') AS r),
        ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_step_ref, p->'steps_delete') AS r),
        ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_step_row, p->'steps_upsert') AS r),
        ARRAY(SELECT t::uuid FROM jsonb_array_elements_text(p->'timers_cancel') AS t),
        ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_timer_row, p->'timers_arm') AS r),
        ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_party_row, p->'parties') AS r),
        ARRAY(SELECT t::uuid FROM jsonb_array_elements_text(p->'digests_delete') AS t),
        ARRAY(SELECT r FROM jsonb_populate_recordset(NULL::homeward_digest_row, p->'digests_upsert') AS r));
END
$$;

-- Appends one command's events to one stream, atomically, with its projection change.
-- p_expected is the version the events were decided on: NULL means "any version", 0 means
-- "the stream must not exist yet". Returns the versions written, or NULLs when the stream is
-- not at p_expected (a conflict: nothing written). A stream that moved past p_expected fails on
-- the unique (stream_id, stream_version) index, and a command appended before fails on the
-- unique event id (derived from the command id): the store maps both. Kept to two statements
-- before the projection: it is the hot path.
CREATE OR REPLACE FUNCTION homeward_append(
    p_stream_id       text,
    p_stream_type     text,
    p_expected        bigint,
    p_command_id      uuid,
    p_event_ids       uuid[],
    p_types           text[],
    p_schema_versions smallint[],
    p_payloads        jsonb[],
    p_metadata        jsonb,
    p_occurred_at     timestamptz,
    p_projection      jsonb,
    OUT first_version bigint,
    OUT last_version  bigint
) LANGUAGE plpgsql
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_base    bigint := p_expected;
    v_count   integer := cardinality(p_event_ids);
    v_written integer;
BEGIN
    -- The stream lock comes before any write, so this transaction takes its xid only after every
    -- earlier writer of the stream committed: one stream's events reach readers in version order.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_stream_id, 0));

    IF v_base IS NULL THEN
        SELECT coalesce(max(e.stream_version), 0) INTO v_base
        FROM events e WHERE e.stream_id = p_stream_id;
    END IF;

    -- Written only if the stream is at v_base: its event v_base exists (or v_base is 0), and
    -- v_base + 1 does not (the unique index).
    INSERT INTO events (stream_id, stream_version, event_id, command_id, event_type,
                        schema_version, payload, metadata, occurred_at)
    SELECT p_stream_id, v_base + e.ord, e.id, p_command_id, e.t, e.v, e.p, p_metadata,
           p_occurred_at
    FROM unnest(p_event_ids, p_types, p_schema_versions, p_payloads)
         WITH ORDINALITY AS e(id, t, v, p, ord)
    WHERE v_base = 0 OR EXISTS (SELECT 1 FROM events h
                                WHERE h.stream_id = p_stream_id AND h.stream_version = v_base)
    ORDER BY e.ord;
    GET DIAGNOSTICS v_written = ROW_COUNT;
    IF v_written = 0 THEN
        RETURN;
    END IF;

    IF v_base = 0 THEN
        INSERT INTO streams (stream_id, stream_type) VALUES (p_stream_id, p_stream_type);
    END IF;

    IF p_projection IS NOT NULL THEN
        PERFORM homeward_project(p_projection);
    END IF;

    first_version := v_base + 1;
    last_version := v_base + v_count;
END
$$;

-- Appends a batch of commands, each to one stream, in one transaction: group commit. Under
-- load the store gathers concurrent appends so they share one commit and one statement per
-- table. Each append still succeeds or fails on its own: outcome 'appended', 'duplicate' (this
-- command id was appended before: nothing written, its first result returned) or 'conflict'
-- (the stream is not at the expected version: nothing written). Expected NULL means "any
-- version", 0 means "the stream must not exist yet". Events are given flat, in order, each
-- with the 1-based index of its append.
CREATE OR REPLACE FUNCTION homeward_append_batch(
    p_stream_ids      text[],
    p_stream_types    text[],
    p_expected        bigint[],
    p_command_ids     uuid[],
    p_metadata        jsonb[],
    p_occurred_at     timestamptz[],
    p_projections     jsonb[],
    p_event_append    integer[],
    p_event_ids       uuid[],
    p_event_types     text[],
    p_schema_versions smallint[],
    p_payloads        jsonb[],
    -- All the projections merged by the caller (streams all distinct), sent instead of
    -- p_projections: valid only if every append goes through (the common case). Otherwise the
    -- call fails with SQLSTATE HW001 and the caller sends the batch again unmerged.
    p_merged          jsonb
) RETURNS TABLE (append_index integer, outcome text, first_version bigint, last_version bigint)
LANGUAGE plpgsql
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_n           integer := cardinality(p_stream_ids);
    v_lock        bigint;
    v_streams     text[];    -- distinct streams of the batch
    v_heads       bigint[];  -- their head versions, moved forward as appends are accepted
    v_first_event integer[]; -- index of each append's first event
    v_count       integer[]; -- number of events of each append
    v_duplicate   boolean[];
    v_outcome     text[];
    v_from        bigint[];  -- version before each accepted append
    v_slot        integer;
    v_i           integer;
    v_e           integer;
    v_versions    bigint[] := '{}';
    v_accepted    boolean[] := '{}';
    v_repeated    boolean := false;
    v_merged      jsonb := '{}';
    v_key         text;
BEGIN
    -- Every stream's lock, in one order (no deadlocks), before any write: this transaction
    -- takes its xid only after earlier writers of these streams committed, so each stream's
    -- events reach catch-up readers in version order.
    SELECT array_agg(DISTINCT s ORDER BY s) INTO v_streams FROM unnest(p_stream_ids) AS s;
    FOR v_lock IN SELECT DISTINCT hashtextextended(s, 0) FROM unnest(v_streams) AS s ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(v_lock);
    END LOOP;
    v_repeated := cardinality(v_streams) < v_n;

    -- Each stream's head: one backward index probe per stream.
    SELECT array_agg(coalesce((SELECT max(e.stream_version) FROM events e WHERE e.stream_id = s), 0)
                     ORDER BY o)
      INTO v_heads
      FROM unnest(v_streams) WITH ORDINALITY AS u(s, o);

    -- Where each append's events start, and whether its first event id exists already.
    SELECT array_agg(f ORDER BY a), array_agg(c ORDER BY a)
      INTO v_first_event, v_count
      FROM (SELECT a, min(i)::integer AS f, count(*)::integer AS c
              FROM unnest(p_event_append) WITH ORDINALITY AS x(a, i) GROUP BY a) g;
    SELECT array_agg(EXISTS (SELECT 1 FROM events e WHERE e.event_id = p_event_ids[f]) ORDER BY o)
      INTO v_duplicate
      FROM unnest(v_first_event) WITH ORDINALITY AS u(f, o);

    -- Decide each append in order, against the heads as the batch moves them.
    v_outcome := array_fill(NULL::text, ARRAY[v_n]);
    v_from := array_fill(NULL::bigint, ARRAY[v_n]);
    FOR v_i IN 1 .. v_n LOOP
        v_slot := array_position(v_streams, p_stream_ids[v_i]);
        IF v_duplicate[v_i] THEN
            v_outcome[v_i] := 'duplicate';
        ELSIF p_expected[v_i] IS NOT NULL AND p_expected[v_i] <> v_heads[v_slot] THEN
            v_outcome[v_i] := 'conflict';
        ELSE
            v_outcome[v_i] := 'appended';
            v_from[v_i] := v_heads[v_slot];
            v_heads[v_slot] := v_heads[v_slot] + v_count[v_i];
        END IF;
    END LOOP;

    -- Every accepted event in one statement.
    FOR v_e IN 1 .. cardinality(p_event_append) LOOP
        v_i := p_event_append[v_e];
        v_accepted := v_accepted || (v_outcome[v_i] = 'appended');
        v_versions := v_versions || (v_from[v_i] + v_e - v_first_event[v_i] + 1);
    END LOOP;
    INSERT INTO events (stream_id, stream_version, event_id, command_id, event_type,
                        schema_version, payload, metadata, occurred_at)
    SELECT p_stream_ids[a], v, id, p_command_ids[a], t, sv, p, p_metadata[a], p_occurred_at[a]
    FROM unnest(p_event_append, v_versions, p_event_ids, p_event_types, p_schema_versions,
                p_payloads, v_accepted) WITH ORDINALITY AS x(a, v, id, t, sv, p, ok, o)
    WHERE ok
    ORDER BY o;

    INSERT INTO streams (stream_id, stream_type)
    SELECT DISTINCT ON (p_stream_ids[i]) p_stream_ids[i], p_stream_types[i]
    FROM generate_series(1, v_n) AS i
    WHERE v_outcome[i] = 'appended' AND v_from[i] = 0
    ORDER BY p_stream_ids[i], i;

    -- Projections: merged into one call when each stream appears once; in order otherwise
    -- (a later change of the same plan must apply after the earlier one).
    IF p_merged IS NOT NULL THEN
        IF v_repeated OR NOT ('appended' = ALL (v_outcome)) THEN
            RAISE EXCEPTION 'merged projection needs every append of distinct streams to go through'
                USING ERRCODE = 'HW001';
        END IF;
        PERFORM homeward_project(p_merged);
    END IF;
    FOR v_i IN 1 .. cardinality(p_projections) LOOP
        CONTINUE WHEN v_outcome[v_i] <> 'appended' OR p_projections[v_i] IS NULL;
        IF v_repeated THEN
            PERFORM homeward_project(p_projections[v_i]);
        ELSE
            FOR v_key IN SELECT jsonb_object_keys(p_projections[v_i]) LOOP
                v_merged := jsonb_set(v_merged, ARRAY[v_key],
                    coalesce(v_merged->v_key, '[]') || (p_projections[v_i]->v_key));
            END LOOP;
        END IF;
    END LOOP;
    IF v_merged <> '{}' THEN
        PERFORM homeward_project(v_merged);
    END IF;

    FOR v_i IN 1 .. v_n LOOP
        append_index := v_i;
        outcome := v_outcome[v_i];
        IF outcome = 'appended' THEN
            first_version := v_from[v_i] + 1;
            last_version := v_from[v_i] + v_count[v_i];
        ELSIF outcome = 'conflict' THEN
            first_version := v_heads[array_position(v_streams, p_stream_ids[v_i])];
            last_version := first_version;
        ELSE
            SELECT min(e.stream_version), max(e.stream_version) INTO first_version, last_version
            FROM events e
            WHERE e.stream_id = (SELECT d.stream_id FROM events d
                                 WHERE d.event_id = p_event_ids[v_first_event[v_i]])
              AND e.command_id = p_command_ids[v_i];
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

-- The common batch: every append at an exact version (0 for a new stream), each to a stream of
-- its own, none appended before. All or nothing: if an append is not at its version the call
-- fails with SQLSTATE HW001, and if one was appended before it fails on the unique event id;
-- nothing is written either way, and the store then sends the batch to homeward_append_batch,
-- which decides each append on its own.
CREATE OR REPLACE FUNCTION homeward_append_exact(
    -- One entry per append.
    p_stream_ids      text[],
    p_stream_types    text[],
    p_expected        bigint[],
    -- One entry per event, in order: an append's events follow one another, at the versions
    -- after its expected one.
    p_event_streams   text[],
    p_event_versions  bigint[],
    p_event_ids       uuid[],
    p_command_ids     uuid[],
    p_event_types     text[],
    p_schema_versions smallint[],
    p_payloads        jsonb[],
    p_metadata        jsonb[],
    p_occurred_at     timestamptz[],
    -- The read-model rows of all the appends (their streams are distinct).
    p_plans           homeward_plan_row[],
    p_steps_delete    homeward_step_ref[],
    p_steps_upsert    homeward_step_row[],
    p_timers_cancel   uuid[],
    p_timers_arm      homeward_timer_row[],
    p_parties         homeward_party_row[],
    p_digests_delete  uuid[],
    p_digests_upsert  homeward_digest_row[]
) RETURNS void
LANGUAGE plpgsql
-- Index probes whatever the statistics said when a plan was cached (see the top of this file).
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- Every stream's lock, in one order (no deadlocks), before any write: as in
    -- homeward_append_batch, so each stream's events reach catch-up readers in version order.
    PERFORM pg_advisory_xact_lock(l.k)
      FROM (SELECT DISTINCT hashtextextended(s, 0) AS k
              FROM unnest(p_stream_ids) AS s ORDER BY 1) AS l;

    -- Each stream's head, one backward index probe per stream. Under the locks, no other writer
    -- moves them.
    IF EXISTS (SELECT FROM unnest(p_stream_ids, p_expected) AS u(s, v)
               WHERE coalesce((SELECT max(e.stream_version) FROM events e
                               WHERE e.stream_id = u.s), 0) <> u.v) THEN
        RAISE EXCEPTION 'an append of this batch is not at its expected version'
            USING ERRCODE = 'HW001';
    END IF;

    -- An append sent before fails here on the unique event id, and the whole call with it.
    INSERT INTO events (stream_id, stream_version, event_id, command_id, event_type,
                        schema_version, payload, metadata, occurred_at)
    SELECT * FROM unnest(p_event_streams, p_event_versions, p_event_ids, p_command_ids,
                         p_event_types, p_schema_versions, p_payloads, p_metadata, p_occurred_at);

    IF 0 = ANY (p_expected) THEN
        INSERT INTO streams (stream_id, stream_type)
        SELECT u.s, u.t FROM unnest(p_stream_ids, p_stream_types, p_expected) AS u(s, t, v)
        WHERE u.v = 0;
    END IF;

    PERFORM homeward_project_rows(p_plans, p_steps_delete, p_steps_upsert, p_timers_cancel,
                                  p_timers_arm, p_parties, p_digests_delete, p_digests_upsert);
END
$$;
