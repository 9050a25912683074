//! Go's `time` package as seen from templates: layouts such as
//! `2006-01-02T15:04:05Z07:00` for `Format` and `time.Parse`, and the
//! `time.Time` value (`Year`, `Month`, `Day`, …) as a template map.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::format::{Fixed, Item, Numeric, Pad, Parsed};
use chrono::{DateTime, Datelike, FixedOffset, Local, Offset, TimeZone, Timelike, Utc};
use gotmpl::Value;

/// Marks a template map as a `time.Time`; read by the method shim.
pub(crate) const TIME_TYPE: &str = "time.Time";
/// Marks the value `time` returns (it has `Now` and `Parse`).
pub(crate) const TIME_FUNCS_TYPE: &str = "template.TimeFuncs";

/// One element of a Go layout.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Chunk<'a> {
    Literal(&'a str),
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    UpperPm,
    LowerPm,
    ZoneName,
    /// Numeric offset; `z` prints `Z` for UTC; `colon` and `seconds` pick the form.
    Offset {
        z: bool,
        colon: bool,
        minutes: bool,
        seconds: bool,
    },
    /// Fractional seconds with `digits` places; `trim` drops trailing zeros (`.999`).
    Fraction {
        digits: usize,
        trim: bool,
    },
}

/// Splits a layout into chunks, following the precedence of Go's `nextStdChunk`.
fn chunks(layout: &str) -> Vec<Chunk<'_>> {
    const STD: &[(&str, Chunk<'static>)] = &[
        ("January", Chunk::LongMonth),
        ("Jan", Chunk::Month),
        ("Monday", Chunk::LongWeekDay),
        ("Mon", Chunk::WeekDay),
        ("MST", Chunk::ZoneName),
        ("2006", Chunk::LongYear),
        ("002", Chunk::ZeroYearDay),
        ("01", Chunk::ZeroMonth),
        ("02", Chunk::ZeroDay),
        ("03", Chunk::ZeroHour12),
        ("04", Chunk::ZeroMinute),
        ("05", Chunk::ZeroSecond),
        ("06", Chunk::Year),
        ("15", Chunk::Hour),
        ("1", Chunk::NumMonth),
        ("2", Chunk::Day),
        ("__2", Chunk::UnderYearDay),
        ("_2", Chunk::UnderDay),
        ("3", Chunk::Hour12),
        ("4", Chunk::Minute),
        ("5", Chunk::Second),
        ("PM", Chunk::UpperPm),
        ("pm", Chunk::LowerPm),
        ("Z07:00:00", Chunk::Offset { z: true, colon: true, minutes: true, seconds: true }),
        ("Z070000", Chunk::Offset { z: true, colon: false, minutes: true, seconds: true }),
        ("Z07:00", Chunk::Offset { z: true, colon: true, minutes: true, seconds: false }),
        ("Z0700", Chunk::Offset { z: true, colon: false, minutes: true, seconds: false }),
        ("Z07", Chunk::Offset { z: true, colon: false, minutes: false, seconds: false }),
        ("-07:00:00", Chunk::Offset { z: false, colon: true, minutes: true, seconds: true }),
        ("-070000", Chunk::Offset { z: false, colon: false, minutes: true, seconds: true }),
        ("-07:00", Chunk::Offset { z: false, colon: true, minutes: true, seconds: false }),
        ("-0700", Chunk::Offset { z: false, colon: false, minutes: true, seconds: false }),
        ("-07", Chunk::Offset { z: false, colon: false, minutes: false, seconds: false }),
    ];
    let mut out = Vec::new();
    let mut literal_start = 0;
    let mut i = 0;
    let bytes = layout.as_bytes();
    while i < layout.len() {
        let rest = &layout[i..];
        // `_2006` is a literal underscore followed by the year.
        let std = if rest.starts_with("_2006") {
            None
        } else if (rest.starts_with('.') || rest.starts_with(',')) && i + 1 < layout.len() {
            let digit = bytes[i + 1];
            let run = rest[1..].bytes().take_while(|b| *b == digit).count();
            let next_is_digit = rest.as_bytes().get(1 + run).is_some_and(u8::is_ascii_digit);
            if (digit == b'0' || digit == b'9') && !next_is_digit {
                Some((1 + run, Chunk::Fraction { digits: run, trim: digit == b'9' }))
            } else {
                None
            }
        } else {
            STD.iter().find(|(p, _)| rest.starts_with(p)).map(|(p, c)| (p.len(), c.clone()))
        };
        match std {
            Some((len, chunk)) => {
                if literal_start < i {
                    out.push(Chunk::Literal(&layout[literal_start..i]));
                }
                out.push(chunk);
                i += len;
                literal_start = i;
            }
            None => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    if literal_start < layout.len() {
        out.push(Chunk::Literal(&layout[literal_start..]));
    }
    out
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

fn format_offset(out: &mut String, secs: i32, colon: bool, minutes: bool, seconds: bool) {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    out.push(sign);
    out.push_str(&format!("{:02}", a / 3600));
    if minutes {
        if colon {
            out.push(':');
        }
        out.push_str(&format!("{:02}", a / 60 % 60));
    }
    if seconds {
        if colon {
            out.push(':');
        }
        out.push_str(&format!("{:02}", a % 60));
    }
}

/// Formats like Go's `Time.Format`. `zone` is the abbreviation (`UTC`, `CET`), if known.
pub fn format(t: &DateTime<FixedOffset>, zone: Option<&str>, layout: &str) -> String {
    let mut out = String::with_capacity(layout.len() + 8);
    let hour12 = |h: u32| if h.is_multiple_of(12) { 12 } else { h % 12 };
    for chunk in chunks(layout) {
        match chunk {
            Chunk::Literal(s) => out.push_str(s),
            Chunk::LongMonth => out.push_str(MONTHS[t.month0() as usize]),
            Chunk::Month => out.push_str(&MONTHS[t.month0() as usize][..3]),
            Chunk::NumMonth => out.push_str(&t.month().to_string()),
            Chunk::ZeroMonth => out.push_str(&format!("{:02}", t.month())),
            Chunk::LongWeekDay => out.push_str(WEEKDAYS[t.weekday().num_days_from_sunday() as usize]),
            Chunk::WeekDay => out.push_str(&WEEKDAYS[t.weekday().num_days_from_sunday() as usize][..3]),
            Chunk::Day => out.push_str(&t.day().to_string()),
            Chunk::UnderDay => out.push_str(&format!("{:>2}", t.day())),
            Chunk::ZeroDay => out.push_str(&format!("{:02}", t.day())),
            Chunk::UnderYearDay => out.push_str(&format!("{:>3}", t.ordinal())),
            Chunk::ZeroYearDay => out.push_str(&format!("{:03}", t.ordinal())),
            Chunk::Hour => out.push_str(&format!("{:02}", t.hour())),
            Chunk::Hour12 => out.push_str(&hour12(t.hour()).to_string()),
            Chunk::ZeroHour12 => out.push_str(&format!("{:02}", hour12(t.hour()))),
            Chunk::Minute => out.push_str(&t.minute().to_string()),
            Chunk::ZeroMinute => out.push_str(&format!("{:02}", t.minute())),
            Chunk::Second => out.push_str(&t.second().to_string()),
            Chunk::ZeroSecond => out.push_str(&format!("{:02}", t.second())),
            Chunk::LongYear => out.push_str(&format!("{:04}", t.year())),
            Chunk::Year => out.push_str(&format!("{:02}", t.year().rem_euclid(100))),
            Chunk::UpperPm => out.push_str(if t.hour() >= 12 { "PM" } else { "AM" }),
            Chunk::LowerPm => out.push_str(if t.hour() >= 12 { "pm" } else { "am" }),
            Chunk::ZoneName => match zone {
                Some(name) => out.push_str(name),
                None => format_offset(&mut out, t.offset().local_minus_utc(), false, true, false),
            },
            Chunk::Offset { z, colon, minutes, seconds } => {
                let secs = t.offset().local_minus_utc();
                if z && secs == 0 {
                    out.push('Z');
                } else {
                    format_offset(&mut out, secs, colon, minutes, seconds);
                }
            }
            Chunk::Fraction { digits, trim } => {
                let nanos = format!("{:09}", t.nanosecond() % 1_000_000_000);
                let mut frac = &nanos[..digits.min(9)];
                if trim {
                    frac = frac.trim_end_matches('0');
                }
                if !frac.is_empty() || !trim {
                    out.push('.');
                    out.push_str(frac);
                }
            }
        }
    }
    out
}

/// Parses like Go's `time.Parse`: missing date parts default to January 1 of year 0,
/// missing time parts to midnight, and no offset means UTC.
pub fn parse(layout: &str, value: &str) -> Result<DateTime<FixedOffset>, String> {
    let items: Vec<Item<'_>> = chunks(layout)
        .into_iter()
        .map(|c| match c {
            Chunk::Literal(s) => Item::Literal(s),
            Chunk::LongMonth => Item::Fixed(Fixed::LongMonthName),
            Chunk::Month => Item::Fixed(Fixed::ShortMonthName),
            Chunk::NumMonth => Item::Numeric(Numeric::Month, Pad::None),
            Chunk::ZeroMonth => Item::Numeric(Numeric::Month, Pad::Zero),
            Chunk::LongWeekDay => Item::Fixed(Fixed::LongWeekdayName),
            Chunk::WeekDay => Item::Fixed(Fixed::ShortWeekdayName),
            Chunk::Day => Item::Numeric(Numeric::Day, Pad::None),
            Chunk::UnderDay => Item::Numeric(Numeric::Day, Pad::Space),
            Chunk::ZeroDay => Item::Numeric(Numeric::Day, Pad::Zero),
            Chunk::UnderYearDay => Item::Numeric(Numeric::Ordinal, Pad::Space),
            Chunk::ZeroYearDay => Item::Numeric(Numeric::Ordinal, Pad::Zero),
            Chunk::Hour => Item::Numeric(Numeric::Hour, Pad::Zero),
            Chunk::Hour12 => Item::Numeric(Numeric::Hour12, Pad::None),
            Chunk::ZeroHour12 => Item::Numeric(Numeric::Hour12, Pad::Zero),
            Chunk::Minute => Item::Numeric(Numeric::Minute, Pad::None),
            Chunk::ZeroMinute => Item::Numeric(Numeric::Minute, Pad::Zero),
            Chunk::Second => Item::Numeric(Numeric::Second, Pad::None),
            Chunk::ZeroSecond => Item::Numeric(Numeric::Second, Pad::Zero),
            Chunk::LongYear => Item::Numeric(Numeric::Year, Pad::Zero),
            Chunk::Year => Item::Numeric(Numeric::YearMod100, Pad::Zero),
            Chunk::UpperPm => Item::Fixed(Fixed::UpperAmPm),
            Chunk::LowerPm => Item::Fixed(Fixed::LowerAmPm),
            Chunk::ZoneName => Item::Fixed(Fixed::TimezoneName),
            Chunk::Offset { z: true, colon: true, .. } => Item::Fixed(Fixed::TimezoneOffsetColonZ),
            Chunk::Offset { z: true, .. } => Item::Fixed(Fixed::TimezoneOffsetZ),
            Chunk::Offset { colon: true, .. } => Item::Fixed(Fixed::TimezoneOffsetColon),
            Chunk::Offset { .. } => Item::Fixed(Fixed::TimezoneOffset),
            Chunk::Fraction { .. } => Item::Fixed(Fixed::Nanosecond),
        })
        .collect();
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, value, items.iter())
        .map_err(|e| format!("parsing time \"{value}\" as \"{layout}\": {e}"))?;
    if parsed.year().is_none() && parsed.year_mod_100().is_none() {
        let _ = parsed.set_year(0);
    }
    if parsed.year_mod_100().is_some() && parsed.year().is_none() {
        // Go maps two-digit years 69–99 to 19xx and 00–68 to 20xx.
        let yy = i64::from(parsed.year_mod_100().unwrap_or(0));
        let _ = parsed.set_year(if yy >= 69 { 1900 + yy } else { 2000 + yy });
    }
    if parsed.month().is_none() && parsed.ordinal().is_none() {
        let _ = parsed.set_month(1);
    }
    if parsed.day().is_none() && parsed.ordinal().is_none() {
        let _ = parsed.set_day(1);
    }
    if parsed.hour_div_12().is_none() {
        let _ = parsed.set_hour(0);
    }
    if parsed.minute().is_none() {
        let _ = parsed.set_minute(0);
    }
    let date = parsed.to_naive_date().map_err(|e| format!("parsing time \"{value}\": {e}"))?;
    let time = parsed.to_naive_time().map_err(|e| format!("parsing time \"{value}\": {e}"))?;
    let offset = FixedOffset::east_opt(parsed.offset().unwrap_or(0)).unwrap_or(Utc.fix());
    offset
        .from_local_datetime(&date.and_time(time))
        .single()
        .ok_or_else(|| format!("parsing time \"{value}\": ambiguous local time"))
}

/// The local time now, with the zone abbreviation when it is known.
pub fn now() -> (DateTime<FixedOffset>, Option<String>) {
    let now = Local::now();
    let fixed = now.fixed_offset();
    (fixed, zone_abbreviation(&now.with_timezone(&Utc)))
}

fn zone_abbreviation(at: &DateTime<Utc>) -> Option<String> {
    if let Ok(name) = std::env::var("TZ") {
        let name = name.trim_start_matches(':');
        if let Ok(tz) = name.parse::<chrono_tz::Tz>() {
            use chrono_tz::OffsetName;
            return tz.offset_from_utc_datetime(&at.naive_utc()).abbreviation().map(str::to_string);
        }
    }
    (Local.offset_from_utc_datetime(&at.naive_utc()).local_minus_utc() == 0).then(|| "UTC".to_string())
}

fn int(v: impl Into<i64>) -> Value {
    Value::Int(v.into())
}

/// A `time.Time` as a template value: its zero-argument methods are fields;
/// `Format` and `AddDate` go through the method shim.
pub fn time_value(t: &DateTime<FixedOffset>, zone: Option<&str>) -> Value {
    let mut m: BTreeMap<Arc<str>, Value> = BTreeMap::new();
    let mut put = |k: &str, v: Value| {
        m.insert(Arc::from(k), v);
    };
    put("__type", Value::String(Arc::from(TIME_TYPE)));
    put("__unix_nanos", int(t.timestamp_nanos_opt().unwrap_or(0)));
    put("__offset", int(t.offset().local_minus_utc()));
    put("__zone", zone.map_or(Value::Nil, |z| Value::String(Arc::from(z))));
    put("Year", int(t.year()));
    put("Month", int(t.month()));
    put("Day", int(t.day()));
    put("Hour", int(t.hour()));
    put("Minute", int(t.minute()));
    put("Second", int(t.second()));
    put("Nanosecond", int(t.nanosecond()));
    put("YearDay", int(t.ordinal()));
    put("Weekday", Value::String(Arc::from(WEEKDAYS[t.weekday().num_days_from_sunday() as usize])));
    put("Unix", int(t.timestamp()));
    put("UnixMilli", int(t.timestamp_millis()));
    put("UnixNano", int(t.timestamp_nanos_opt().unwrap_or(0)));
    put("String", Value::String(Arc::from(format(t, zone, "2006-01-02 15:04:05.999999999 -0700 MST"))));
    Value::Map(Arc::new(m))
}

/// Recovers the time (and zone name) from a value built by [`time_value`].
pub fn from_time_value(v: &Value) -> Option<(DateTime<FixedOffset>, Option<String>)> {
    let nanos = v.field("__unix_nanos")?.as_int()?;
    let offset = FixedOffset::east_opt(i32::try_from(v.field("__offset")?.as_int()?).ok()?)?;
    let zone = v.field("__zone").and_then(Value::as_str).map(str::to_string);
    Some((DateTime::from_timestamp_nanos(nanos).with_timezone(&offset), zone))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-03-07T09:05:03.120400+01:00").unwrap()
    }

    #[test]
    fn formats_go_layouts() {
        let cases = [
            ("20060102", "20260307"),
            ("2006-01-02T15:04:05Z07:00", "2026-03-07T09:05:03+01:00"),
            ("Mon Jan _2 15:04:05 2006", "Sat Mar  7 09:05:03 2026"),
            ("Monday, 02-Jan-06 15:04:05 MST", "Saturday, 07-Mar-26 09:05:03 CET"),
            ("3:04PM", "9:05AM"),
            ("03:04:05 pm", "09:05:03 am"),
            ("January 2, 2006", "March 7, 2026"),
            ("1/2 -0700 -07", "3/7 +0100 +01"),
            ("15:04:05.000", "09:05:03.120"),
            ("15:04:05.999999", "09:05:03.1204"),
            ("05.999999999", "03.1204"),
            ("002 __2", "066  66"),
            ("_2006", "_2026"),
            ("year: 2006", "year: 2026"),
        ];
        for (layout, want) in cases {
            assert_eq!(format(&t(), Some("CET"), layout), want, "{layout}");
        }
        let utc = t().with_timezone(&Utc).fixed_offset();
        assert_eq!(format(&utc, None, "Z07:00 -0700 MST"), "Z +0000 +0000");
    }

    #[test]
    fn parses_go_layouts() {
        let p = parse("2006-01-02", "2024-02-29").unwrap();
        assert_eq!(p.to_rfc3339(), "2024-02-29T00:00:00+00:00");
        let p = parse("2006-01-02T15:04:05Z07:00", "2024-02-29T10:11:12-05:00").unwrap();
        assert_eq!(p.to_rfc3339(), "2024-02-29T10:11:12-05:00");
        let p = parse("Jan 2 06 3:04PM", "Feb 3 99 4:05PM").unwrap();
        assert_eq!(p.to_rfc3339(), "1999-02-03T16:05:00+00:00");
        assert!(parse("2006-01-02", "yesterday").is_err());
    }

    #[test]
    fn time_value_round_trips() {
        let v = time_value(&t(), Some("CET"));
        assert_eq!(v.field("Year").and_then(Value::as_int), Some(2026));
        assert_eq!(v.field("Month").and_then(Value::as_int), Some(3));
        let (back, zone) = from_time_value(&v).unwrap();
        assert_eq!(back, t());
        assert_eq!(zone.as_deref(), Some("CET"));
    }
}
