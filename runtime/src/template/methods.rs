//! Method calls with arguments, such as `{{ (time.Now).Format "20060102" }}`.
//!
//! `gotmpl` resolves `.Name` only as a map lookup and rejects arguments after
//! it. We rewrite each command whose operand is a field chain *and* that has
//! arguments into a call of the hidden function [`METHOD_FUNC`], which
//! dispatches on the receiver's type marker. Zero-argument methods (`.Year`)
//! are plain fields of the value maps and need no rewrite.

use std::sync::Arc;

use gotmpl::parse::{CommandNode, Expr, ListNode, Node, PipeNode, Pos, SmolStr};
use gotmpl::{TemplateError as GoError, Value};

use super::gotime::{self, TIME_FUNCS_TYPE, TIME_TYPE};

/// The hidden dispatcher the rewrite calls: `__method NAME RECEIVER ARGS...`.
pub(crate) const METHOD_FUNC: &str = "__method";

/// Rewrites every method call with arguments in a parsed template body.
pub(crate) fn rewrite_list(list: &mut ListNode) {
    for node in &mut list.nodes {
        rewrite_node(node);
    }
}

fn rewrite_node(node: &mut Node) {
    match node {
        Node::List(list) => rewrite_list(list),
        Node::Action(action) => rewrite_pipe(&mut action.pipe),
        Node::If(branch) | Node::Range(branch) | Node::With(branch) => {
            rewrite_pipe(&mut branch.pipe);
            rewrite_list(&mut branch.body);
            if let Some(else_body) = &mut branch.else_body {
                rewrite_list(else_body);
            }
        }
        Node::Template(t) => {
            if let Some(pipe) = &mut t.pipe {
                rewrite_pipe(pipe);
            }
        }
        Node::Define(d) => rewrite_list(&mut d.body),
        Node::Text(_) | Node::Break(_) | Node::Continue(_) => {}
    }
}

fn rewrite_pipe(pipe: &mut PipeNode) {
    for (i, cmd) in pipe.commands.iter_mut().enumerate() {
        for arg in &mut cmd.args {
            rewrite_expr(arg);
        }
        // A later command in a pipeline receives the previous result as an argument.
        let has_args = cmd.args.len() > 1 || i > 0;
        if has_args && let Some(call) = method_call(cmd) {
            *cmd = call;
        }
    }
}

fn rewrite_expr(expr: &mut Expr) {
    match expr {
        Expr::Pipe(_, pipe) => rewrite_pipe(pipe),
        Expr::Chain(_, inner, _) => rewrite_expr(inner),
        _ => {}
    }
}

/// `RECV.Name args...` → `__method "Name" RECV args...`, when the operand is a chain.
fn method_call(cmd: &CommandNode) -> Option<CommandNode> {
    let (pos, receiver, name) = match &cmd.args[0] {
        Expr::Field(pos, fields) if !fields.is_empty() => {
            let (name, rest) = fields.split_last()?;
            let receiver = if rest.is_empty() { Expr::Dot(*pos) } else { Expr::Field(*pos, rest.to_vec()) };
            (*pos, receiver, name.clone())
        }
        Expr::Variable(pos, var, fields) if !fields.is_empty() => {
            let (name, rest) = fields.split_last()?;
            (*pos, Expr::Variable(*pos, var.clone(), rest.to_vec()), name.clone())
        }
        Expr::Chain(pos, inner, fields) if !fields.is_empty() => {
            let (name, rest) = fields.split_last()?;
            let receiver =
                if rest.is_empty() { (**inner).clone() } else { Expr::Chain(*pos, inner.clone(), rest.to_vec()) };
            (*pos, receiver, name.clone())
        }
        _ => return None,
    };
    let mut args =
        vec![Expr::Identifier(pos, SmolStr::new(METHOD_FUNC)), Expr::String(pos, Arc::from(name.as_str())), receiver];
    args.extend(cmd.args[1..].iter().cloned());
    Some(CommandNode { pos: Pos { ..cmd.pos }, args })
}

fn exec_err(msg: String) -> GoError {
    GoError::Exec(msg)
}

fn type_of(v: &Value) -> &str {
    v.field("__type").and_then(Value::as_str).unwrap_or_else(|| v.type_name())
}

fn int_arg(args: &[Value], i: usize, method: &str) -> Result<i64, GoError> {
    args.get(i)
        .and_then(Value::as_int)
        .ok_or_else(|| exec_err(format!("wrong type for argument {} of method {method}: want int", i + 1)))
}

fn str_arg<'a>(args: &'a [Value], i: usize, method: &str) -> Result<&'a str, GoError> {
    args.get(i)
        .and_then(Value::as_str)
        .ok_or_else(|| exec_err(format!("wrong type for argument {} of method {method}: want string", i + 1)))
}

fn expect_args(args: &[Value], n: usize, method: &str) -> Result<(), GoError> {
    if args.len() != n {
        return Err(exec_err(format!("wrong number of args for {method}: want {n} got {}", args.len())));
    }
    Ok(())
}

/// The dispatcher behind [`METHOD_FUNC`].
pub(crate) fn call_method(all: &[Value]) -> Result<Value, GoError> {
    let (Some(Value::String(name)), Some(receiver)) = (all.first(), all.get(1)) else {
        return Err(exec_err("malformed method call".into()));
    };
    let args = &all[2..];
    match (type_of(receiver), name.as_ref()) {
        (TIME_TYPE, "Format") => {
            expect_args(args, 1, "Format")?;
            let (t, zone) = gotime::from_time_value(receiver).ok_or_else(|| exec_err("invalid time value".into()))?;
            Ok(Value::String(Arc::from(gotime::format(&t, zone.as_deref(), str_arg(args, 0, "Format")?))))
        }
        (TIME_TYPE, "AddDate") => {
            expect_args(args, 3, "AddDate")?;
            let (t, zone) = gotime::from_time_value(receiver).ok_or_else(|| exec_err("invalid time value".into()))?;
            let (y, m, d) = (int_arg(args, 0, "AddDate")?, int_arg(args, 1, "AddDate")?, int_arg(args, 2, "AddDate")?);
            let shifted = add_date(t, y, m, d).ok_or_else(|| exec_err("AddDate: result out of range".into()))?;
            Ok(gotime::time_value(&shifted, zone.as_deref()))
        }
        (TIME_FUNCS_TYPE, "Parse") => {
            expect_args(args, 2, "Parse")?;
            let t = gotime::parse(str_arg(args, 0, "Parse")?, str_arg(args, 1, "Parse")?).map_err(exec_err)?;
            let zone = (t.offset().local_minus_utc() == 0).then_some("UTC");
            Ok(gotime::time_value(&t, zone))
        }
        (ty, method) => Err(exec_err(format!("can't call method {method} with arguments on {ty}"))),
    }
}

/// Go's `AddDate`: months and days may overflow and normalise (Jan 31 + 1 month = Mar 3).
fn add_date(
    t: chrono::DateTime<chrono::FixedOffset>,
    years: i64,
    months: i64,
    days: i64,
) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    use chrono::{Datelike, NaiveDate, TimeZone};
    let total_months = i64::from(t.year()) * 12 + i64::from(t.month0()) + years * 12 + months;
    let year = i32::try_from(total_months.div_euclid(12)).ok()?;
    let month0 = total_months.rem_euclid(12) as u32;
    let first = NaiveDate::from_ymd_opt(year, month0 + 1, 1)?;
    let date = first.checked_add_signed(chrono::Duration::days(i64::from(t.day()) - 1 + days))?;
    t.offset().from_local_datetime(&date.and_time(t.time())).single()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[test]
    fn add_date_normalises_like_go() {
        let t = DateTime::parse_from_rfc3339("2026-01-31T10:00:00+00:00").unwrap();
        assert_eq!(add_date(t, 0, 1, 0).unwrap().to_rfc3339(), "2026-03-03T10:00:00+00:00");
        assert_eq!(add_date(t, 1, -1, 1).unwrap().to_rfc3339(), "2027-01-01T10:00:00+00:00");
    }
}
