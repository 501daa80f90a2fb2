-- The event log: the single source of truth. Append-only.

-- Every stream, written once when it is created. The head version is not kept here: it is
-- the last row of the stream in `events` (one index probe under the stream lock), which spares
-- every append an UPDATE of this table.
CREATE TABLE streams (
    stream_id   text PRIMARY KEY,
    stream_type text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    -- Insert order, not commit order: catch-up readers order by (tx_id, global_position) and
    -- read only below the oldest running transaction (see read_all in the store).
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text NOT NULL,
    stream_version  bigint NOT NULL CHECK (stream_version > 0),
    -- UUIDv5 of (command id, index): a retried command produces the same ids, and the first
    -- event's id finds the result of a command already appended (idempotency).
    event_id        uuid NOT NULL UNIQUE,
    command_id      uuid NOT NULL,
    event_type      text NOT NULL,
    schema_version  smallint NOT NULL,
    payload         jsonb NOT NULL,
    -- actor, correlation id
    metadata        jsonb NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, stream_version)
) WITH (fillfactor = 100);

CREATE INDEX events_commit_order ON events (tx_id, global_position);

-- Read models, updated in the append's transaction and rebuildable from the log.
CREATE TABLE plan_view (
    plan_id          uuid PRIMARY KEY,
    version          bigint NOT NULL,
    person_id        uuid NOT NULL,
    template_name    text NOT NULL,
    template_version integer NOT NULL,
    case_worker      uuid NOT NULL,
    organisation     text NOT NULL,
    origin_country   text NOT NULL,
    status           text NOT NULL,
    suspended        boolean NOT NULL,
    opened_at        timestamptz NOT NULL,
    departed_at      timestamptz,
    arrived_at       timestamptz,
    closed_at        timestamptz,
    close_reason     text,
    next_due_at      timestamptz,
    steps_total      integer NOT NULL,
    steps_open       integer NOT NULL,
    steps_done       integer NOT NULL,
    steps_blocked    integer NOT NULL
) WITH (fillfactor = 80); -- room for HOT updates: every command rewrites its plan's row
CREATE INDEX plan_view_case_worker ON plan_view (case_worker);
CREATE INDEX plan_view_organisation ON plan_view (organisation, status);

CREATE TABLE step_view (
    plan_id         uuid NOT NULL,
    step_key        text NOT NULL,
    position        integer NOT NULL,
    kind            text NOT NULL,
    title           text NOT NULL,
    status          text NOT NULL,
    assignee        uuid,
    candidate_group text,
    priority        smallint NOT NULL,
    due_at          timestamptz,
    follow_up_on    date,
    document_status text,
    status_reason   text,
    PRIMARY KEY (plan_id, step_key)
) WITH (fillfactor = 80);
-- The inbox: a party's open tasks by due date.
CREATE INDEX step_view_inbox ON step_view (assignee, due_at) WHERE status NOT IN ('done', 'cancelled');

CREATE TABLE party_view (
    party_id     uuid PRIMARY KEY,
    version      bigint NOT NULL,
    display_name text NOT NULL,
    email        text NOT NULL,
    role         text NOT NULL,
    organisation text NOT NULL,
    country      text NOT NULL,
    language     text NOT NULL,
    time_zone    text NOT NULL,
    supervisor   uuid
);

-- Reminder timers derived from plan state (the scheduler claims them).
CREATE TABLE timers (
    timer_id        uuid PRIMARY KEY,
    plan_id         uuid NOT NULL,
    step_key        text NOT NULL,
    kind            text NOT NULL,
    fire_at         timestamptz NOT NULL,
    recipient_party uuid NOT NULL,
    recipient_role  text NOT NULL
);
CREATE INDEX timers_due ON timers (fire_at);
CREATE INDEX timers_plan ON timers (plan_id);

-- Applies a projection change given as JSON arrays of rows (see the store's projection module).
-- One function for commands (a few rows) and rebuilds (many rows); only the parts present run.
CREATE FUNCTION homeward_project(p jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_timer text;
BEGIN
    IF p ? 'plans' THEN
        INSERT INTO plan_view SELECT * FROM jsonb_populate_recordset(NULL::plan_view, p->'plans')
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
    IF p ? 'steps_delete' THEN
        DELETE FROM step_view s
        USING jsonb_to_recordset(p->'steps_delete') AS d(plan_id uuid, step_key text)
        WHERE s.plan_id = d.plan_id AND s.step_key = d.step_key;
    END IF;
    IF p ? 'steps_upsert' THEN
        INSERT INTO step_view SELECT * FROM jsonb_populate_recordset(NULL::step_view, p->'steps_upsert')
        ON CONFLICT (plan_id, step_key) DO UPDATE SET
            (position, kind, title, status, assignee, candidate_group, priority, due_at,
             follow_up_on, document_status, status_reason)
          = ROW(EXCLUDED.position, EXCLUDED.kind, EXCLUDED.title, EXCLUDED.status,
             EXCLUDED.assignee, EXCLUDED.candidate_group, EXCLUDED.priority, EXCLUDED.due_at,
             EXCLUDED.follow_up_on, EXCLUDED.document_status, EXCLUDED.status_reason);
    END IF;
    IF p ? 'timers_cancel' THEN
        -- One primary-key probe per timer: a set-based delete from the JSON array got a cached
        -- generic plan that scanned the table (500 µs instead of 40 µs per command).
        FOR v_timer IN SELECT jsonb_array_elements_text(p->'timers_cancel') LOOP
            DELETE FROM timers WHERE timer_id = v_timer::uuid;
        END LOOP;
    END IF;
    IF p ? 'timers_arm' THEN
        INSERT INTO timers SELECT * FROM jsonb_populate_recordset(NULL::timers, p->'timers_arm')
        ON CONFLICT (timer_id) DO NOTHING;
    END IF;
    IF p ? 'parties' THEN
        INSERT INTO party_view SELECT * FROM jsonb_populate_recordset(NULL::party_view, p->'parties')
        ON CONFLICT (party_id) DO UPDATE SET
            (version, display_name, email, role, organisation, country, language, time_zone,
             supervisor)
          = ROW(EXCLUDED.version, EXCLUDED.display_name, EXCLUDED.email, EXCLUDED.role,
             EXCLUDED.organisation, EXCLUDED.country, EXCLUDED.language, EXCLUDED.time_zone,
             EXCLUDED.supervisor);
    END IF;
END
$$;

-- Appends one command's events to one stream, atomically, with its projection change.
-- p_expected is the version the events were decided on: NULL means "any version", 0 means
-- "the stream must not exist yet". Returns the versions written, or NULLs when the stream is
-- not at p_expected (a conflict: nothing written). A stream that moved past p_expected fails on
-- the unique (stream_id, stream_version) index, and a command appended before fails on the
-- unique event id (derived from the command id): the store maps both. Kept to two statements
-- before the projection: it is the hot path.
CREATE FUNCTION homeward_append(
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
) LANGUAGE plpgsql AS $$
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
CREATE FUNCTION homeward_append_batch(
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
LANGUAGE plpgsql AS $$
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
