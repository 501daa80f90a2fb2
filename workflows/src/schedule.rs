//! When a party wants to hear from Homeward: quiet hours (no reminders at night in their own
//! time zone) and an optional digest schedule (a cron expression, e.g. Mondays at 08:00).

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveTime, TimeZone, Utc};
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

/// Writes the numbered days of a day-of-week field as names (0 and 7: Sun, 1: Mon, ...);
/// numbers after `/` are steps and stay.
fn weekday_names(field: &str) -> Result<String, String> {
    const NAMES: [&str; 8] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let mut out = String::with_capacity(field.len() + 8);
    let mut chars = field.chars().peekable();
    let mut after_slash = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut number = String::from(c);
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                number.push(d);
                chars.next();
            }
            if after_slash {
                out.push_str(&number);
            } else {
                let day = number
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| NAMES.get(n))
                    .ok_or_else(|| format!("day of week {number} is not 0-7"))?;
                out.push_str(day);
            }
        } else {
            after_slash = c == '/';
            out.push(c);
        }
    }
    Ok(out)
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

/// A validated digest schedule: a standard five-field cron expression (minute, hour, day of
/// month, month, day of week with 0 or 7 = Sunday) as the party wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
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

    /// The `cron` crate's schedule for a standard five-field expression: it wants seconds
    /// first, and counts days of the week from 1 = Sunday where cron has 0 (or 7) = Sunday and
    /// 1 = Monday, so numbered days are written as names.
    fn schedule_of(expr: &str) -> Result<cron::Schedule, String> {
        if expr.chars().count() > 100 {
            return Err("longer than 100 characters".into());
        }
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!("it has {} fields", fields.len()));
        };
        let weekday = weekday_names(weekday)?;
        cron::Schedule::from_str(&format!("0 {minute} {hour} {day} {month} {weekday}"))
            .map_err(|e| e.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first time the schedule fires strictly after `after`, in `time_zone`. The schedule
    /// is read in wall-clock time: a time that does not exist that day (the clocks go forward)
    /// fires at the first minute that does; a time that occurs twice (the clocks go back) fires
    /// once, at the first.
    pub fn next_after(&self, after: DateTime<Utc>, time_zone: &str) -> Option<DateTime<Utc>> {
        let tz: Tz = time_zone.parse().unwrap_or(chrono_tz::UTC);
        let schedule = Self::schedule_of(&self.0).ok()?;
        // Wall-clock occurrences (as if local time were UTC), from a little before `after`.
        let local_after = after.with_timezone(&tz).naive_local();
        let from = Utc.from_utc_datetime(&(local_after - Duration::hours(3)));
        schedule.after(&from).take(1_000).find_map(|occurrence| {
            let wall = occurrence.naive_utc();
            let instant = match tz.from_local_datetime(&wall) {
                LocalResult::Single(t) => t.with_timezone(&Utc),
                // Once, at the first of the two, as cron does.
                LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
                LocalResult::None => (1..=180).find_map(|minutes| {
                    tz.from_local_datetime(&(wall + Duration::minutes(minutes)))
                        .earliest()
                        .map(|t| t.with_timezone(&Utc))
                })?,
            };
            (instant > after).then_some(instant)
        })
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

/// A stored schedule is read back as it was recorded (it was checked then), so that a stricter
/// check later never makes a party's events unreadable; one that no longer parses never fires.
impl From<String> for DigestCron {
    fn from(s: String) -> Self {
        Self(s)
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
    fn numbered_days_of_the_week_are_cron_numbers() {
        // Friday 27 November 2026, noon UTC.
        let now = at(2026, 11, 27, 12, 0);
        let monday = DigestCron::parse("0 8 * * 1").unwrap();
        assert_eq!(monday.next_after(now, "UTC"), Some(at(2026, 11, 30, 8, 0)));
        for sunday in ["0 8 * * 0", "0 8 * * 7"] {
            let sunday = DigestCron::parse(sunday).unwrap();
            assert_eq!(sunday.next_after(now, "UTC"), Some(at(2026, 11, 29, 8, 0)));
        }
        let weekdays = DigestCron::parse("0 8 * * 1-5").unwrap();
        assert_eq!(
            weekdays.next_after(now, "UTC"),
            Some(at(2026, 11, 30, 8, 0))
        );
        assert_eq!(
            weekdays.next_after(at(2026, 11, 26, 12, 0), "UTC"),
            Some(at(2026, 11, 27, 8, 0))
        );
        assert!(matches!(
            DigestCron::parse("0 8 * * 8"),
            Err(ScheduleError::InvalidCron { .. })
        ));
    }

    #[test]
    fn daylight_saving_gaps_and_folds_neither_lose_nor_repeat_a_digest() {
        // 29 March 2026 in Paris: 02:00 does not exist (the clocks go to 03:00 CEST, 01:00 UTC).
        let sunday_two = DigestCron::parse("0 2 * * Sun").unwrap();
        assert_eq!(
            sunday_two.next_after(at(2026, 3, 28, 12, 0), "Europe/Paris"),
            Some(at(2026, 3, 29, 1, 0))
        );
        // 25 October 2026: 02:30 happens twice (00:30 UTC in CEST, 01:30 UTC in CET): the
        // digest goes once, at the first; then the next day, never earlier than asked.
        let half_past_two = DigestCron::parse("30 2 * * *").unwrap();
        assert_eq!(
            half_past_two.next_after(at(2026, 10, 24, 12, 0), "Europe/Paris"),
            Some(at(2026, 10, 25, 0, 30))
        );
        for after in [at(2026, 10, 25, 0, 30), at(2026, 10, 25, 1, 0)] {
            assert_eq!(
                half_past_two.next_after(after, "Europe/Paris"),
                Some(at(2026, 10, 26, 1, 30))
            );
        }
    }

    #[test]
    fn a_stored_schedule_loads_even_if_it_would_be_refused_now() {
        let stored: DigestCron = serde_json::from_str("\"0 0 8 * * Mon\"").unwrap();
        assert_eq!(stored.as_str(), "0 0 8 * * Mon");
        // Six fields no longer parse: it never fires rather than failing the party's stream.
        assert_eq!(stored.next_after(at(2026, 3, 1, 0, 0), "UTC"), None);
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
