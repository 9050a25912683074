//! Logs on stderr in the shape of regsync's `slog` output (LOG-1, LOG-2), so
//! existing log scraping keeps working: `time=… level=INFO msg="…" key=value`,
//! or one JSON object per line with `--logopt json`.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// A `-v` value that is not a level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse verbosity {0}: expected trace, debug, info, warn or error, optionally with +N or -N")]
pub struct VerbosityError(pub String);

/// Parses `-v`: slog level names in any case (`debug`, `info`, `warn`,
/// `error`) with an optional `+N`/`-N` offset, plus `trace` (CLI-10), and the
/// `fatal`/`panic` names regsync's help still lists (as `error`).
pub fn parse_verbosity(input: &str) -> Result<LevelFilter, VerbosityError> {
    let lower = input.to_ascii_lowercase();
    let split = lower.find(['+', '-']).unwrap_or(lower.len());
    let (name, offset) = lower.split_at(split);
    let base: i64 = match name {
        "trace" => -8,
        "debug" => -4,
        "info" => 0,
        "warn" | "warning" => 4,
        "error" | "fatal" | "panic" => 8,
        _ => return Err(VerbosityError(input.to_string())),
    };
    let offset: i64 =
        if offset.is_empty() { 0 } else { offset.parse().map_err(|_| VerbosityError(input.to_string()))? };
    Ok(match base + offset {
        l if l <= -8 => LevelFilter::TRACE,
        l if l <= -4 => LevelFilter::DEBUG,
        l if l <= 0 => LevelFilter::INFO,
        l if l <= 4 => LevelFilter::WARN,
        l if l <= 8 => LevelFilter::ERROR,
        _ => LevelFilter::OFF,
    })
}

/// Output shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `key=value` text.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global logger; call once, early in `main`.
pub fn init(level: LevelFilter, format: LogFormat) {
    let _ = tracing_subscriber::fmt()
        .with_writer(crate::progress::LogWriter)
        .with_max_level(level)
        .event_format(SlogFormat(format))
        .try_init();
}

/// slog's level names; trace has none, so it prints as `DEBUG-4` like regsync.
fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "DEBUG-4",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

/// Formats events like slog's text and JSON handlers.
pub struct SlogFormat(pub LogFormat);

#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(String, FieldValue)>,
}

enum FieldValue {
    Str(String),
    Raw(String),
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.pairs.push((field.name().to_string(), FieldValue::Str(value.to_string())));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.pairs.push((field.name().to_string(), FieldValue::Raw(value.to_string())));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.pairs.push((field.name().to_string(), FieldValue::Raw(value.to_string())));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.pairs.push((field.name().to_string(), FieldValue::Raw(value.to_string())));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.pairs.push((field.name().to_string(), FieldValue::Raw(value.to_string())));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.pairs.push((field.name().to_string(), FieldValue::Str(text)));
        }
    }
}

/// slog's text handler quotes values that are empty or hold spaces, quotes, `=` or controls.
fn logfmt_value(s: &str) -> String {
    let needs_quotes = s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == '"' || c == '=' || c.is_control());
    if needs_quotes { format!("{s:?}") } else { s.to_string() }
}

impl<S, N> FormatEvent<S, N> for SlogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let time = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let level = level_name(event.metadata().level());
        let mut line = String::with_capacity(128);
        match self.0 {
            LogFormat::Text => {
                write!(line, "time={time} level={level} msg={}", logfmt_value(&fields.message))?;
                for (k, v) in &fields.pairs {
                    let v = match v {
                        FieldValue::Str(s) => logfmt_value(s),
                        FieldValue::Raw(r) => r.clone(),
                    };
                    write!(line, " {k}={v}")?;
                }
            }
            LogFormat::Json => {
                let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
                write!(line, "{{\"time\":{},\"level\":{},\"msg\":{}", q(&time), q(level), q(&fields.message))?;
                for (k, v) in &fields.pairs {
                    let v = match v {
                        FieldValue::Str(s) => q(s),
                        FieldValue::Raw(r) => r.clone(),
                    };
                    write!(line, ",{}:{v}", q(k))?;
                }
                line.push('}');
            }
        }
        writeln!(w, "{line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_names_and_offsets_cli_10() {
        assert_eq!(parse_verbosity("info").unwrap(), LevelFilter::INFO);
        assert_eq!(parse_verbosity("INFO").unwrap(), LevelFilter::INFO);
        assert_eq!(parse_verbosity("Debug").unwrap(), LevelFilter::DEBUG);
        assert_eq!(parse_verbosity("trace").unwrap(), LevelFilter::TRACE);
        assert_eq!(parse_verbosity("warn").unwrap(), LevelFilter::WARN);
        assert_eq!(parse_verbosity("error").unwrap(), LevelFilter::ERROR);
        assert_eq!(parse_verbosity("info+4").unwrap(), LevelFilter::WARN);
        assert_eq!(parse_verbosity("info-4").unwrap(), LevelFilter::DEBUG);
        assert_eq!(parse_verbosity("error+1").unwrap(), LevelFilter::OFF);
        assert_eq!(parse_verbosity("fatal").unwrap(), LevelFilter::ERROR);
        assert_eq!(
            parse_verbosity("bogus").unwrap_err().to_string(),
            "unable to parse verbosity bogus: expected trace, debug, info, warn or error, optionally with +N or -N"
        );
        assert!(parse_verbosity("info+x").is_err());
    }

    #[test]
    fn logfmt_quoting() {
        assert_eq!(logfmt_value("plain"), "plain");
        assert_eq!(logfmt_value(""), "\"\"");
        assert_eq!(logfmt_value("two words"), "\"two words\"");
        assert_eq!(logfmt_value("a=b"), "\"a=b\"");
    }
}
