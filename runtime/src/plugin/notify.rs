//! Events for notifier plugins, and their delivery: a bounded queue per
//! notifier drained by one task, so a slow or failing notifier never blocks
//! or fails a copy (events beyond the queue are dropped and logged).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use super::Plugin;
use super::bindings::{v0_1_0, v0_2_0};
use crate::pipeline::{Outcome, StepReport};

/// Events waiting per notifier before new ones are dropped.
pub const QUEUE: usize = 1024;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A step run began.
    SyncStarted,
    /// An image was copied (or refreshed).
    ImageCopied,
    /// An image needed nothing, or was skipped.
    ImageSkipped,
    /// An image failed.
    ImageFailed,
    /// The signature policy refused an image.
    ImageRefused,
    /// A gate denied an image.
    ImageDenied,
    /// A step run ended without errors.
    SyncFinished,
    /// A step run ended with errors.
    SyncFailed,
}

impl EventKind {
    /// The name plugins see (`image-copied`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SyncStarted => "sync-started",
            EventKind::ImageCopied => "image-copied",
            EventKind::ImageSkipped => "image-skipped",
            EventKind::ImageFailed => "image-failed",
            EventKind::ImageRefused => "image-refused",
            EventKind::ImageDenied => "image-denied",
            EventKind::SyncFinished => "sync-finished",
            EventKind::SyncFailed => "sync-failed",
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncEvent {
    /// What happened.
    pub kind: EventKind,
    /// Step or image source.
    pub source: String,
    /// Step or image target.
    pub target: String,
    /// Repository (image events).
    pub repo: String,
    /// Tags involved.
    pub tags: Vec<String>,
    /// Digest (image events).
    pub digest: Option<String>,
    /// Error text (failures).
    pub error: Option<String>,
    /// Duration, milliseconds.
    pub duration_ms: u64,
    /// Named extras (`step`, `reason`, `bytes-sent`); the WIT grows here.
    pub details: Vec<(String, String)>,
}

/// The event as each WIT version's record (the same fields in both).
macro_rules! to_wit {
    ($($wit:path),*) => {$(
        impl From<&SyncEvent> for $wit {
            fn from(e: &SyncEvent) -> Self {
                Self {
                    kind: e.kind.as_str().to_string(),
                    source: e.source.clone(),
                    target: e.target.clone(),
                    repo: e.repo.clone(),
                    tags: e.tags.clone(),
                    digest: e.digest.clone(),
                    error: e.error.clone(),
                    duration_ms: e.duration_ms,
                    details: e.details.clone(),
                }
            }
        }
    )*};
}

to_wit!(
    v0_1_0::notifier::exports::regsync::plugin::notifier::SyncEvent,
    v0_2_0::notifier::exports::regsync::plugin::notifier::SyncEvent
);

/// The events of one finished step run: each image, then the step's end.
pub fn events_of(report: &StepReport) -> Vec<SyncEvent> {
    let mut out = Vec::new();
    let step = ("step".to_string(), report.index.to_string());
    for image in &report.images {
        let kind = match image.outcome {
            Outcome::Copied | Outcome::Refreshed => EventKind::ImageCopied,
            // Cancelled images failed nobody: the run was stopped.
            Outcome::Failed if image.error.is_none() => continue,
            Outcome::Failed => EventKind::ImageFailed,
            Outcome::Refused => EventKind::ImageRefused,
            Outcome::Denied => EventKind::ImageDenied,
            _ => EventKind::ImageSkipped,
        };
        let mut details = vec![step.clone()];
        if !image.reason.is_empty() {
            details.push(("reason".to_string(), image.reason.clone()));
        }
        details.push(("bytes-sent".to_string(), image.stats.bytes.to_string()));
        let (repo, tag) = split_tag(&image.target);
        out.push(SyncEvent {
            kind,
            source: image.source.clone(),
            target: image.target.clone(),
            repo,
            tags: tag.into_iter().collect(),
            digest: (!image.digest.is_empty()).then(|| image.digest.clone()),
            error: image.error.clone(),
            duration_ms: image.duration.as_millis() as u64,
            details,
        });
    }
    let failed = !report.ok();
    out.push(SyncEvent {
        kind: if failed { EventKind::SyncFailed } else { EventKind::SyncFinished },
        source: report.source.clone(),
        target: report.target.clone(),
        repo: String::new(),
        tags: report
            .images
            .iter()
            .filter(|i| i.outcome == Outcome::Copied)
            .filter_map(|i| split_tag(&i.target).1)
            .collect(),
        digest: None,
        error: failed.then(|| report.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")),
        duration_ms: report.duration.as_millis() as u64,
        details: vec![step],
    });
    out
}

/// `registry/repo:tag` → (`registry/repo`, `tag`).
fn split_tag(reference: &str) -> (String, Option<String>) {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), Some(tag.to_string())),
        _ => (name.to_string(), None),
    }
}

/// Delivers events to one notifier plugin in the background.
#[derive(Clone)]
pub struct Notifier {
    name: String,
    queue: mpsc::Sender<SyncEvent>,
    /// Events queued or being delivered.
    pending: Arc<AtomicUsize>,
}

impl Notifier {
    /// Starts the delivery task (needs a tokio runtime).
    pub fn start(plugin: Arc<Plugin>) -> Self {
        let (tx, mut rx) = mpsc::channel::<SyncEvent>(QUEUE);
        let name = plugin.name().to_string();
        let pending = Arc::new(AtomicUsize::new(0));
        let done = pending.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                let p = plugin.clone();
                let result = tokio::task::spawn_blocking(move || p.notify(&event)).await;
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(plugin = plugin.name(), error = %e, "Notifier failed"),
                    Err(e) => tracing::warn!(plugin = plugin.name(), error = %e, "Notifier panicked"),
                }
                done.fetch_sub(1, Ordering::SeqCst);
            }
        });
        Notifier { name, queue: tx, pending }
    }

    /// Queues an event; never waits.
    pub fn send(&self, event: SyncEvent) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.queue.try_send(event).is_err() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(plugin = self.name, "Notifier queue full, event dropped");
        }
    }

    /// Waits (up to `limit`) until every queued event was delivered, e.g. before `once` exits.
    pub async fn flush(&self, limit: Duration) {
        let start = std::time::Instant::now();
        while self.pending.load(Ordering::SeqCst) > 0 {
            if start.elapsed() >= limit {
                tracing::warn!(
                    plugin = self.name,
                    left = self.pending.load(Ordering::SeqCst),
                    "Notifier events not delivered before exit"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl crate::pipeline::StepObserver for Notifier {
    fn started(&self, step: &crate::config::SyncStep) {
        self.send(SyncEvent {
            kind: EventKind::SyncStarted,
            source: step.spec.source.clone(),
            target: step.spec.target.clone(),
            repo: String::new(),
            tags: Vec::new(),
            digest: None,
            error: None,
            duration_ms: 0,
            details: vec![("step".to_string(), step.index.to_string())],
        });
    }

    fn finished(&self, report: &StepReport) {
        for event in events_of(report) {
            self.send(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(target: &str, outcome: Outcome, digest: &str) -> crate::pipeline::ImageReport {
        crate::pipeline::ImageReport {
            source: target.replace("dst", "src"),
            target: target.into(),
            outcome,
            reason: String::new(),
            digest: digest.into(),
            stats: Default::default(),
            duration: Duration::from_millis(7),
            error: None,
            rate_limit_remaining: None,
            source_registry: String::new(),
        }
    }

    #[test]
    fn a_report_becomes_one_event_per_image_then_the_end_of_the_step() {
        let mut report = StepReport::new(0, "src/app", "dst/app", "repository");
        for i in [
            image("dst/app:v1", Outcome::Copied, "sha256:1"),
            image("dst/app:v2", Outcome::UpToDate, "sha256:2"),
            image("dst/app:v3", Outcome::Failed, ""),
            image("dst/app:v4", Outcome::Failed, ""),
        ] {
            report.add(i, true);
        }
        report.duration = Duration::from_secs(2);
        report.images[2].error = Some("dst/app:v3: boom".into());
        let events = events_of(&report);
        let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
        // v4 failed without an error: it was cancelled, which is no image's failure.
        assert_eq!(
            kinds,
            [EventKind::ImageCopied, EventKind::ImageSkipped, EventKind::ImageFailed, EventKind::SyncFinished]
        );
        assert_eq!(events[2].error.as_deref(), Some("dst/app:v3: boom"));
        assert_eq!(events[2].kind.as_str(), "image-failed");
        assert!(events.iter().all(|e| e.details.contains(&("step".to_string(), "0".to_string()))));
        assert_eq!(events[0].repo, "dst/app");
        assert_eq!(events[0].tags, ["v1"]);
        assert_eq!(events[0].digest.as_deref(), Some("sha256:1"));
        assert_eq!(events[0].source, "src/app:v1");
        assert_eq!(events[3].tags, ["v1"]);
        assert_eq!(events[3].duration_ms, 2000);

        report.errors.push(crate::pipeline::StageError::new(
            crate::pipeline::Stage::Copy,
            0,
            "dst/app:v3",
            crate::pipeline::Cause::Filter("boom".into()),
        ));
        let last = events_of(&report).pop().unwrap();
        assert_eq!(last.kind, EventKind::SyncFailed);
        assert_eq!(last.error.as_deref(), Some("dst/app:v3: boom"));
    }

    #[test]
    fn a_refused_image_is_an_image_refused_event_with_its_reason() {
        let mut report = StepReport::new(0, "src/app", "dst/app", "repository");
        let mut refused = image("dst/app:v1", Outcome::Refused, "sha256:1");
        refused.reason = "no signatures found for sha256:1".into();
        refused.error = Some("refused by the signature policy: no signatures found for sha256:1".into());
        report.add(refused, true);
        let events = events_of(&report);
        assert_eq!(events[0].kind.as_str(), "image-refused");
        assert!(events[0].details.contains(&("reason".to_string(), "no signatures found for sha256:1".to_string())));
    }

    #[test]
    fn a_denied_image_is_an_image_denied_event_with_the_gates_reason() {
        let mut report = StepReport::new(0, "src/app", "dst/app", "repository");
        let mut denied = image("dst/app:v1", Outcome::Denied, "sha256:1");
        denied.reason = "gate \"max-age\": built 400 days ago".into();
        report.add(denied, true);
        let events = events_of(&report);
        assert_eq!(events[0].kind.as_str(), "image-denied");
        assert!(
            events[0].details.contains(&("reason".to_string(), "gate \"max-age\": built 400 days ago".to_string()))
        );
        assert_eq!(events[1].kind, EventKind::SyncFinished, "a denial adds no step error by itself");
    }

    #[test]
    fn tags_are_split_from_references() {
        assert_eq!(split_tag("r:5000/app:v1"), ("r:5000/app".to_string(), Some("v1".to_string())));
        assert_eq!(split_tag("r:5000/app:v1@sha256:ab"), ("r:5000/app".to_string(), Some("v1".to_string())));
        assert_eq!(split_tag("r:5000/app"), ("r:5000/app".to_string(), None));
    }
}
