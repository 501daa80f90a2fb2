-- Digests: one row per party with a digest schedule, due at the next occurrence of its cron
-- expression in the party's time zone. Like `timers`, a projection of the party stream (the
-- next occurrence follows from the schedule and the last digest recorded) with claim columns
-- the projection leaves alone while the occurrence stays the same.
CREATE TABLE digests (
    party_id    uuid PRIMARY KEY,
    due_at      timestamptz NOT NULL,
    claimed_by  uuid,
    lease_until timestamptz,
    attempts    integer
);
CREATE INDEX digests_due ON digests (due_at);

-- Server-wide secrets shared by every replica, created on first start: the key that signs
-- partner links. HOMEWARD_LINK_SECRET overrides it.
CREATE TABLE server_secrets (
    name   text PRIMARY KEY,
    secret bytea NOT NULL
);

CREATE OR REPLACE FUNCTION homeward_project(p jsonb) RETURNS void LANGUAGE plpgsql AS $$
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
    IF p ? 'digests_delete' THEN
        DELETE FROM digests
        WHERE party_id IN (SELECT jsonb_array_elements_text(p->'digests_delete')::uuid);
    END IF;
    IF p ? 'digests_upsert' THEN
        -- A new occurrence is a new piece of work: its claim and attempts start afresh.
        INSERT INTO digests (party_id, due_at)
        SELECT party_id, due_at FROM jsonb_to_recordset(p->'digests_upsert')
            AS d(party_id uuid, due_at timestamptz)
        ON CONFLICT (party_id) DO UPDATE SET
            due_at = EXCLUDED.due_at,
            claimed_by = NULL, lease_until = NULL, attempts = NULL
        WHERE digests.due_at IS DISTINCT FROM EXCLUDED.due_at;
    END IF;
END
$$;
