-- The deletes of read-model rows, each an index lookup of the keys it deletes whatever plan
-- PostgreSQL caches for it. The removed-step delete, a join against the JSON rows, was cached as
-- a hash join over a whole index of step_view when planned while the table was nearly empty
-- (seen in EXPLAIN of the generic plan), and kept as the table grew. `key = ANY (ARRAY(...))` is
-- an index condition in every plan, so only the rows of the given keys are read; the other
-- deletes take the same form, and cancelled timers go in one statement instead of one each.
-- Sequential scans are off in the append functions that call this (migration 7).
CREATE OR REPLACE FUNCTION homeward_project(p jsonb) RETURNS void LANGUAGE plpgsql AS $$
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
        WHERE s.plan_id = d.plan_id AND s.step_key = d.step_key
          -- Whatever join is planned, step_view is read only for these plans.
          AND s.plan_id = ANY (ARRAY(SELECT (r->>'plan_id')::uuid
                                     FROM jsonb_array_elements(p->'steps_delete') AS r));
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
        DELETE FROM timers
        WHERE timer_id = ANY (ARRAY(SELECT jsonb_array_elements_text(p->'timers_cancel')::uuid));
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
        WHERE party_id = ANY (ARRAY(SELECT jsonb_array_elements_text(p->'digests_delete')::uuid));
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
