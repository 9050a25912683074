//! Server schedules in regsync's syntax (SRV-4, SRV-5): robfig/cron v3's
//! five-field specs, descriptors, `@every <duration>` and a `TZ=`/`CRON_TZ=`
//! prefix, plus step intervals.
//!
//! Specs are checked against robfig's grammar here (so what regsync rejects,
//! we reject, with its messages), then each field is expanded into an explicit
//! list for `croner`, which computes the fire times. robfig's day rule is kept:
//! day-of-month and day-of-week are OR-ed unless either starts with `*` or `?`.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use crate::duration::GoDuration;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Fire at cron times, in a named zone or local time.
    Cron {
        /// The spec as written.
        spec: String,
        /// `TZ=`/`CRON_TZ=` zone; `None` means local time (`TZ` environment).
        zone: Option<Tz>,
        /// The expanded pattern.
        cron: Box<Cron>,
    },
    /// Fire every fixed period, first one period after start.
    Every(Duration),
}

/// Why a schedule was rejected; texts follow robfig/cron.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Nothing to parse.
    #[error("empty spec string")]
    Empty,
    /// Unknown time zone in the prefix.
    #[error("provided bad location {0}: unknown time zone")]
    BadLocation(String),
    /// `@something` that is not a known descriptor.
    #[error("unrecognized descriptor: {0}")]
    UnknownDescriptor(String),
    /// `@every` with a bad duration.
    #[error("failed to parse duration {spec}: {reason}")]
    BadDuration {
        /// The whole descriptor.
        spec: String,
        /// Why the duration failed.
        reason: String,
    },
    /// Not exactly five fields.
    #[error("expected exactly 5 fields, found {count}: [{fields}]")]
    FieldCount {
        /// How many fields were given.
        count: usize,
        /// The fields, space separated.
        fields: String,
    },
    /// A field that does not follow the grammar.
    #[error("{field} field \"{text}\": {reason}")]
    Field {
        /// minute, hour, day-of-month, month or day-of-week.
        field: &'static str,
        /// The field as written.
        text: String,
        /// What is wrong.
        reason: String,
    },
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MONTHS: &[(&str, u32)] = &[
    ("jan", 1),
    ("feb", 2),
    ("mar", 3),
    ("apr", 4),
    ("may", 5),
    ("jun", 6),
    ("jul", 7),
    ("aug", 8),
    ("sep", 9),
    ("oct", 10),
    ("nov", 11),
    ("dec", 12),
];
const WEEKDAYS: &[(&str, u32)] = &[("sun", 0), ("mon", 1), ("tue", 2), ("wed", 3), ("thu", 4), ("fri", 5), ("sat", 6)];

const FIELDS: [FieldSpec; 5] = [
    FieldSpec { name: "minute", min: 0, max: 59, names: &[] },
    FieldSpec { name: "hour", min: 0, max: 23, names: &[] },
    FieldSpec { name: "day-of-month", min: 1, max: 31, names: &[] },
    FieldSpec { name: "month", min: 1, max: 12, names: MONTHS },
    // 7 is accepted as Sunday, as in most crons (robfig itself stops at 6).
    FieldSpec { name: "day-of-week", min: 0, max: 7, names: WEEKDAYS },
];

impl FieldSpec {
    /// The largest value `*` and `N/step` reach (day-of-week stops at Saturday).
    fn top(&self) -> u32 {
        if self.name == "day-of-week" { 6 } else { self.max }
    }
}

/// The set of values one field selects, and whether robfig would call it a star.
struct Expanded {
    values: Vec<u32>,
    star: bool,
}

fn parse_number(spec: &FieldSpec, text: &str) -> Result<u32, String> {
    if let Some((_, v)) = spec.names.iter().find(|(n, _)| n.eq_ignore_ascii_case(text)) {
        return Ok(*v);
    }
    text.parse::<i64>()
        .map_err(|_| format!("failed to parse int from {text}"))
        .and_then(|n| u32::try_from(n).map_err(|_| format!("negative number ({n}) not allowed: {text}")))
}

fn expand_field(spec: &FieldSpec, text: &str) -> Result<Expanded, ScheduleError> {
    let fail = |reason: String| ScheduleError::Field { field: spec.name, text: text.to_string(), reason };
    let mut bits = vec![false; spec.max as usize + 1];
    let mut star = false;
    for expr in text.split(',') {
        let mut slash = expr.split('/');
        let range = slash.next().unwrap_or("");
        let step_text = slash.next();
        if slash.next().is_some() {
            return Err(fail("too many slashes".into()));
        }
        let bounds: Vec<&str> = range.split('-').collect();
        if bounds.len() > 2 {
            return Err(fail("too many hyphens".into()));
        }
        let is_star = bounds[0] == "*" || bounds[0] == "?";
        let (start, mut end) = if is_star {
            (spec.min, spec.top())
        } else {
            let start = parse_number(spec, bounds[0]).map_err(fail)?;
            let end = match bounds.get(1) {
                Some(e) => parse_number(spec, e).map_err(fail)?,
                None => start,
            };
            (start, end)
        };
        let step = match step_text {
            Some(s) => {
                let step = s.parse::<i64>().map_err(|_| fail(format!("failed to parse int from {s}")))?;
                if step <= 0 {
                    return Err(fail("step of range should be a positive number".into()));
                }
                // `N/step` means `N-max/step`.
                if !is_star && bounds.len() == 1 {
                    end = spec.top();
                }
                step as u32
            }
            None => 1,
        };
        if start < spec.min {
            return Err(fail(format!("beginning of range ({start}) below minimum ({})", spec.min)));
        }
        if end > spec.max {
            return Err(fail(format!("end of range ({end}) above maximum ({})", spec.max)));
        }
        if start > end {
            return Err(fail(format!("beginning of range ({start}) beyond end of range ({end})")));
        }
        star |= is_star && step == 1;
        for v in (start..=end).step_by(step as usize) {
            bits[v as usize] = true;
        }
    }
    if spec.name == "day-of-week" && bits[7] {
        bits[0] = true;
    }
    let values = (spec.min..=spec.top()).filter(|v| bits[*v as usize]).collect();
    Ok(Expanded { values, star })
}

fn cron_pattern(fields: &[&str]) -> Result<String, ScheduleError> {
    let mut out = Vec::with_capacity(5);
    for (spec, text) in FIELDS.iter().zip(fields) {
        let e = expand_field(spec, text)?;
        let full = e.values.len() as u32 == spec.top() - spec.min + 1;
        let is_day = spec.name.starts_with("day");
        // croner's day rule keys off a literal `*`; give it one exactly when robfig sees a star.
        let as_star = if is_day { e.star } else { full };
        out.push(if as_star {
            "*".to_string()
        } else {
            e.values.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
        });
    }
    Ok(out.join(" "))
}

impl Schedule {
    /// Parses a `schedule:` value.
    pub fn parse_cron(spec: &str) -> Result<Self, ScheduleError> {
        let original = spec;
        let mut spec = spec.trim();
        if spec.is_empty() {
            return Err(ScheduleError::Empty);
        }
        let mut zone = None;
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            let (prefix, rest) = spec.split_once(' ').unwrap_or((spec, ""));
            let name = prefix.split_once('=').map_or("", |(_, n)| n);
            zone = Some(Tz::from_str(name).map_err(|_| ScheduleError::BadLocation(name.to_string()))?);
            spec = rest.trim();
        }
        if let Some(descriptor) = spec.strip_prefix('@') {
            if let Some(period) = descriptor.strip_prefix("every ") {
                let d = GoDuration::parse(period.trim())
                    .map_err(|e| ScheduleError::BadDuration { spec: period.to_string(), reason: e.to_string() })?;
                return Ok(Schedule::every(d));
            }
            let fields = match descriptor {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                _ => return Err(ScheduleError::UnknownDescriptor(spec.to_string())),
            };
            return Self::from_fields(original, zone, fields);
        }
        Self::from_fields(original, zone, spec)
    }

    fn from_fields(original: &str, zone: Option<Tz>, spec: &str) -> Result<Self, ScheduleError> {
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(ScheduleError::FieldCount { count: fields.len(), fields: fields.join(" ") });
        }
        let pattern = cron_pattern(&fields)?;
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .build()
            .parse(&pattern)
            .map_err(|e| ScheduleError::Field { field: "spec", text: spec.to_string(), reason: e.to_string() })?;
        Ok(Schedule::Cron { spec: original.to_string(), zone, cron: Box::new(cron) })
    }

    /// A fixed period (`interval:` or `@every`): below one second becomes one
    /// second, and sub-second parts are dropped, as robfig does (SRV-5).
    pub fn every(d: GoDuration) -> Self {
        let secs = (d.as_nanos() / 1_000_000_000).max(1) as u64;
        Schedule::Every(Duration::from_secs(secs))
    }

    /// The time between runs: the period, or for cron the gap between the
    /// next two firings from now (none when it never fires twice).
    pub fn period(&self) -> Option<std::time::Duration> {
        match self {
            Schedule::Every(d) => Some(*d),
            Schedule::Cron { .. } => {
                let first = self.next_after(Utc::now())?;
                let second = self.next_after(first)?;
                (second - first).to_std().ok()
            }
        }
    }

    /// The first fire time strictly after `after`, if any within cron's search range.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(d) => Some(after + chrono::Duration::from_std(*d).ok()?),
            Schedule::Cron { zone: Some(tz), cron, .. } => {
                cron.find_next_occurrence(&after.with_timezone(tz), false).ok().map(|t| t.with_timezone(&Utc))
            }
            Schedule::Cron { zone: None, cron, .. } => {
                cron.find_next_occurrence(&after.with_timezone(&Local), false).ok().map(|t| t.with_timezone(&Utc))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn next(spec: &str, from: &str) -> String {
        let from = DateTime::parse_from_rfc3339(from).unwrap().with_timezone(&Utc);
        Schedule::parse_cron(spec).unwrap_or_else(|e| panic!("{spec}: {e}")).next_after(from).unwrap().to_rfc3339()
    }

    #[test]
    fn accepts_robfig_forms_srv_4() {
        for ok in [
            "15 3 * * *",
            "*/5 * * * *",
            "0 0 1,15 * *",
            "0 9-17 * * MON-FRI",
            "0 0 * JAN,jul ?",
            "5/15 * * * *",
            "0 0 * * 0",
            "0 0 * * 7",
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
            "@every 1h30m",
            "TZ=Europe/Paris 0 6 * * *",
            "CRON_TZ=America/New_York @daily",
        ] {
            assert!(Schedule::parse_cron(ok).is_ok(), "{ok} should parse");
        }
    }

    #[test]
    fn rejects_what_robfig_rejects_srv_4() {
        let err = |s: &str| Schedule::parse_cron(s).unwrap_err().to_string();
        assert_eq!(err("0 15 3 * * *"), "expected exactly 5 fields, found 6: [0 15 3 * * *]");
        assert_eq!(err("@fortnightly"), "unrecognized descriptor: @fortnightly");
        assert_eq!(err("60 * * * *"), "minute field \"60\": end of range (60) above maximum (59)");
        assert_eq!(err("* * 0 * *"), "day-of-month field \"0\": beginning of range (0) below minimum (1)");
        assert_eq!(err("5-1 * * * *"), "minute field \"5-1\": beginning of range (5) beyond end of range (1)");
        assert_eq!(err("*/0 * * * *"), "minute field \"*/0\": step of range should be a positive number");
        assert_eq!(err("1-2-3 * * * *"), "minute field \"1-2-3\": too many hyphens");
        assert_eq!(err("x * * * *"), "minute field \"x\": failed to parse int from x");
        assert_eq!(err("0 0 L * *"), "day-of-month field \"L\": failed to parse int from L");
        assert_eq!(err("TZ=Mars/Base 0 0 * * *"), "provided bad location Mars/Base: unknown time zone");
        assert!(err("@every 1d").starts_with("failed to parse duration 1d"));
        assert_eq!(err(""), "empty spec string");
    }

    #[test]
    fn next_fire_times() {
        assert_eq!(next("TZ=UTC 15 3 * * *", "2026-11-27T10:00:00Z"), "2026-11-28T03:15:00+00:00");
        assert_eq!(next("TZ=UTC */20 * * * *", "2026-11-27T10:05:00Z"), "2026-11-27T10:20:00+00:00");
        // 2026-11-29 is a Sunday; 0 and 7 both name it.
        assert_eq!(next("TZ=UTC 0 0 * * 0", "2026-11-27T10:00:00Z"), "2026-11-29T00:00:00+00:00");
        assert_eq!(next("TZ=UTC 0 0 * * 7", "2026-11-27T10:00:00Z"), "2026-11-29T00:00:00+00:00");
        assert_eq!(next("TZ=UTC 0 0 1 FEB *", "2026-11-27T10:00:00Z"), "2027-02-01T00:00:00+00:00");
        // Both day fields restricted: either may match (robfig OR rule).
        assert_eq!(next("TZ=UTC 0 0 30 * MON", "2026-11-27T10:00:00Z"), "2026-11-30T00:00:00+00:00");
        assert_eq!(next("TZ=UTC 0 0 28 * SUN", "2026-11-27T10:00:00Z"), "2026-11-28T00:00:00+00:00");
        // A star in one day field: only the other one counts (robfig AND rule).
        assert_eq!(next("TZ=UTC 0 0 * * SUN", "2026-11-27T10:00:00Z"), "2026-11-29T00:00:00+00:00");
        assert_eq!(next("CRON_TZ=Asia/Tokyo 0 9 * * *", "2026-11-27T10:00:00Z"), "2026-11-28T00:00:00+00:00");
        // Lists, ranges with steps, names, `?`.
        assert_eq!(next("TZ=UTC 0 0 1 JAN,JUL *", "2026-02-10T00:00:00Z"), "2026-07-01T00:00:00+00:00");
        assert_eq!(next("TZ=UTC 0 12 ? * SAT", "2026-11-27T13:00:00Z"), "2026-11-28T12:00:00+00:00");
        assert_eq!(next("TZ=UTC 10-40/15 * * * *", "2026-11-27T10:26:00Z"), "2026-11-27T10:40:00+00:00");
        assert_eq!(next("TZ=UTC 0 0 * * MON-WED", "2026-11-27T10:00:00Z"), "2026-11-30T00:00:00+00:00");
        assert_eq!(next("TZ=UTC @monthly", "2026-11-27T10:00:00Z"), "2026-12-01T00:00:00+00:00");
        assert_eq!(next("TZ=UTC @weekly", "2026-11-27T10:00:00Z"), "2026-11-29T00:00:00+00:00");
        assert_eq!(next("TZ=UTC @yearly", "2026-11-27T10:00:00Z"), "2027-01-01T00:00:00+00:00");
        assert_eq!(next("TZ=UTC @hourly", "2026-11-27T10:00:00Z"), "2026-11-27T11:00:00+00:00");
        // A zone's daylight-saving change: 02:30 Berlin does not exist on 2027-03-28.
        assert_eq!(next("CRON_TZ=Europe/Berlin 30 3 * * *", "2027-03-27T12:00:00Z"), "2027-03-28T01:30:00+00:00");
        let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let every = Schedule::parse_cron("@every 90s").unwrap();
        assert_eq!(every.next_after(from).unwrap(), from + chrono::Duration::seconds(90));
    }

    #[test]
    fn every_rounds_like_robfig_srv_5() {
        let secs = |s| match Schedule::every(GoDuration::parse(s).unwrap()) {
            Schedule::Every(d) => d.as_secs(),
            _ => unreachable!(),
        };
        assert_eq!(secs("100ms"), 1);
        assert_eq!(secs("1.5s"), 1);
        assert_eq!(secs("1h"), 3600);
    }
}
