-- The inbox index in the inbox's own order (due date, follow-up date, priority, then a stable
-- tie-break), so that a page of a party's tasks is read in order and stops after the page,
-- instead of sorting all their open tasks on every request.
DROP INDEX step_view_inbox;
CREATE INDEX step_view_inbox ON step_view (assignee, due_at, follow_up_on, priority, plan_id, position)
    WHERE status NOT IN ('done', 'cancelled');
