//! regclient's template functions (TPL-2): `default env file join split json
//! jsonPretty printPretty lower upper trimSpace time`. Go's built-ins (`printf`,
//! `index`, `eq`, …) come with the engine.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::{TemplateError as GoError, Value, ValueFunc};

use super::gotime::{self, TIME_FUNCS_TYPE};
use super::methods::{METHOD_FUNC, call_method};

/// Key of a map entry that holds the map's own pretty form, used by `printPretty`.
pub(crate) const PRETTY_KEY: &str = "__pretty";

fn err(msg: impl Into<String>) -> GoError {
    GoError::Exec(msg.into())
}

fn string(s: impl Into<Arc<str>>) -> Value {
    Value::String(s.into())
}

fn want_args(name: &str, args: &[Value], n: usize) -> Result<(), GoError> {
    if args.len() != n {
        return Err(err(format!("wrong number of args for {name}: want {n} got {}", args.len())));
    }
    Ok(())
}

fn want_str<'a>(name: &str, v: &'a Value) -> Result<&'a str, GoError> {
    v.as_str().ok_or_else(|| err(format!("wrong type for value; expected string; got {} in {name}", v.type_name())))
}

/// Go's zero value test used by `default`.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(i) => *i == 0,
        Value::Uint(u) => *u == 0,
        Value::Float(f) => *f == 0.0,
        Value::String(s) => s.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.is_empty(),
        Value::Function(_) => false,
    }
}

/// Template values as JSON; our internal `__` keys are left out.
pub(crate) fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Nil | Value::Function(_) => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Uint(u) => J::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::String(s) => J::String(s.to_string()),
        Value::List(l) => J::Array(l.iter().map(to_json).collect()),
        Value::Map(m) => J::Object(
            m.iter().filter(|(k, _)| !k.starts_with("__")).map(|(k, v)| (k.to_string(), to_json(v))).collect(),
        ),
    }
}

fn json_line(v: &Value, pretty: bool) -> String {
    let j = to_json(v);
    let mut out = if pretty { serde_json::to_string_pretty(&j) } else { serde_json::to_string(&j) }.unwrap_or_default();
    // Go's json.Encoder ends every value with a newline.
    out.push('\n');
    out
}

fn default_fn(args: &[Value]) -> Result<Value, GoError> {
    want_args("default", args, 2)?;
    Ok(if is_zero(&args[1]) { args[0].clone() } else { args[1].clone() })
}

fn env_fn(args: &[Value]) -> Result<Value, GoError> {
    want_args("env", args, 1)?;
    Ok(string(std::env::var(want_str("env", &args[0])?).unwrap_or_default()))
}

fn file_fn(args: &[Value]) -> Result<Value, GoError> {
    want_args("file", args, 1)?;
    let path = want_str("file", &args[0])?;
    // regsync turns a read error into "" (TPL-2); we keep that, but say so, since
    // an empty password read from a missing secret is otherwise a puzzle.
    match read_bounded(path) {
        Ok(text) => Ok(string(text.trim())),
        Err(e) => {
            tracing::warn!(file = path, error = %e, "Template file could not be read, using an empty value");
            Ok(string(""))
        }
    }
}

/// A file's text, at most [`super::OUTPUT_LIMIT`] bytes of it: `file` reads
/// secrets, and a path such as `/dev/zero` must not read forever.
fn read_bounded(path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    let limit = super::OUTPUT_LIMIT as u64;
    std::fs::File::open(path)?.take(limit + 1).read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(std::io::Error::other(format!("longer than {limit} bytes")));
    }
    Ok(text)
}

fn join_fn(args: &[Value]) -> Result<Value, GoError> {
    want_args("join", args, 2)?;
    let sep = want_str("join", &args[1])?;
    let Value::List(items) = &args[0] else {
        return Err(err(format!("wrong type for value; expected []string; got {}", args[0].type_name())));
    };
    let parts = items.iter().map(|v| want_str("join", v).map(str::to_string)).collect::<Result<Vec<_>, _>>()?;
    Ok(string(parts.join(sep)))
}

fn split_fn(args: &[Value]) -> Result<Value, GoError> {
    want_args("split", args, 2)?;
    let (s, sep) = (want_str("split", &args[0])?, want_str("split", &args[1])?);
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| string(c.to_string())).collect()
    } else {
        s.split(sep).map(string).collect()
    };
    Ok(Value::List(parts.into()))
}

fn string_fn(name: &'static str, f: fn(&str) -> String) -> ValueFunc {
    Arc::new(move |args: &[Value]| {
        want_args(name, args, 1)?;
        Ok(string(f(want_str(name, &args[0])?)))
    })
}

fn time_fn(args: &[Value]) -> Result<Value, GoError> {
    want_args("time", args, 0)?;
    let (now, zone) = gotime::now();
    let mut m: BTreeMap<Arc<str>, Value> = BTreeMap::new();
    m.insert(Arc::from("__type"), string(TIME_FUNCS_TYPE));
    m.insert(Arc::from("Now"), gotime::time_value(&now, zone.as_deref()));
    Ok(Value::Map(Arc::new(m)))
}

/// Every built-in function, keyed by name.
pub(crate) fn builtins() -> BTreeMap<String, ValueFunc> {
    let mut m: BTreeMap<String, ValueFunc> = BTreeMap::new();
    m.insert("default".into(), Arc::new(default_fn));
    m.insert("env".into(), Arc::new(env_fn));
    m.insert("file".into(), Arc::new(file_fn));
    m.insert("join".into(), Arc::new(join_fn));
    m.insert("split".into(), Arc::new(split_fn));
    m.insert(
        "json".into(),
        Arc::new(|a: &[Value]| {
            want_args("json", a, 1)?;
            Ok(string(json_line(&a[0], false)))
        }),
    );
    m.insert(
        "jsonPretty".into(),
        Arc::new(|a: &[Value]| {
            want_args("jsonPretty", a, 1)?;
            Ok(string(json_line(&a[0], true)))
        }),
    );
    m.insert(
        "printPretty".into(),
        Arc::new(|a: &[Value]| {
            want_args("printPretty", a, 1)?;
            match a[0].field(PRETTY_KEY) {
                Some(Value::String(s)) => Ok(Value::String(s.clone())),
                _ => Ok(string(json_line(&a[0], true))),
            }
        }),
    );
    m.insert("lower".into(), string_fn("lower", str::to_lowercase));
    m.insert("upper".into(), string_fn("upper", str::to_uppercase));
    m.insert("trimSpace".into(), string_fn("trimSpace", |s| s.trim().to_string()));
    m.insert("time".into(), Arc::new(time_fn));
    m.insert(METHOD_FUNC.into(), Arc::new(call_method));
    m
}

/// Names a plugin may not take: the built-ins above and Go's own.
pub(crate) const RESERVED: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "html", "js", "urlquery", "eq", "ne",
    "lt", "le", "gt", "ge", "call", "block", "break", "continue", "define", "else", "end", "if", "range", "template",
    "with", "nil", "true", "false",
];
