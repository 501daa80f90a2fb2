-- The SQL functions of Homeward's PostgreSQL schema (and the trigger that calls one), one
-- current body each. Applied with CREATE OR REPLACE at every start, under the migration lock,
-- after the migrations: change a body here and every database gets it at its next start. A
-- change of a function's arguments or result needs a migration that drops the old one first
-- (CREATE OR REPLACE cannot change them).
--
-- Every append goes through `homeward_append_commands`, with the read-model rows as typed arrays
-- (the composite types of the baseline) in the binary format, except the everyday edit's, which
-- go through `homeward_append_edits`, a leaner entry point that pays for itself (see there).
--
-- The append function runs with sequential scans off and generic plans forced. It looks rows up
-- by key only (a stream's head, an event id, an idempotency key, a read-model row, a timer), so
-- an index probe is right at any table size; but PL/pgSQL caches each statement's plan for the
-- life of the connection, and a plan made while a table was nearly empty (a new deployment, a
-- test) scanned the whole table, and kept doing so as it grew. Measured: every single append
-- scanning `events` after such a start. Left to choose, PL/pgSQL also planned some statements
-- afresh on one call in four (about 150 µs each, more than the statement's own run).

-- The one place that writes read-model rows. Empty (or NULL) arrays are skipped.
-- Deletes look rows up by key in every plan PostgreSQL may cache: the removed-step delete, a join
-- against the given rows, was once cached as a hash join over a whole index of step_view
-- (planned while the table was nearly empty) and kept as the table grew; `key = ANY (ARRAY(...))`
-- is an index condition in every plan.
-- Its form before it wrote person rows.
DROP FUNCTION IF EXISTS homeward_project_rows(homeward_plan_row[], homeward_step_ref[],
    homeward_step_row[], uuid[], homeward_timer_row[], homeward_party_row[], uuid[],
    homeward_digest_row[], homeward_organisation_row[]);

CREATE OR REPLACE FUNCTION homeward_project_rows(
    p_plans          homeward_plan_row[],
    p_steps_delete   homeward_step_ref[],
    p_steps_upsert   homeward_step_row[],
    p_timers_cancel  uuid[],
    p_timers_arm     homeward_timer_row[],
    p_parties        homeward_party_row[],
    p_digests_delete uuid[],
    p_digests_upsert homeward_digest_row[],
    p_organisations  homeward_organisation_row[],
    p_persons        homeward_person_row[]
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
             supervisor, active)
          = ROW(EXCLUDED.version, EXCLUDED.display_name, EXCLUDED.email, EXCLUDED.role,
             EXCLUDED.organisation, EXCLUDED.country, EXCLUDED.language, EXCLUDED.time_zone,
             EXCLUDED.supervisor, EXCLUDED.active);
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
    IF cardinality(p_organisations) > 0 THEN
        INSERT INTO organisation_view SELECT * FROM unnest(p_organisations)
        ON CONFLICT (organisation_id) DO UPDATE SET
            (version, name, kind, country, works_with, retention_months)
          = ROW(EXCLUDED.version, EXCLUDED.name, EXCLUDED.kind, EXCLUDED.country,
             EXCLUDED.works_with, EXCLUDED.retention_months);
    END IF;
    IF cardinality(p_persons) > 0 THEN
        INSERT INTO person_view SELECT * FROM unnest(p_persons)
        ON CONFLICT (person_id) DO UPDATE SET
            (version, organisation, erased_at, held_since)
          = ROW(EXCLUDED.version, EXCLUDED.organisation, EXCLUDED.erased_at,
             EXCLUDED.held_since);
    END IF;
END
$$;

-- Appends the events of one or more commands, each to a stream of its own, in one transaction
-- (the store's group commit), with their read-model rows and the idempotency keys they claim.
--
-- All or nothing. Returns, for the appends in order, `heads`, the version each stream was at, and
-- `refusals`. When `refusals` is NULL, everything was written, each append's events at the
-- versions after its head. Otherwise nothing was written, and `refusals` says why for each
-- append that could not be: 'conflict' (the stream is not at the expected version) or 'key'
-- (its idempotency key was used within the retention); the store then looks for the append's
-- command among the events (a repeated command finds its first result) and appends the others
-- again without it. A repeated command that is not refused fails the call on the unique event
-- id; a race with another writer on a key does so on the keys' primary key: nothing is written
-- either way. p_expected NULL means "at whatever version the stream is", 0 "the stream must not
-- exist yet". The caller sends distinct streams and distinct keys.
--
-- Every lookup is a scalar subquery on a key: never a join, whose method PostgreSQL would choose
-- (and cache) by the table sizes it saw first, and never EXISTS, which it may turn into a hash of
-- the whole table. Measured: a join planned on an empty idempotency_keys table, and an EXISTS on
-- the event id planned on a small events table, went on reading the whole table at every append.
--
-- Few statements on the common path (no key, no refusal): the locks, the heads, the inserts and
-- the projection; the checks between them are PL/pgSQL expressions, which run without an
-- executor. One value back, of a named type, called as `SELECT homeward_append_commands(...)`.
-- Called in FROM as a set-returning function, the calling statement was planned again and its
-- result columns rebuilt from the catalogue at every call (seen with perf; measured: the bare
-- append 0.77 of the build before it in that form, 0.90-0.96 in this one; see BENCHMARKS.md,
-- "The append's entry points").
-- Its form before it wrote person rows and the blind index, which a database started by an
-- earlier build has.
DROP FUNCTION IF EXISTS homeward_append_commands(text[], text[], bigint[], integer[], integer[],
    text[], uuid[], uuid[], text[], smallint[], jsonb[], jsonb[], timestamptz[], uuid[], bytea[],
    text[], text[], bytea[], uuid[], timestamptz[], timestamptz[], homeward_plan_row[],
    homeward_step_ref[], homeward_step_row[], uuid[], homeward_timer_row[], homeward_party_row[],
    uuid[], homeward_digest_row[], homeward_organisation_row[], uuid[], bytea[], bytea[]);

CREATE OR REPLACE FUNCTION homeward_append_commands(
    -- One entry per append.
    p_stream_ids      text[],
    p_stream_types    text[],
    p_expected        bigint[],
    -- One entry per event, in order: its append (1-based), its place in it (1-based), and the
    -- append's stream, command id, metadata and time repeated.
    p_event_appends   integer[],
    p_event_places    integer[],
    p_event_streams   text[],
    p_event_ids       uuid[],
    p_command_ids     uuid[],
    p_event_types     text[],
    p_schema_versions smallint[],
    p_payloads        jsonb[],
    p_metadata        jsonb[],
    p_occurred_at     timestamptz[],
    -- One entry per append, NULL for an append without an idempotency key (each array NULL when
    -- no append has one): the key as stored, and the time before which an earlier use of it has
    -- expired.
    p_key_parties     uuid[],
    p_key_hashes      bytea[],
    p_key_operations  text[],
    p_key_targets     text[],
    p_key_prints      bytea[],
    p_key_commands    uuid[],
    p_key_created_at  timestamptz[],
    p_key_not_before  timestamptz[],
    -- The read-model rows of all the appends.
    p_plans           homeward_plan_row[],
    p_steps_delete    homeward_step_ref[],
    p_steps_upsert    homeward_step_row[],
    p_timers_cancel   uuid[],
    p_timers_arm      homeward_timer_row[],
    p_parties         homeward_party_row[],
    p_digests_delete  uuid[],
    p_digests_upsert  homeward_digest_row[],
    p_organisations   homeward_organisation_row[],
    -- The new data keys of persons whose streams these appends open (NULL when none): the
    -- person, the key wrapped, and the check value of the master key that wrapped it.
    p_person_keys     uuid[],
    p_person_wrapped  bytea[],
    p_person_checks   bytea[],
    -- Their organisations and blind-index terms (hex, separated by spaces; NULL: none).
    p_person_orgs     uuid[],
    p_person_terms    text[],
    p_persons         homeward_person_row[],
    -- Persons already keyed whose blind-index terms these appends replace (NULL when none),
    -- with their organisations and new terms, as above.
    p_indexed         uuid[],
    p_indexed_orgs    uuid[],
    p_indexed_terms   text[]
) RETURNS homeward_append_answer
LANGUAGE plpgsql
-- Index probes whatever the statistics said when a plan was cached (see the top of this file).
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_heads    bigint[];
    v_expired  boolean[];
    v_refusals text[];
    v_stored   bigint;
    v_i        integer;
BEGIN
    -- Every stream's lock, in one order (no deadlocks), before any write: this transaction
    -- takes its xid only after every earlier writer of these streams committed, so each
    -- stream's events reach catch-up readers in version order.
    PERFORM pg_advisory_xact_lock(l.k)
      FROM (SELECT DISTINCT hashtextextended(s, 0) AS k
              FROM unnest(p_stream_ids) AS s ORDER BY 1) AS l;

    -- Each stream's head, one backward index probe per stream. Under the locks, no other writer
    -- moves them. (The ordinality is the function scan's own order: no sort.)
    v_heads := ARRAY(SELECT coalesce((SELECT max(e.stream_version) FROM events e
                                       WHERE e.stream_id = u.s), 0)
                       FROM unnest(p_stream_ids) WITH ORDINALITY AS u(s, o)
                      ORDER BY u.o);

    -- Each key's record, if any (one probe): expired (true), in force (false) or none (NULL).
    IF p_key_parties IS NOT NULL THEN
        v_expired := ARRAY(SELECT CASE WHEN u.kp IS NOT NULL THEN
                                    (SELECT i.created_at < u.nb FROM idempotency_keys i
                                      WHERE i.party_id = u.kp AND i.key_hash = u.kh)
                                  END
                             FROM unnest(p_key_parties, p_key_hashes, p_key_not_before)
                                  WITH ORDINALITY AS u(kp, kh, nb, o)
                            ORDER BY u.o);
    END IF;

    -- What stops each append, if anything: its stream moved, or its key is in force.
    FOR v_i IN 1 .. cardinality(v_heads) LOOP
        IF p_expected[v_i] IS NOT NULL AND p_expected[v_i] <> v_heads[v_i] THEN
            v_refusals := coalesce(v_refusals, array_fill(NULL::text, ARRAY[cardinality(v_heads)]));
            v_refusals[v_i] := 'conflict';
        ELSIF v_expired[v_i] = false THEN
            v_refusals := coalesce(v_refusals, array_fill(NULL::text, ARRAY[cardinality(v_heads)]));
            v_refusals[v_i] := 'key';
        END IF;
    END LOOP;
    IF v_refusals IS NOT NULL THEN
        RETURN ROW(v_refusals, v_heads)::homeward_append_answer;
    END IF;

    -- A repeated command fails here on the unique event id.
    INSERT INTO events (stream_id, stream_version, event_id, command_id, event_type,
                        schema_version, payload, metadata, occurred_at)
    SELECT x.s, v_heads[x.a] + x.n, x.id, x.c, x.t, x.sv, x.p, x.m, x.at
      FROM unnest(p_event_appends, p_event_places, p_event_streams, p_event_ids, p_command_ids,
                  p_event_types, p_schema_versions, p_payloads, p_metadata, p_occurred_at)
           AS x(a, n, s, id, c, t, sv, p, m, at);

    IF 0 = ANY (v_heads) THEN
        INSERT INTO streams (stream_id, stream_type)
        SELECT u.s, u.t FROM unnest(p_stream_ids, p_stream_types, v_heads) AS u(s, t, h)
        WHERE u.h = 0;
    END IF;

    IF p_key_parties IS NOT NULL THEN
        -- An expired record of a key makes way for its new use (rare: most are purged first).
        IF true = ANY (v_expired) THEN
            FOR v_i IN 1 .. cardinality(v_expired) LOOP
                CONTINUE WHEN NOT v_expired[v_i];
                DELETE FROM idempotency_keys
                 WHERE party_id = p_key_parties[v_i] AND key_hash = p_key_hashes[v_i]
                   AND created_at < p_key_not_before[v_i];
            END LOOP;
        END IF;
        -- A key recorded meanwhile by another writer fails here on the primary key.
        INSERT INTO idempotency_keys (party_id, key_hash, operation, target, fingerprint,
                                      command_id, created_at)
        SELECT k.p, k.kh, k.op, k.t, k.fp, k.c, k.ca
          FROM unnest(p_key_parties, p_key_hashes, p_key_operations, p_key_targets,
                      p_key_prints, p_key_commands, p_key_created_at)
               AS k(p, kh, op, t, fp, c, ca)
         WHERE k.p IS NOT NULL;
    END IF;

    IF p_person_keys IS NOT NULL THEN
        -- Only under the database's master key (the first key stored fixes it): a replica
        -- still running with a key rotated away stores nothing it could not read back. One
        -- statement on the common path: the keys wrapped under the key whose check value the
        -- database holds are stored. The statement reads the check once it holds its lock on
        -- `person_keys`, so a rotation (which holds that table while it changes the check)
        -- is seen.
        LOOP
            INSERT INTO person_keys (person_id, wrapped_key, organisation, search_terms)
            SELECT k.p, k.w, k.o, string_to_array(k.t, ' ')
              FROM unnest(p_person_keys, p_person_wrapped, p_person_orgs, p_person_terms,
                          p_person_checks) AS k(p, w, o, t, c)
             WHERE k.c = (SELECT s.secret FROM server_secrets s
                           WHERE s.name = 'master_key_check');
            GET DIAGNOSTICS v_stored = ROW_COUNT;
            EXIT WHEN v_stored = cardinality(p_person_keys);
            -- Not every key stored: the database has no check value yet, or a key was wrapped
            -- under another master key. The first key ever stored writes the check (another
            -- writer's, stored meanwhile, wins), and the keys are stored on the next turn.
            INSERT INTO server_secrets (name, secret)
            SELECT 'master_key_check', p_person_checks[1]
            ON CONFLICT (name) DO NOTHING;
            IF v_stored > 0 OR EXISTS (
                SELECT 1 FROM unnest(p_person_checks) AS c(v)
                 WHERE c.v IS DISTINCT FROM (SELECT s.secret FROM server_secrets s
                                               WHERE s.name = 'master_key_check')) THEN
                RAISE EXCEPTION 'a person key wrapped under another master key than the database''s'
                    USING ERRCODE = 'HWK01';
            END IF;
        END LOOP;
    END IF;

    IF p_indexed IS NOT NULL THEN
        -- Nothing is indexed for an erased person.
        UPDATE person_keys k SET organisation = i.o, search_terms = string_to_array(i.t, ' ')
          FROM unnest(p_indexed, p_indexed_orgs, p_indexed_terms) AS i(p, o, t)
         WHERE k.person_id = i.p AND k.wrapped_key IS NOT NULL;
    END IF;

    PERFORM homeward_project_rows(p_plans, p_steps_delete, p_steps_upsert, p_timers_cancel,
                                  p_timers_arm, p_parties, p_digests_delete, p_digests_upsert,
                                  p_organisations, p_persons);

    RETURN ROW(NULL::text[], v_heads)::homeward_append_answer;
END
$$;

-- The everyday edit's append, a second entry point beside `homeward_append_commands` because it
-- pays for itself: appends of events to streams that exist, each at an exact expected version,
-- with no idempotency key, no person's key or search terms, and no rows but plans', steps' and
-- timers' (the store sends every other batch to `homeward_append_commands`). The versions come
-- from the caller (the expected version plus the event's place). Returns NULL when everything
-- was written (each stream was at its expected version); otherwise nothing was written, and it
-- returns the version each stream was at. It checks the heads in one statement and answers
-- nothing on the common path. Measured against sending the same batches to
-- `homeward_append_commands`: see BENCHMARKS.md, "The append's entry points".
DROP FUNCTION IF EXISTS homeward_append_edits(text[], bigint[], text[], bigint[], uuid[], uuid[],
    text[], smallint[], jsonb[], jsonb[], timestamptz[], homeward_plan_row[], homeward_step_ref[],
    homeward_step_row[], uuid[], homeward_timer_row[]);

CREATE OR REPLACE FUNCTION homeward_append_edits(
    p_stream_ids      text[],
    p_expected        bigint[],
    -- One entry per event, in order, at the versions after its append's expected one.
    p_event_streams   text[],
    p_event_versions  bigint[],
    p_event_ids       uuid[],
    p_command_ids     uuid[],
    p_event_types     text[],
    p_schema_versions smallint[],
    p_payloads        jsonb[],
    p_metadata        jsonb[],
    p_occurred_at     timestamptz[],
    p_plans           homeward_plan_row[],
    p_steps_delete    homeward_step_ref[],
    p_steps_upsert    homeward_step_row[],
    p_timers_cancel   uuid[],
    p_timers_arm      homeward_timer_row[]
) RETURNS bigint[]
LANGUAGE plpgsql
-- Index probes whatever the statistics said when a plan was cached (see the top of this file).
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- Every stream's lock, in one order, before any write, as in homeward_append_commands.
    PERFORM pg_advisory_xact_lock(l.k)
      FROM (SELECT DISTINCT hashtextextended(s, 0) AS k
              FROM unnest(p_stream_ids) AS s ORDER BY 1) AS l;

    -- Each stream's head, one backward index probe per stream, against the expected version.
    IF EXISTS (SELECT FROM unnest(p_stream_ids, p_expected) AS u(s, v)
               WHERE coalesce((SELECT max(e.stream_version) FROM events e
                               WHERE e.stream_id = u.s), 0) <> u.v) THEN
        RETURN ARRAY(SELECT coalesce((SELECT max(e.stream_version) FROM events e
                                       WHERE e.stream_id = u.s), 0)
                       FROM unnest(p_stream_ids) WITH ORDINALITY AS u(s, o)
                      ORDER BY u.o);
    END IF;

    -- A repeated command fails here on the unique event id.
    INSERT INTO events (stream_id, stream_version, event_id, command_id, event_type,
                        schema_version, payload, metadata, occurred_at)
    SELECT * FROM unnest(p_event_streams, p_event_versions, p_event_ids, p_command_ids,
                         p_event_types, p_schema_versions, p_payloads, p_metadata, p_occurred_at);

    PERFORM homeward_project_rows(p_plans, p_steps_delete, p_steps_upsert, p_timers_cancel,
                                  p_timers_arm, NULL, NULL, NULL, NULL, NULL);
    RETURN NULL;
END
$$;

-- The reads of several streams at once: each stream's events after the version given with it
-- (a plan and her person's stream; the plans a page shows), and with them the stored keys of
-- the persons given (NULL event columns, then the key's). Functions rather than statements for
-- their plans: sent as a statement, the arrays' lengths are unknown to a generic plan, which
-- then looks costlier than one made for the values, so PostgreSQL planned the statement afresh
-- at every call (77 µs and 127 µs of planning against 16 µs and 34 µs of running, measured with
-- pg_stat_statements; see BENCHMARKS.md). Here each connection plans them once, by index.
-- A form that also read up to a version, which a database started by an earlier build has.
DROP FUNCTION IF EXISTS homeward_read_streams_after(text[], bigint[], bigint);
CREATE OR REPLACE FUNCTION homeward_read_streams_after(p_streams text[], p_after bigint[])
RETURNS TABLE (global_position bigint, tx_number bigint, stream_id text, stream_version bigint,
               event_id uuid, command_id uuid, event_type text, schema_version smallint,
               payload text, metadata jsonb, occurred_at timestamptz, recorded_at timestamptz)
LANGUAGE plpgsql STABLE
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT e.global_position, e.tx_id::text::bigint, e.stream_id, e.stream_version, e.event_id,
           e.command_id, e.event_type, e.schema_version, e.payload::text, e.metadata,
           e.occurred_at, e.recorded_at
      FROM events e JOIN unnest(p_streams, p_after) AS w(sid, after_version)
        ON e.stream_id = w.sid AND e.stream_version > w.after_version
     ORDER BY e.stream_id, e.stream_version;
END
$$;

-- One stream's events after a version and, when `p_until` is given, up to that version (a state
-- as it was): a command's catch-up of a state it keeps, a subscription's state at an event. A
-- function for its plan, as the reads above: sent as a statement, a generic plan could not know
-- how few events follow the version, looked costlier than one made for the values, and the read
-- was planned afresh at every call. Here it is one range of one index, whatever the statistics
-- said when the plan was made (a join, as above, planned on a log still empty, scanned the whole
-- log once it had grown).
CREATE OR REPLACE FUNCTION homeward_read_stream(p_stream text, p_after bigint, p_until bigint)
RETURNS TABLE (global_position bigint, tx_number bigint, stream_id text, stream_version bigint,
               event_id uuid, command_id uuid, event_type text, schema_version smallint,
               payload text, metadata jsonb, occurred_at timestamptz, recorded_at timestamptz)
LANGUAGE plpgsql STABLE
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT e.global_position, e.tx_id::text::bigint, e.stream_id, e.stream_version, e.event_id,
           e.command_id, e.event_type, e.schema_version, e.payload::text, e.metadata,
           e.occurred_at, e.recorded_at
      FROM events e
     WHERE e.stream_id = p_stream AND e.stream_version > p_after
       AND e.stream_version <= coalesce(p_until, 9223372036854775807)
     ORDER BY e.stream_version;
END
$$;

CREATE OR REPLACE FUNCTION homeward_read_streams_after_with_keys(p_streams text[],
    p_after bigint[], p_persons uuid[])
RETURNS TABLE (global_position bigint, tx_number bigint, stream_id text, stream_version bigint,
               event_id uuid, command_id uuid, event_type text, schema_version smallint,
               payload text, metadata jsonb, occurred_at timestamptz, recorded_at timestamptz,
               key_person uuid, wrapped_key bytea, erased_at timestamptz)
LANGUAGE plpgsql STABLE
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT e.global_position, e.tx_id::text::bigint, e.stream_id, e.stream_version, e.event_id,
           e.command_id, e.event_type, e.schema_version, e.payload::text, e.metadata,
           e.occurred_at, e.recorded_at, NULL::uuid, NULL::bytea, NULL::timestamptz
      FROM events e JOIN unnest(p_streams, p_after) AS w(sid, after_version)
        ON e.stream_id = w.sid AND e.stream_version > w.after_version
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           k.person_id, k.wrapped_key, k.erased_at
      FROM person_keys k WHERE k.person_id = ANY (p_persons)
     ORDER BY 3 NULLS LAST, 4;
END
$$;

-- Every revocation of a token is announced on `homeward_revoked_tokens` when it commits, however
-- it was written (the API, `homeward token revoke`, or an operator's own UPDATE): every replica
-- closes the token's open WebSockets, which rely on the announcement between their checks.
CREATE OR REPLACE FUNCTION homeward_announce_revocation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('homeward_revoked_tokens', NEW.token_id::text);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER api_tokens_revoked
    AFTER UPDATE OF revoked_at ON api_tokens
    FOR EACH ROW
    WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION homeward_announce_revocation();

-- The access audit is append-only: a row, once written, is never changed or deleted.
CREATE OR REPLACE FUNCTION homeward_refuse_audit_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the access audit is append-only: its rows are never changed or deleted';
END
$$;

CREATE OR REPLACE TRIGGER access_log_append_only
    BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW
    EXECUTE FUNCTION homeward_refuse_audit_change();
