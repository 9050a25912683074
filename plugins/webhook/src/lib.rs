//! regsync notifier: POSTs each sync event as JSON to a webhook, the Rust
//! twin of `webhook-py` (same settings, same body).
//!
//! Settings (the `config:` map of the plugin's entry):
//! - `url`: where to POST (its host:port must be in the entry's `allowHosts`);
//! - `events`: comma-separated event kinds to send
//!   (default `image-copied,image-failed,sync-finished,sync-failed`).
//!
//! The body is one JSON object per event: `{"event": "image-copied",
//! "source", "target", "repo", "tags", "digest", "error", "durationMs",
//! "details": {"step": "0", …}}`.

use regsync_plugin_sdk::{Level, Notifier, SyncEvent, config, export_notifier, http_post, log};
use serde_json::json;

const DEFAULT_EVENTS: &str = "image-copied,image-failed,sync-finished,sync-failed";

/// The plugin.
pub struct Webhook;

/// The JSON body for one event.
pub fn body(event: &SyncEvent) -> String {
    let details: serde_json::Map<String, serde_json::Value> =
        event.details.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    json!({
        "event": event.kind,
        "source": event.source,
        "target": event.target,
        "repo": event.repo,
        "tags": event.tags,
        "digest": event.digest,
        "error": event.error,
        "durationMs": event.duration_ms,
        "details": details,
    })
    .to_string()
}

/// True when `kind` is among the comma-separated `wanted` kinds.
pub fn wanted(kind: &str, wanted: &str) -> bool {
    wanted.split(',').any(|w| w.trim() == kind)
}

impl Notifier for Webhook {
    // Every kind goes through one path, known or not: `events` decides.
    fn notify(event: SyncEvent) -> Result<(), String> {
        let url = config("url").ok_or("webhook: set config.url")?;
        if !wanted(&event.kind, &config("events").unwrap_or_else(|| DEFAULT_EVENTS.into())) {
            return Ok(());
        }
        let status = http_post(&url, "application/json", &body(&event))?;
        if status >= 300 {
            return Err(format!("webhook: {url} answered HTTP {status}"));
        }
        log(Level::Debug, &format!("posted {} to {url}", event.kind));
        Ok(())
    }
}

export_notifier!(Webhook);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_one_json_object_each() {
        let event = SyncEvent {
            kind: "image-failed".into(),
            source: "src/app:v1".into(),
            target: "dst/app:v1".into(),
            repo: "dst/app".into(),
            tags: vec!["v1".into()],
            digest: None,
            error: Some("boom".into()),
            duration_ms: 7,
            details: vec![("step".into(), "2".into())],
        };
        let v: serde_json::Value = serde_json::from_str(&body(&event)).unwrap();
        assert_eq!(v["event"], "image-failed");
        assert_eq!(v["error"], "boom");
        assert_eq!(v["digest"], serde_json::Value::Null);
        assert_eq!(v["details"]["step"], "2");
        assert!(wanted("image-failed", DEFAULT_EVENTS));
        assert!(!wanted("image-skipped", DEFAULT_EVENTS));
        assert!(wanted("sync-started", " image-copied , sync-started"));
    }
}
