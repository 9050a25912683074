//! Go `time.Duration` values: parsing (`time.ParseDuration`) and printing
//! (`Duration.String`), so durations in configs and logs read exactly as they do
//! in regsync (`1h30m`, `1.5h`, `-5m` in; `1h0m0s`, `100ms` out).

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

/// A signed duration in nanoseconds, as Go's `time.Duration`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(i64);

/// Why a duration string was rejected; the texts match Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not of the form `[-+]?(number unit)+`.
    #[error("time: invalid duration \"{0}\"")]
    Invalid(String),
    /// A number without its unit, as in `90`.
    #[error("time: missing unit in duration \"{0}\"")]
    MissingUnit(String),
    /// A unit Go does not know, as in `1d`.
    #[error("time: unknown unit \"{unit}\" in duration \"{input}\"")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole input.
        input: String,
    },
}

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const UNITS: [(&str, i64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{00b5}s", 1_000),
    ("\u{03bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", NANOS_PER_SECOND),
    ("m", 60 * NANOS_PER_SECOND),
    ("h", 3_600 * NANOS_PER_SECOND),
];

impl GoDuration {
    /// The zero duration.
    pub const ZERO: GoDuration = GoDuration(0);

    /// A duration of `n` nanoseconds.
    pub const fn from_nanos(n: i64) -> Self {
        GoDuration(n)
    }

    /// A duration of `s` whole seconds.
    pub const fn from_secs(s: i64) -> Self {
        GoDuration(s * NANOS_PER_SECOND)
    }

    /// A duration of `m` whole minutes.
    pub const fn from_mins(m: i64) -> Self {
        GoDuration(m * 60 * NANOS_PER_SECOND)
    }

    /// The duration in nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// True for durations below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// True for the zero duration.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The duration as a `std::time::Duration`; negative durations become zero.
    pub fn to_std(self) -> Duration {
        Duration::from_nanos(self.0.max(0) as u64)
    }

    /// Parses Go's duration syntax: `300ms`, `-1.5h`, `2h45m`, `0`.
    pub fn parse(input: &str) -> Result<Self, DurationError> {
        let invalid = || DurationError::Invalid(input.to_string());
        let mut rest = input;
        let mut negative = false;
        if let Some(r) = rest.strip_prefix('-') {
            negative = true;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('+') {
            rest = r;
        }
        if rest == "0" {
            return Ok(GoDuration(0));
        }
        if rest.is_empty() {
            return Err(invalid());
        }
        let mut total: i128 = 0;
        while !rest.is_empty() {
            let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (int_part, after_int) = rest.split_at(int_len);
            let (frac_part, after_num) = match after_int.strip_prefix('.') {
                Some(f) => {
                    let n = f.bytes().take_while(u8::is_ascii_digit).count();
                    f.split_at(n)
                }
                None => ("", after_int),
            };
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(invalid());
            }
            let unit_len = after_num
                .char_indices()
                .find(|(_, c)| *c == '.' || c.is_ascii_digit())
                .map_or(after_num.len(), |(i, _)| i);
            let (unit, after_unit) = after_num.split_at(unit_len);
            if unit.is_empty() {
                return Err(DurationError::MissingUnit(input.to_string()));
            }
            let scale = UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, scale)| *scale)
                .ok_or_else(|| DurationError::UnknownUnit { unit: unit.to_string(), input: input.to_string() })?;
            let whole: i128 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| invalid())? };
            // Too large for a duration, as Go says; not an overflow (found by fuzzing).
            let mut value = whole.checked_mul(i128::from(scale)).ok_or_else(invalid)?;
            if !frac_part.is_empty() {
                // Go keeps at most what fits; nanosecond precision is plenty for configs.
                let digits = &frac_part[..frac_part.len().min(18)];
                let numerator: i128 = digits.parse().map_err(|_| invalid())?;
                let denominator = 10i128.pow(digits.len() as u32);
                value += numerator * i128::from(scale) / denominator;
            }
            total += value;
            if total > i128::from(i64::MAX) {
                return Err(invalid());
            }
            rest = after_unit;
        }
        let total = total as i64;
        Ok(GoDuration(if negative { -total } else { total }))
    }
}

impl From<Duration> for GoDuration {
    fn from(d: Duration) -> Self {
        GoDuration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }
}

impl fmt::Display for GoDuration {
    /// Prints like Go's `Duration.String`: `1h0m0s`, `1.5s`, `100ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let u = self.0.unsigned_abs();
        let sign = if neg { "-" } else { "" };
        if u == 0 {
            return f.write_str("0s");
        }
        if u < NANOS_PER_SECOND as u64 {
            let (prec, unit) = if u < 1_000 {
                (0, "ns")
            } else if u < 1_000_000 {
                (3, "\u{00b5}s")
            } else {
                (6, "ms")
            };
            return write!(f, "{sign}{}{unit}", with_fraction(u, prec));
        }
        let secs_frac = with_fraction(u % (60 * NANOS_PER_SECOND as u64), 9);
        let minutes = u / (60 * NANOS_PER_SECOND as u64);
        if minutes == 0 {
            return write!(f, "{sign}{secs_frac}s");
        }
        let hours = minutes / 60;
        if hours == 0 {
            return write!(f, "{sign}{minutes}m{secs_frac}s");
        }
        write!(f, "{sign}{hours}h{}m{secs_frac}s", minutes % 60)
    }
}

/// `v / 10^prec` with the fraction printed without trailing zeros.
fn with_fraction(v: u64, prec: u32) -> String {
    let scale = 10u64.pow(prec);
    let (whole, frac) = (v / scale, v % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_syntax_yaml_5() {
        let cases = [
            ("0", 0),
            ("-0", 0),
            ("1h30m", 90 * 60 * NANOS_PER_SECOND),
            ("1.5h", 90 * 60 * NANOS_PER_SECOND),
            ("-5m", -5 * 60 * NANOS_PER_SECOND),
            ("+5s", 5 * NANOS_PER_SECOND),
            ("300ms", 300_000_000),
            ("2us", 2_000),
            ("2\u{00b5}s", 2_000),
            ("2\u{03bc}s", 2_000),
            ("7ns", 7),
            (".5s", NANOS_PER_SECOND / 2),
            ("1h0m0s", 3_600 * NANOS_PER_SECOND),
        ];
        for (input, nanos) in cases {
            assert_eq!(GoDuration::parse(input), Ok(GoDuration(nanos)), "{input}");
        }
    }

    #[test]
    fn rejects_what_go_rejects_yaml_5() {
        assert_eq!(GoDuration::parse("1d").unwrap_err().to_string(), "time: unknown unit \"d\" in duration \"1d\"");
        assert_eq!(GoDuration::parse("3600").unwrap_err().to_string(), "time: missing unit in duration \"3600\"");
        for bad in ["", "-", "h", ".h", "1h-5m", "1..5s", "abc"] {
            assert!(GoDuration::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn a_duration_too_large_is_invalid_not_an_overflow() {
        // Found by the `duration` fuzz target: the multiplication by the unit overflowed.
        let found = "1111111111111111111111111111111111130m";
        assert_eq!(GoDuration::parse(found).unwrap_err().to_string(), format!("time: invalid duration \"{found}\""));
        assert!(GoDuration::parse("2562048h").is_err(), "just past i64 nanoseconds");
        assert_eq!(GoDuration::parse("2562047h").map(|d| d.to_string()), Ok("2562047h0m0s".to_string()));
    }

    #[test]
    fn prints_like_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1\u{00b5}s"),
            (2_200_000, "2.2ms"),
            (100_000_000, "100ms"),
            (NANOS_PER_SECOND, "1s"),
            (NANOS_PER_SECOND * 3 / 2, "1.5s"),
            (90 * NANOS_PER_SECOND, "1m30s"),
            (3_600 * NANOS_PER_SECOND, "1h0m0s"),
            (5 * 60 * NANOS_PER_SECOND, "5m0s"),
            (-5 * 60 * NANOS_PER_SECOND, "-5m0s"),
            (12 * 3_600 * NANOS_PER_SECOND, "12h0m0s"),
        ];
        for (nanos, text) in cases {
            assert_eq!(GoDuration(nanos).to_string(), text);
        }
    }
}
