-- The read-model rows travel as arrays of typed records in PostgreSQL's binary format instead
-- of JSON, and the common batch append does less work per call.
--
-- Before, every command's rows were serialised to JSON text by the store, parsed into jsonb by
-- the server, and turned field by field back into text and then into uuid, timestamptz and so
-- on by jsonb_populate_recordset. A profile of 16 writers put parsing the parameters alone at
-- 8–12% of PostgreSQL's CPU. Binary records arrive as the values themselves.
--
-- `homeward_append_exact` (migration 6) is replaced: the store now sends every event's stream
-- and version (the version is the append's expected version plus the event's place in it, and
-- the call fails unless each stream is at its expected version), so the events are inserted
-- straight from the arrays with no window function or sort, and the call returns nothing:
-- when it succeeds, each append is at exactly the versions the store sent.

-- The rows the store sends; each has the columns of its table, in the table's order.
CREATE TYPE homeward_plan_row AS (
    plan_id uuid, version bigint, person_id uuid, template_name text, template_version integer,
    case_worker uuid, organisation text, origin_country text, status text, suspended boolean,
    opened_at timestamptz, departed_at timestamptz, arrived_at timestamptz,
    closed_at timestamptz, close_reason text, next_due_at timestamptz, steps_total integer,
    steps_open integer, steps_done integer, steps_blocked integer
);
CREATE TYPE homeward_step_row AS (
    plan_id uuid, step_key text, position integer, kind text, title text, status text,
    assignee uuid, candidate_group text, priority smallint, due_at timestamptz,
    follow_up_on date, document_status text, status_reason text
);
CREATE TYPE homeward_step_ref AS (plan_id uuid, step_key text);
-- A timer as the projection arms it: `timers` without the scheduler's claim columns.
CREATE TYPE homeward_timer_row AS (
    timer_id uuid, plan_id uuid, step_key text, kind text, fire_at timestamptz,
    recipient_party uuid, recipient_role text
);
CREATE TYPE homeward_party_row AS (
    party_id uuid, version bigint, display_name text, email text, role text,
    organisation text, country text, language text, time_zone text, supervisor uuid
);
CREATE TYPE homeward_digest_row AS (party_id uuid, due_at timestamptz);

-- The one place that writes read-model rows. Empty (or NULL) arrays are skipped.
-- Deletes look rows up by key in every plan PostgreSQL may cache (see migration 9).
CREATE FUNCTION homeward_project_rows(
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

DROP FUNCTION homeward_append_exact(text[], text[], bigint[], uuid[], jsonb[], timestamptz[],
                                    integer[], uuid[], text[], smallint[], jsonb[], jsonb);

-- The common batch: every append at an exact version (0 for a new stream), each to a stream of
-- its own, none appended before. All or nothing: if an append is not at its version the call
-- fails with SQLSTATE HW001, and if one was appended before it fails on the unique event id;
-- nothing is written either way, and the store then sends the batch to homeward_append_batch,
-- which decides each append on its own.
CREATE FUNCTION homeward_append_exact(
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
-- Index probes whatever the statistics said when a plan was cached (migrations 7 and 8).
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
