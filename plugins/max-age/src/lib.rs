//! A regsync gate: denies images whose config `created` time is more than
//! `days` days ago (setting `days`, default 90), or that carry none.
//!
//! `created` is RFC 3339 (`2024-05-01T12:00:00Z`, `…+02:00`, with or
//! without fractions of a second). The clock is the host's, through WASI.

use std::time::{SystemTime, UNIX_EPOCH};

use regsync_plugin_sdk::{Decision, Gate, ImageFacts, config, export_gate};

struct MaxAge;

impl Gate for MaxAge {
    fn decide(facts: ImageFacts) -> Decision {
        let raw = config("days").unwrap_or_else(|| "90".to_string());
        let Ok(days) = raw.trim().parse::<u64>() else {
            return Decision::Deny(format!("setting days must be a whole number of days, got {raw:?}"));
        };
        let Some(created) = facts.created.as_deref().filter(|c| !c.is_empty()) else {
            return Decision::Deny("the image config has no created time".to_string());
        };
        let Some(built) = unix_seconds(created) else {
            return Decision::Deny(format!("created time {created:?} is not RFC 3339"));
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        decide(now, built, days, created)
    }
}

/// The verdict for an image built at `built` (Unix seconds), seen at `now`.
fn decide(now: i64, built: i64, days: u64, created: &str) -> Decision {
    let age_days = (now - built).max(0) / 86_400;
    if age_days as u64 > days {
        Decision::Deny(format!("built {age_days} days ago ({created}), more than the {days} days allowed"))
    } else {
        Decision::Allow
    }
}

/// Seconds since the Unix epoch of an RFC 3339 date-time.
fn unix_seconds(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && &rest[3..4] == ":" => {
            let (h, m) = (rest[1..3].parse::<i64>().ok()?, rest[4..6].parse::<i64>().ok()?);
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

export_gate!(MaxAge);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_read_as_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(unix_seconds("2024-02-29T12:30:15.123456789Z"), Some(1_709_209_815));
        assert_eq!(unix_seconds("2024-02-29T14:30:15+02:00"), Some(1_709_209_815));
        assert_eq!(unix_seconds("2024-02-29T12:30:15"), None, "no zone");
        assert_eq!(unix_seconds("2024-13-01T00:00:00Z"), None);
        assert_eq!(unix_seconds("yesterday"), None);
    }

    #[test]
    fn older_than_the_limit_is_denied() {
        let day = 86_400;
        assert_eq!(decide(100 * day, 70 * day, 30, "t"), Decision::Allow);
        assert_eq!(
            decide(100 * day, 69 * day, 30, "t"),
            Decision::Deny("built 31 days ago (t), more than the 30 days allowed".into())
        );
        assert_eq!(decide(0, day, 0, "t"), Decision::Allow, "built in the future counts as new");
    }
}
