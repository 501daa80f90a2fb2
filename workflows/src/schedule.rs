//! When a party wants to hear from Homeward: quiet hours (no reminders at night in their own
//! time zone) and an optional digest schedule (a cron expression, e.g. Mondays at 08:00).

use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScheduleError {
    #[error("'{input}' is not a cron expression ({reason}): use five fields, minute hour day-of-month month day-of-week, e.g. '0 8 * * Mon' for Mondays at 08:00")]
    InvalidCron { input: String, reason: String },
    #[error("the digest schedule '{0}' never fires: choose days that exist, e.g. '0 8 * * Mon'")]
    CronNeverFires(String),
    #[error("the digest schedule '{0}' fires more than once an hour: a digest is sent at most hourly, e.g. '0 8 * * *' for every day at 08:00")]
    CronTooFrequent(String),
    #[error("'{0}' is not a time of day: use HH:MM in 24-hour form, e.g. 20:00")]
    InvalidTimeOfDay(String),
}

/// When reminders are not sent, in the recipient's time zone: from `start` to `end` (across
/// midnight when `start` > `end`; never when they are equal). Serialised as `"HH:MM"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    #[serde(with = "hh_mm")]
    pub start: NaiveTime,
    #[serde(with = "hh_mm")]
    pub end: NaiveTime,
}

impl Default for QuietHours {
    fn default() -> Self {
        Self {
            start: NaiveTime::from_hms_opt(20, 0, 0).expect("a valid time"),
            end: NaiveTime::from_hms_opt(8, 0, 0).expect("a valid time"),
        }
    }
}

/// Parses a time of day given as `HH:MM`.
pub fn time_of_day(s: &str) -> Result<NaiveTime, ScheduleError> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .map_err(|_| ScheduleError::InvalidTimeOfDay(s.chars().take(20).collect()))
}

impl QuietHours {
    /// Quiet hours from two `HH:MM` times (equal times: none).
    pub fn parse(start: &str, end: &str) -> Result<Self, ScheduleError> {
        Ok(Self {
            start: time_of_day(start)?,
            end: time_of_day(end)?,
        })
    }

    /// The instant the quiet hours around `now` end in `time_zone`, or `None` if `now` is not
    /// in them.
    pub fn end_after(&self, now: DateTime<Utc>, time_zone: &str) -> Option<DateTime<Utc>> {
        let tz: Tz = time_zone.parse().unwrap_or(chrono_tz::UTC);
        let local = now.with_timezone(&tz);
        let time = local.time();
        let quiet = if self.start <= self.end {
            time >= self.start && time < self.end
        } else {
            time >= self.start || time < self.end
        };
        if !quiet {
            return None;
        }
        let mut day = local.date_naive();
        if time >= self.start && self.start > self.end {
            day = day.succ_opt()?;
        }
        // The first valid local instant at or after `end` that day (a DST gap skips ahead).
        (0..=120).find_map(|minutes| {
            let candidate = day.and_time(self.end) + Duration::minutes(minutes);
            tz.from_local_datetime(&candidate)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        })
    }
}

mod hh_mm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.format("%H:%M").to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let s = String::deserialize(d)?;
        super::time_of_day(&s).map_err(serde::de::Error::custom)
    }
}

/// A validated digest schedule: the cron expression as the party wrote it (five fields, or the
/// `cron` crate's six or seven with seconds and years).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DigestCron(String);

impl DigestCron {
    pub fn parse(input: &str) -> Result<Self, ScheduleError> {
        let trimmed = input.trim();
        let schedule = Self::schedule_of(trimmed).map_err(|reason| ScheduleError::InvalidCron {
            input: input.chars().take(100).collect(),
            reason,
        })?;
        // Checked in UTC from a fixed instant, so the same expression is always accepted or
        // refused the same way.
        let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single();
        let mut upcoming = from.into_iter().flat_map(|f| schedule.after(&f));
        let (Some(first), Some(second)) = (upcoming.next(), upcoming.next()) else {
            return Err(ScheduleError::CronNeverFires(trimmed.to_owned()));
        };
        if second - first < Duration::hours(1) {
            return Err(ScheduleError::CronTooFrequent(trimmed.to_owned()));
        }
        Ok(Self(trimmed.to_owned()))
    }

    fn schedule_of(expr: &str) -> Result<cron::Schedule, String> {
        if expr.chars().count() > 100 {
            return Err("longer than 100 characters".into());
        }
        let fields = expr.split_whitespace().count();
        // People write five fields; the `cron` crate wants seconds first.
        let full = match fields {
            5 => format!("0 {expr}"),
            6 | 7 => expr.to_owned(),
            n => return Err(format!("it has {n} fields")),
        };
        cron::Schedule::from_str(&full).map_err(|e| e.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first time the schedule fires strictly after `after`, in `time_zone`.
    pub fn next_after(&self, after: DateTime<Utc>, time_zone: &str) -> Option<DateTime<Utc>> {
        let tz: Tz = time_zone.parse().unwrap_or(chrono_tz::UTC);
        let schedule = Self::schedule_of(&self.0).ok()?;
        let next = schedule.after(&after.with_timezone(&tz)).next();
        next.map(|t| t.with_timezone(&Utc))
    }

    /// The latest time the schedule fired at or before `now`, starting from `due` (a time it
    /// fired): after downtime, one digest covers every occurrence that was missed.
    pub fn latest_due(
        &self,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
        time_zone: &str,
    ) -> DateTime<Utc> {
        let mut latest = due;
        while let Some(next) = self.next_after(latest, time_zone) {
            if next > now {
                break;
            }
            latest = next;
        }
        latest
    }
}

impl TryFrom<String> for DigestCron {
    type Error = ScheduleError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<DigestCron> for String {
    fn from(c: DigestCron) -> Self {
        c.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn quiet_hours_end_at_eight_local_time() {
        let quiet = QuietHours::default();
        // 21:30 in Paris (19:30 UTC, summer): quiet until 08:00 Paris the next day (06:00 UTC).
        assert_eq!(
            quiet.end_after(at(2026, 6, 1, 19, 30), "Europe/Paris"),
            Some(at(2026, 6, 2, 6, 0))
        );
        // 06:00 in Lagos (05:00 UTC): quiet until 08:00 Lagos the same day.
        assert_eq!(
            quiet.end_after(at(2026, 6, 1, 5, 0), "Africa/Lagos"),
            Some(at(2026, 6, 1, 7, 0))
        );
        assert_eq!(quiet.end_after(at(2026, 6, 1, 11, 0), "Europe/Paris"), None);
    }

    #[test]
    fn daytime_quiet_hours_do_not_wrap() {
        let lunch = QuietHours::parse("12:00", "14:00").unwrap();
        assert_eq!(
            lunch.end_after(at(2026, 6, 1, 12, 30), "UTC"),
            Some(at(2026, 6, 1, 14, 0))
        );
        assert_eq!(lunch.end_after(at(2026, 6, 1, 21, 0), "UTC"), None);
    }

    #[test]
    fn bad_quiet_hours_are_refused() {
        assert!(matches!(
            QuietHours::parse("25:00", "08:00"),
            Err(ScheduleError::InvalidTimeOfDay(_))
        ));
        assert!(matches!(
            QuietHours::parse("8 pm", "08:00"),
            Err(ScheduleError::InvalidTimeOfDay(_))
        ));
    }

    #[test]
    fn equal_start_and_end_mean_no_quiet_hours() {
        let none = QuietHours::parse("00:00", "00:00").unwrap();
        for hour in 0..24 {
            assert_eq!(none.end_after(at(2026, 6, 1, hour, 30), "UTC"), None);
        }
    }

    #[test]
    fn digest_fires_in_the_partys_time_zone() {
        let mondays = DigestCron::parse("0 8 * * Mon").unwrap();
        // Friday 27 November 2026, noon UTC: next Monday 08:00 in Lagos (UTC+1) is 07:00 UTC.
        let now = at(2026, 11, 27, 12, 0);
        assert_eq!(
            mondays.next_after(now, "Africa/Lagos"),
            Some(at(2026, 11, 30, 7, 0))
        );
        // In New York (UTC-5 in winter) 08:00 is 13:00 UTC.
        assert_eq!(
            mondays.next_after(now, "America/New_York"),
            Some(at(2026, 11, 30, 13, 0))
        );
    }

    #[test]
    fn latest_due_skips_missed_occurrences() {
        let daily = DigestCron::parse("0 8 * * *").unwrap();
        let due = at(2026, 3, 1, 8, 0);
        assert_eq!(
            daily.latest_due(due, at(2026, 3, 5, 9, 0), "UTC"),
            at(2026, 3, 5, 8, 0)
        );
        assert_eq!(daily.latest_due(due, at(2026, 3, 1, 8, 0), "UTC"), due);
    }

    #[test]
    fn bad_cron_expressions_are_refused() {
        for bad in [
            "",
            "every monday",
            "0 8 * *",
            "61 8 * * Mon",
            "0 8 * * Funday",
        ] {
            assert!(
                matches!(
                    DigestCron::parse(bad),
                    Err(ScheduleError::InvalidCron { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            DigestCron::parse("* * * * *"),
            Err(ScheduleError::CronTooFrequent(_))
        ));
        assert!(matches!(
            DigestCron::parse("0 8 30 2 *"),
            Err(ScheduleError::CronNeverFires(_))
        ));
    }
}
