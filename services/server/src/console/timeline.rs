//! A plan as a picture on a time axis, drawn on the server as SVG: one row per step, its bar
//! from when it can start (the plan's opening, or the latest due date of the steps it waits
//! for) to its due date, labelled in words; overdue steps red *and* labelled, follow-up
//! windows shaded, the milestones (consent, departure, arrival) as markers, and a line for
//! today, all in the viewer's time zone. The same rows are given as a list, which is what a
//! screen reader and a phone show.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Tz;

/// How far the drawing is from its frame.
const WIDTH: f64 = 960.0;
const LABELS: f64 = 230.0;
const RIGHT: f64 = 16.0;
/// Room right of the axis for the words after the last bar.
const WORDS: f64 = 170.0;
const TOP: f64 = 64.0;
const ROW: f64 = 30.0;
const BAR: f64 = 16.0;

/// Where a step stands, as the timeline draws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    Done,
    Cancelled,
    Overdue,
    Blocked,
    Open,
}

impl Standing {
    pub(crate) fn class(self) -> &'static str {
        match self {
            Standing::Done => "done",
            Standing::Cancelled => "cancelled",
            Standing::Overdue => "overdue",
            Standing::Blocked => "blocked",
            Standing::Open => "open",
        }
    }
}

/// A step as the timeline needs it.
#[derive(Debug, Clone)]
pub(crate) struct StepIn {
    pub key: String,
    pub name: String,
    pub standing: Standing,
    pub due_at: Option<DateTime<Utc>>,
    pub follow_up_on: Option<NaiveDate>,
    pub depends_on: Vec<String>,
    /// Where it stands, in words ("Overdue by 3 days", "Done").
    pub words: String,
}

/// A moment of the plan: consent given, departure, arrival.
#[derive(Debug, Clone)]
pub(crate) struct Milestone {
    pub label: String,
    pub at: DateTime<Utc>,
}

/// One row, placed.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub key: String,
    pub name: String,
    pub class: &'static str,
    pub words: String,
    pub y: f64,
    pub text_y: f64,
    /// The bar, when the step has a due date: x and width.
    pub bar: Option<(f64, f64)>,
    /// The stretch from its due date to today, for an overdue step.
    pub late: Option<(f64, f64)>,
    /// The shaded window of a follow-up visit: x and width.
    pub window: Option<(f64, f64)>,
    /// Where its words go: after the bar (there is always room for them).
    pub words_x: f64,
    /// From and to, in the viewer's zone, for the list.
    pub from: String,
    pub due: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Tick {
    pub x: f64,
    pub label: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Marker {
    pub x: f64,
    pub label: String,
    pub when: String,
    /// Markers on the same day stack their labels.
    pub label_y: f64,
}

/// The timeline, placed, for `console/timeline.html`.
#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    pub width: f64,
    pub height: f64,
    pub labels: f64,
    pub rows: Vec<Row>,
    pub ticks: Vec<Tick>,
    pub markers: Vec<Marker>,
    pub today: f64,
    pub today_label: String,
    pub bar_height: f64,
    /// What the picture shows, in one sentence (its accessible description).
    pub summary: String,
}

/// The texts the timeline writes, in the viewer's language.
#[derive(Debug, Clone)]
pub(crate) struct Words {
    pub today: String,
    pub summary: String,
}

fn tenth(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn local_day(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d").to_string()
}

/// The start of `date` in `tz`.
fn start_of(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    date.and_hms_opt(0, 0, 0)
        .and_then(|t| tz.from_local_datetime(&t).earliest())
        .map_or_else(
            || date.and_time(chrono::NaiveTime::MIN).and_utc(),
            |t| t.with_timezone(&Utc),
        )
}

/// Places `steps` and `milestones` on an axis that holds them all, the plan's opening and today.
pub(crate) fn place(
    opened_at: DateTime<Utc>,
    now: DateTime<Utc>,
    steps: &[StepIn],
    milestones: &[Milestone],
    tz: Tz,
    words: Words,
) -> Timeline {
    let due_of = |key: &str| steps.iter().find(|s| s.key == key).and_then(|s| s.due_at);
    // When each step can start: the latest due date among the steps it waits for.
    let starts: Vec<DateTime<Utc>> = steps
        .iter()
        .map(|s| {
            s.depends_on
                .iter()
                .filter_map(|d| due_of(d))
                .max()
                .unwrap_or(opened_at)
                .max(opened_at)
        })
        .collect();
    let mut first = opened_at.min(now);
    let mut last = opened_at.max(now);
    for (step, start) in steps.iter().zip(&starts) {
        first = first.min(*start);
        if let Some(due) = step.due_at {
            first = first.min(due);
            last = last.max(due);
        }
        if let Some(day) = step.follow_up_on {
            last = last.max(start_of(day, tz) + Duration::days(4));
        }
    }
    for m in milestones {
        first = first.min(m.at);
        last = last.max(m.at);
    }
    let span = (last - first).max(Duration::days(14));
    let first = first - span / 20;
    let last = first + span + span / 10;
    let plot_end = WIDTH - RIGHT - WORDS;
    // To a tenth of a unit: finer is invisible, and only makes the page heavier.
    let x = |at: DateTime<Utc>| {
        let fraction = (at - first).num_seconds() as f64 / (last - first).num_seconds() as f64;
        tenth(LABELS + fraction.clamp(0.0, 1.0) * (plot_end - LABELS))
    };
    let rows: Vec<Row> = steps
        .iter()
        .zip(&starts)
        .enumerate()
        .map(|(i, (step, start))| {
            let y = TOP + i as f64 * ROW;
            let bar = step.due_at.map(|due| {
                let from = x(*start);
                (from, tenth((x(due) - from).max(4.0)))
            });
            let late = (step.standing == Standing::Overdue)
                .then_some(step.due_at)
                .flatten()
                .map(|due| (x(due), tenth((x(now) - x(due)).max(2.0))));
            let window = step.follow_up_on.map(|day| {
                let from = x(start_of(day, tz) - Duration::days(3));
                (from, tenth(x(start_of(day, tz) + Duration::days(4)) - from))
            });
            let end = [
                bar.map(|(a, w)| a + w),
                late.map(|(a, w)| a + w),
                window.map(|(a, w)| a + w),
            ]
            .into_iter()
            .flatten()
            .fold(x(*start), f64::max);
            let words_x = end + 6.0;
            Row {
                key: step.key.clone(),
                name: step.name.clone(),
                class: step.standing.class(),
                words: step.words.clone(),
                y,
                text_y: y + BAR - 3.0,
                bar,
                late,
                window,
                words_x,
                from: local_day(*start, tz),
                due: step
                    .due_at
                    .map(|d| local_day(d, tz))
                    .or_else(|| step.follow_up_on.map(|d| d.to_string()))
                    .unwrap_or_default(),
            }
        })
        .collect();
    // Weeks on a short plan, months on a long one; each tick at a day's start in the zone.
    let local_first = first.with_timezone(&tz).date_naive();
    let local_last = last.with_timezone(&tz).date_naive();
    let weekly = (local_last - local_first).num_days() <= 70;
    let mut ticks = Vec::new();
    let mut day = if weekly {
        local_first
            + Duration::days(i64::from(
                (7 - local_first.weekday().num_days_from_monday()) % 7,
            ))
    } else {
        NaiveDate::from_ymd_opt(local_first.year(), local_first.month(), 1)
            .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
            .unwrap_or(local_first)
    };
    while day <= local_last && ticks.len() < 40 {
        ticks.push(Tick {
            x: x(start_of(day, tz)),
            label: if weekly {
                day.format("%d/%m").to_string()
            } else {
                day.format("%Y-%m").to_string()
            },
        });
        day = if weekly {
            day + Duration::days(7)
        } else {
            match day.checked_add_months(chrono::Months::new(1)) {
                Some(d) => d,
                None => break,
            }
        };
    }
    let mut markers: Vec<Marker> = Vec::new();
    for m in milestones {
        let at = x(m.at);
        let stacked = markers.iter().filter(|o| (o.x - at).abs() < 90.0).count();
        markers.push(Marker {
            x: at,
            label: m.label.clone(),
            when: local_day(m.at, tz),
            label_y: 14.0 + stacked as f64 * 13.0,
        });
    }
    let height = TOP + rows.len().max(1) as f64 * ROW + 8.0;
    Timeline {
        width: WIDTH,
        height,
        labels: LABELS,
        rows,
        ticks,
        markers,
        today: x(now),
        today_label: words.today,
        bar_height: BAR,
        summary: words.summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, 9, 0, 0).unwrap()
    }

    fn step(key: &str, due: Option<u32>, standing: Standing, depends_on: &[&str]) -> StepIn {
        StepIn {
            key: key.to_owned(),
            name: key.to_owned(),
            standing,
            due_at: due.map(at),
            follow_up_on: None,
            depends_on: depends_on.iter().map(|d| (*d).to_owned()).collect(),
            words: String::new(),
        }
    }

    fn words() -> Words {
        Words {
            today: "Today".to_owned(),
            summary: String::new(),
        }
    }

    #[test]
    fn a_step_starts_when_the_steps_it_waits_for_are_due_and_ends_when_it_is_due() {
        let steps = [
            step("passport", Some(10), Standing::Done, &[]),
            step("travel", Some(20), Standing::Open, &["passport"]),
            step("later", None, Standing::Open, &["travel"]),
        ];
        let t = place(at(1), at(5), &steps, &[], chrono_tz::UTC, words());
        let (passport_x, passport_w) = t.rows[0].bar.unwrap();
        let (travel_x, _) = t.rows[1].bar.unwrap();
        assert!((passport_x + passport_w - travel_x).abs() < 0.01, "{t:?}");
        assert!(t.rows[2].bar.is_none(), "no bar without a due date");
        assert_eq!(t.rows[1].from, "2026-03-10");
        assert!(t.rows.iter().all(|r| r.late.is_none()));
        assert!(t.today > passport_x && t.today < passport_x + passport_w);
    }

    #[test]
    fn an_overdue_step_is_drawn_late_up_to_today_and_everything_fits_the_frame() {
        let steps = [step("passport", Some(3), Standing::Overdue, &[])];
        let milestones = [Milestone {
            label: "Consent".to_owned(),
            at: at(2),
        }];
        let t = place(at(1), at(20), &steps, &milestones, chrono_tz::UTC, words());
        let (late_x, late_w) = t.rows[0].late.unwrap();
        assert!((late_x + late_w - t.today).abs() < 0.01);
        assert_eq!(t.rows[0].class, "overdue");
        for x in [t.today, t.markers[0].x, late_x] {
            assert!(
                x >= t.labels && x <= WIDTH - RIGHT - WORDS,
                "{x} outside the plot"
            );
        }
        assert!(!t.ticks.is_empty());
    }

    #[test]
    fn a_long_plan_is_marked_by_month_in_the_viewers_zone() {
        let steps = [StepIn {
            follow_up_on: NaiveDate::from_ymd_opt(2026, 9, 1),
            ..step("follow_up_1", None, Standing::Open, &[])
        }];
        let t = place(
            at(1),
            at(2),
            &steps,
            &[],
            "Pacific/Auckland".parse().unwrap(),
            words(),
        );
        assert!(
            t.ticks.iter().any(|k| k.label == "2026-06"),
            "{:?}",
            t.ticks
        );
        assert!(t.rows[0].window.is_some());
    }
}
