//! Read-model rows in `COPY` text format: the rebuild's bulk path.

use chrono::{DateTime, Utc};
use homeward_store::projection::{DigestRow, PartyRow, PlanRow, StepRow, TimerRow};

/// Rows written with `COPY` (text format) into an empty table: the rebuild's bulk path.
pub(crate) trait CopyRow {
    /// `COPY <table> (<columns>) FROM STDIN`, columns in the order `write` emits them.
    const COPY: &'static str;
    fn write(&self, out: &mut String);
}

/// One row in COPY text format: fields separated by tabs, `\N` for NULL, backslash escapes.
struct CopyLine<'a> {
    out: &'a mut String,
    fields: usize,
}

impl<'a> CopyLine<'a> {
    fn new(out: &'a mut String) -> Self {
        Self { out, fields: 0 }
    }

    fn end(self) {
        self.out.push('\n');
    }
}

fn field(line: &mut CopyLine<'_>, value: Option<&dyn std::fmt::Display>) {
    if line.fields > 0 {
        line.out.push('\t');
    }
    line.fields += 1;
    let out = &mut *line.out;
    let Some(value) = value else {
        out.push_str("\\N");
        return;
    };
    for c in value.to_string().chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339()
}

impl CopyRow for PlanRow {
    const COPY: &'static str = "COPY plan_view (plan_id, version, person_id, template_name, \
        template_version, case_worker, organisation, origin_country, status, suspended, \
        opened_at, departed_at, arrived_at, closed_at, close_reason, next_due_at, steps_total, \
        steps_open, steps_done, steps_blocked) FROM STDIN";
    fn write(&self, out: &mut String) {
        let mut line = CopyLine::new(out);
        field(&mut line, Some(&self.plan_id));
        field(&mut line, Some(&self.version));
        field(&mut line, Some(&self.person_id));
        field(&mut line, Some(&self.template_name));
        field(&mut line, Some(&self.template_version));
        field(&mut line, Some(&self.case_worker));
        field(&mut line, Some(&self.organisation));
        field(&mut line, Some(&self.origin_country));
        field(&mut line, Some(&self.status));
        field(&mut line, Some(&self.suspended));
        field(&mut line, Some(&time(&self.opened_at)));
        field(
            &mut line,
            self.departed_at.map(|t| time(&t)).as_ref().map(|t| t as _),
        );
        field(
            &mut line,
            self.arrived_at.map(|t| time(&t)).as_ref().map(|t| t as _),
        );
        field(
            &mut line,
            self.closed_at.map(|t| time(&t)).as_ref().map(|t| t as _),
        );
        field(&mut line, self.close_reason.as_ref().map(|r| r as _));
        field(
            &mut line,
            self.next_due_at.map(|t| time(&t)).as_ref().map(|t| t as _),
        );
        field(&mut line, Some(&self.steps_total));
        field(&mut line, Some(&self.steps_open));
        field(&mut line, Some(&self.steps_done));
        field(&mut line, Some(&self.steps_blocked));
        line.end();
    }
}

impl CopyRow for StepRow {
    const COPY: &'static str = "COPY step_view (plan_id, step_key, position, kind, title, status, \
        assignee, candidate_group, priority, due_at, follow_up_on, document_status, \
        status_reason) FROM STDIN";
    fn write(&self, out: &mut String) {
        let mut line = CopyLine::new(out);
        field(&mut line, Some(&self.plan_id));
        field(&mut line, Some(&self.step_key));
        field(&mut line, Some(&self.position));
        field(&mut line, Some(&self.kind));
        field(&mut line, Some(&self.title));
        field(&mut line, Some(&self.status));
        field(&mut line, self.assignee.as_ref().map(|a| a as _));
        field(&mut line, self.candidate_group.as_ref().map(|g| g as _));
        field(&mut line, Some(&self.priority));
        field(
            &mut line,
            self.due_at.map(|t| time(&t)).as_ref().map(|t| t as _),
        );
        field(&mut line, self.follow_up_on.as_ref().map(|d| d as _));
        field(&mut line, self.document_status.as_ref().map(|d| d as _));
        field(&mut line, self.status_reason.as_ref().map(|r| r as _));
        line.end();
    }
}

impl CopyRow for TimerRow {
    const COPY: &'static str = "COPY timers (timer_id, plan_id, step_key, kind, fire_at, \
        recipient_party, recipient_role) FROM STDIN";
    fn write(&self, out: &mut String) {
        let mut line = CopyLine::new(out);
        field(&mut line, Some(&self.timer_id));
        field(&mut line, Some(&self.plan_id));
        field(&mut line, Some(&self.step_key));
        field(&mut line, Some(&self.kind));
        field(&mut line, Some(&time(&self.fire_at)));
        field(&mut line, Some(&self.recipient_party));
        field(&mut line, Some(&self.recipient_role));
        line.end();
    }
}

impl CopyRow for DigestRow {
    const COPY: &'static str = "COPY digests (party_id, due_at) FROM STDIN";
    fn write(&self, out: &mut String) {
        let mut line = CopyLine::new(out);
        field(&mut line, Some(&self.party_id));
        field(&mut line, Some(&time(&self.due_at)));
        line.end();
    }
}

impl CopyRow for PartyRow {
    const COPY: &'static str = "COPY party_view (party_id, version, display_name, email, role, \
        organisation, country, language, time_zone, supervisor) FROM STDIN";
    fn write(&self, out: &mut String) {
        let mut line = CopyLine::new(out);
        field(&mut line, Some(&self.party_id));
        field(&mut line, Some(&self.version));
        field(&mut line, Some(&self.display_name));
        field(&mut line, Some(&self.email));
        field(&mut line, Some(&self.role));
        field(&mut line, Some(&self.organisation));
        field(&mut line, Some(&self.country));
        field(&mut line, Some(&self.language));
        field(&mut line, Some(&self.time_zone));
        field(&mut line, self.supervisor.as_ref().map(|s| s as _));
        line.end();
    }
}
