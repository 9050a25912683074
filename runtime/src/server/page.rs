//! The status page at `/`: one self-contained HTML document rendered from a
//! [`Snapshot`], with its style and a small refresh script inline (no
//! external assets: it works offline and through `kubectl port-forward`).
//!
//! Every string from outside (step names, error texts, tags, registry
//! names) goes through [`escape`]; the script swaps in the server-rendered
//! `<main>` from `/status.fragment` every few seconds, so nothing is built
//! from data in the browser. The Content-Security-Policy allows exactly the
//! inline style and script below, by hash, and fetches to this origin.

use std::fmt::Write as _;
use std::sync::LazyLock;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::status::{Snapshot, StepRow};

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.3em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.2em 0 .4em}\
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}\
th{background:#f4f4f4}.ok{color:#176f2c}.bad{color:#b00020;font-weight:600}.muted{color:#777}\
.banner{padding:.6em 1em;margin:.6em 0;border-radius:4px}.banner.bad{background:#fde7ea;border:2px solid #b00020}\
.banner.ok{background:#e6f4ea;border:1px solid #176f2c}pre{white-space:pre-wrap;margin:.2em 0;font-size:12px}\
.meta span{margin-right:1.5em}";

const SCRIPT: &str = "setInterval(async()=>{try{const r=await fetch('/status.fragment',{cache:'no-store'});\
if(r.ok){document.querySelector('main').innerHTML=await r.text();}}catch(e){}},2000);";

fn sha256_b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

/// The page's Content-Security-Policy: nothing but its own inline style and
/// script (by hash) and fetches to this origin.
pub static CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        sha256_b64(STYLE),
        sha256_b64(SCRIPT)
    )
});

/// `text` safe inside HTML text and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `in 3 h`, `5 min ago`: how far `t` is from `now`, roughly.
pub fn relative(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    let n = secs.unsigned_abs();
    let amount = match n {
        0..60 => format!("{n} s"),
        60..3600 => format!("{} min", n / 60),
        3600..86_400 => format!("{} h", n / 3600),
        _ => format!("{} d", n / 86_400),
    };
    if secs >= 0 { format!("in {amount}") } else { format!("{amount} ago") }
}

fn time(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    format!("{} ({})", t.format("%Y-%m-%d %H:%M:%S UTC"), relative(now, t))
}

/// The whole page.
pub fn page(s: &Snapshot) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>regsync status</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>{STYLE}</style></head>\
         <body><main>{}</main><script>{SCRIPT}</script></body></html>",
        main(s)
    )
}

/// The `<main>` content, also served alone for the refresh.
pub fn main(s: &Snapshot) -> String {
    let now = s.now;
    let mut o = String::new();
    let _ = write!(o, "<h1>regsync {}</h1><p class=\"meta\">", escape(&s.version));
    if let Some(shard) = &s.shard {
        let _ = write!(o, "<span>shard {}</span>", escape(shard));
    }
    let _ = write!(
        o,
        "<span>config <code>{}</code></span><span>loaded {}</span></p>",
        escape(&s.config_file),
        time(now, s.loaded_at)
    );
    match &s.last_reload {
        Some(r) if !r.applied => {
            let _ = write!(
                o,
                "<div class=\"banner bad\" id=\"reload\" data-reload=\"rejected\"><strong>Last reload rejected</strong> {}; \
                 the previous config keeps running.",
                time(now, r.at)
            );
            for e in &r.errors {
                let _ = write!(o, "<pre>{}</pre>", escape(e));
            }
            o.push_str("</div>");
        }
        Some(r) => {
            let _ = write!(
                o,
                "<div class=\"banner ok\" id=\"reload\" data-reload=\"applied\">Last reload applied {}</div>",
                time(now, r.at)
            );
        }
        None => o.push_str("<div class=\"muted\" id=\"reload\" data-reload=\"none\">No reload since start.</div>"),
    }
    o.push_str("<h2>Steps</h2><table id=\"steps\"><tr><th>#</th><th>source → target</th><th>type</th><th>schedule</th><th>next run</th><th>now</th><th>last run</th><th>recent failures</th></tr>");
    for step in &s.steps {
        row(&mut o, now, step);
    }
    o.push_str("</table><h2>Registries</h2><table id=\"registries\"><tr><th>registry</th><th>requests</th><th>errors</th><th>rate limit left</th><th>resets</th></tr>");
    for r in &s.registries {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.registry),
            r.requests,
            r.errors,
            r.rate_limit_remaining.map_or("-".to_string(), |n| n.to_string()),
            r.rate_limit_reset.map_or("-".to_string(), |t| time(now, t)),
        );
    }
    o.push_str("</table><h2>Plugins</h2><table id=\"plugins\"><tr><th>name</th><th>file or reference</th><th>digest</th><th>kinds</th><th>WIT</th></tr>");
    for p in &s.plugins {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(&p.name),
            escape(&p.source),
            escape(&p.digest),
            escape(&p.kinds.join(", ")),
            escape(&p.wit)
        );
    }
    let _ = write!(
        o,
        "</table><p class=\"muted\">Updated {}. Also as <a href=\"/status.json\">/status.json</a> and <a href=\"/metrics\">/metrics</a>.</p>",
        now.format("%H:%M:%S UTC")
    );
    o
}

fn row(o: &mut String, now: DateTime<Utc>, step: &StepRow) {
    let next = match (&step.running, step.next_run) {
        (Some(_), _) => "running".to_string(),
        (None, Some(t)) => time(now, t),
        (None, None) => "-".to_string(),
    };
    let running = match &step.running {
        Some(r) => format!(
            "{} of {} images, {} since {}",
            r.done,
            r.found,
            crate::pipeline::report::human_bytes(r.bytes),
            relative(now, r.started)
        ),
        None => "idle".to_string(),
    };
    let last = match &step.last_run {
        Some(l) => {
            let mut parts = vec![
                format!("{} copied", l.copied),
                format!("{} up to date", l.up_to_date),
                format!("{} skipped", l.skipped),
            ];
            if l.refused > 0 {
                parts.push(format!("{} refused", l.refused));
            }
            if l.denied > 0 {
                parts.push(format!("{} denied", l.denied));
            }
            parts.push(format!("{} failed", l.failed));
            format!(
                "<span class=\"{}\">{}</span> {} in {:.1} s: {}",
                if l.ok { "ok" } else { "bad" },
                if l.ok { "ok" } else { "failed" },
                relative(now, l.finished),
                l.duration_ms as f64 / 1000.0,
                parts.join(", ")
            )
        }
        None => "<span class=\"muted\">not yet</span>".to_string(),
    };
    let mut failures = String::new();
    for f in &step.failures {
        let _ = write!(failures, "<pre>{} {}</pre>", relative(now, f.at), escape(&f.error));
    }
    let _ = write!(
        o,
        "<tr class=\"step\" data-step=\"{}\"><td>{}</td><td>{} → {}</td><td>{}</td><td><code>{}</code></td><td class=\"next\">{}</td><td>{}</td><td class=\"last\">{}</td><td class=\"failures\">{}</td></tr>",
        step.index,
        step.index,
        escape(&step.source),
        escape(&step.target),
        escape(&step.kind),
        escape(&step.schedule),
        next,
        running,
        last,
        failures
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_become_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn times_read_as_people_say_them() {
        let now = Utc::now();
        assert_eq!(relative(now, now + chrono::Duration::hours(3)), "in 3 h");
        assert_eq!(relative(now, now - chrono::Duration::minutes(5)), "5 min ago");
        assert_eq!(relative(now, now + chrono::Duration::seconds(42)), "in 42 s");
        assert_eq!(relative(now, now - chrono::Duration::days(2)), "2 d ago");
    }

    #[test]
    fn the_policy_names_the_inline_style_and_script() {
        assert!(CSP.contains(&format!("'sha256-{}'", sha256_b64(STYLE))));
        assert!(CSP.contains(&format!("'sha256-{}'", sha256_b64(SCRIPT))));
        assert!(CSP.starts_with("default-src 'none'"));
    }
}
