//! What the server is doing, for people and scripts: the data behind `/`
//! (an HTML page, `page.rs`) and `/status.json`.
//!
//! The server writes here as things happen (a config applied or rejected, a
//! run starting and ending, an image done, the next run scheduled); the
//! endpoints read a [`Snapshot`]. Everything shown comes from the config's
//! public parts, run reports and registry counters: credentials never enter.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::diff::StepKey;
use crate::client::stats::RegistryStats;
use crate::config::Config;
use crate::pipeline::{ImageReport, ImageWatch, StepReport};
use crate::plugin::PluginSet;

/// The version of `/status.json`'s shape; a change that removes or renames
/// a field bumps it.
pub const SCHEMA: u32 = 1;

/// Failures kept per step.
const FAILURES_KEPT: usize = 5;

/// The whole status, as `/status.json` serves it.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// [`SCHEMA`].
    pub schema: u32,
    /// regsync's version.
    pub version: String,
    /// `I/N` when this process is one shard.
    pub shard: Option<String>,
    /// The config file.
    pub config_file: String,
    /// When the running config was loaded.
    pub loaded_at: DateTime<Utc>,
    /// The last reload, if any happened.
    pub last_reload: Option<Reload>,
    /// When this snapshot was taken.
    pub now: DateTime<Utc>,
    /// One per step, in config order.
    pub steps: Vec<StepRow>,
    /// Every registry talked to.
    pub registries: Vec<RegistryStats>,
    /// The loaded plugins.
    pub plugins: Vec<PluginRow>,
}

/// A reload's result.
#[derive(Debug, Clone, Serialize)]
pub struct Reload {
    /// When it was applied or rejected.
    pub at: DateTime<Utc>,
    /// True when the new config runs now.
    pub applied: bool,
    /// Why it was rejected, one problem per line.
    pub errors: Vec<String>,
}

/// One step.
#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    /// Position in `sync:`.
    pub index: usize,
    /// Source.
    pub source: String,
    /// Target.
    pub target: String,
    /// `image`, `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The cron expression, or `@every <interval>`.
    pub schedule: String,
    /// When it runs next (none while running, or without a schedule).
    pub next_run: Option<DateTime<Utc>>,
    /// The run in progress, if any.
    pub running: Option<Running>,
    /// The last finished run.
    pub last_run: Option<LastRun>,
    /// The most recent failures, newest first.
    pub failures: Vec<Failure>,
}

/// A run in progress.
#[derive(Debug, Clone, Serialize)]
pub struct Running {
    /// When it started.
    pub started: DateTime<Utc>,
    /// Images found so far.
    pub found: usize,
    /// Images done.
    pub done: usize,
    /// Bytes sent.
    pub bytes: u64,
}

/// A finished run.
#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    /// When it ended.
    pub finished: DateTime<Utc>,
    /// How long it took, milliseconds.
    pub duration_ms: u64,
    /// True without errors.
    pub ok: bool,
    /// Copied or refreshed.
    pub copied: usize,
    /// Already up to date.
    pub up_to_date: usize,
    /// Skipped.
    pub skipped: usize,
    /// Refused by the signature policy.
    pub refused: usize,
    /// Denied by gates.
    pub denied: usize,
    /// Failures (images and the step's own).
    pub failed: usize,
}

/// A failure of a step.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// When the run it happened in ended.
    pub at: DateTime<Utc>,
    /// What went wrong.
    pub error: String,
}

/// A loaded plugin.
#[derive(Debug, Clone, Serialize)]
pub struct PluginRow {
    /// Its name.
    pub name: String,
    /// Its file or OCI reference.
    pub source: String,
    /// `sha256:` of its component.
    pub digest: String,
    /// What it is used as (`tag filter`, `gate`, …).
    pub kinds: Vec<String>,
    /// The `regsync:plugin` version it was built for.
    pub wit: String,
}

/// The board the server writes and the endpoints read.
pub struct Board {
    inner: Mutex<Inner>,
}

struct Inner {
    version: String,
    shard: Option<String>,
    config_file: String,
    loaded_at: DateTime<Utc>,
    last_reload: Option<Reload>,
    /// Step keys in config order; images report by position.
    order: Vec<StepKey>,
    steps: HashMap<StepKey, StepRow>,
    plugins: Vec<PluginRow>,
}

impl Board {
    /// A board for the config at `config_file`.
    pub fn new(config_file: &str, shard: Option<crate::shard::Shard>) -> Self {
        Board {
            inner: Mutex::new(Inner {
                version: crate::version::VersionInfo::current().vcs_tag,
                shard: shard.map(|s| s.to_string()),
                config_file: config_file.to_string(),
                loaded_at: Utc::now(),
                last_reload: None,
                order: Vec::new(),
                steps: HashMap::new(),
                plugins: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("status board poisoned")
    }

    /// The config now running: its steps (a step kept across a reload keeps
    /// its history) and plugins.
    pub fn set_config(&self, config: &Config, plugins: &PluginSet) {
        let keys = super::diff::keys(&config.sync);
        let mut inner = self.lock();
        let mut steps = HashMap::new();
        for (key, step) in keys.iter().zip(&config.sync) {
            let spec = &step.spec;
            let schedule = if !spec.options.schedule.is_empty() {
                spec.options.schedule.clone()
            } else if spec.options.interval.is_zero() {
                "none (never runs in the server)".to_string()
            } else {
                format!("@every {}", spec.options.interval)
            };
            let mut row = inner.steps.remove(key).unwrap_or(StepRow {
                index: step.index,
                source: spec.source.clone(),
                target: spec.target.clone(),
                kind: spec.kind.as_str().to_string(),
                schedule: String::new(),
                next_run: None,
                running: None,
                last_run: None,
                failures: Vec::new(),
            });
            row.index = step.index;
            row.schedule = schedule;
            steps.insert(key.clone(), row);
        }
        inner.steps = steps;
        inner.order = keys;
        inner.loaded_at = Utc::now();
        inner.plugins = plugins
            .iter()
            .map(|p| PluginRow {
                name: p.name().to_string(),
                source: p.spec().source().to_string(),
                digest: p.digest(),
                kinds: p.kinds().iter().map(|k| k.info().label.to_string()).collect(),
                wit: p.wit().to_string(),
            })
            .collect();
    }

    /// A reload was applied (after [`Self::set_config`]) or rejected.
    pub fn reloaded(&self, applied: bool, errors: Vec<String>) {
        self.lock().last_reload = Some(Reload { at: Utc::now(), applied, errors });
    }

    /// `key` runs next at `at`.
    pub fn next_run(&self, key: &StepKey, at: Option<DateTime<Utc>>) {
        if let Some(row) = self.lock().steps.get_mut(key) {
            row.next_run = at;
        }
    }

    /// A run of `key` began.
    pub fn started(&self, key: &StepKey) {
        if let Some(row) = self.lock().steps.get_mut(key) {
            row.running = Some(Running { started: Utc::now(), found: 0, done: 0, bytes: 0 });
        }
    }

    /// A run of `key` ended with `report`.
    pub fn finished(&self, key: &StepKey, report: &StepReport) {
        let mut inner = self.lock();
        let Some(row) = inner.steps.get_mut(key) else { return };
        let now = Utc::now();
        row.running = None;
        let c = crate::pipeline::report::Counts::of(report);
        row.last_run = Some(LastRun {
            finished: now,
            duration_ms: report.duration.as_millis() as u64,
            ok: report.ok(),
            copied: c.copied + c.refreshed,
            up_to_date: c.up_to_date,
            skipped: c.skipped,
            refused: c.refused,
            denied: c.denied,
            failed: c.failed,
        });
        let mut failures: VecDeque<Failure> = row.failures.drain(..).collect();
        for e in report.errors.iter().rev() {
            failures.push_front(Failure { at: now, error: e.to_string() });
        }
        failures.truncate(FAILURES_KEPT);
        row.failures = failures.into();
    }

    /// What the endpoints serve.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        let mut steps: Vec<StepRow> = inner.order.iter().filter_map(|k| inner.steps.get(k).cloned()).collect();
        steps.sort_by_key(|s| s.index);
        Snapshot {
            schema: SCHEMA,
            version: inner.version.clone(),
            shard: inner.shard.clone(),
            config_file: inner.config_file.clone(),
            loaded_at: inner.loaded_at,
            last_reload: inner.last_reload.clone(),
            now: Utc::now(),
            steps,
            registries: crate::client::stats::snapshot(),
            plugins: inner.plugins.clone(),
        }
    }

    fn running_at(&self, step: usize, update: impl FnOnce(&mut Running)) {
        let mut inner = self.lock();
        let Some(key) = inner.order.get(step).cloned() else { return };
        if let Some(running) = inner.steps.get_mut(&key).and_then(|r| r.running.as_mut()) {
            update(running);
        }
    }
}

impl ImageWatch for Board {
    fn images_found(&self, step: usize, n: usize) {
        self.running_at(step, |r| r.found += n);
    }

    fn image_done(&self, step: usize, image: &ImageReport) {
        self.running_at(step, |r| {
            r.done += 1;
            r.bytes += image.stats.bytes;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{CopyStats, Outcome};

    fn config() -> Config {
        let yaml = "defaults:\n  interval: 1h\nsync:\n  - {source: ocidir://a, target: ocidir://b, type: repository}\n  - {source: ocidir://c:v1, target: ocidir://d:v1, type: image}\n";
        crate::config::load_str(yaml, "t.yml", &crate::template::Templates::default()).unwrap().config
    }

    #[test]
    fn a_run_shows_its_progress_then_its_counts_and_failures() {
        let config = config();
        let board = Board::new("t.yml", None);
        board.set_config(&config, &PluginSet::default());
        let key = super::super::diff::keys(&config.sync)[0].clone();
        board.started(&key);
        board.images_found(0, 3);
        let mut image = ImageReport::failed("a:v1", "b:v1");
        image.outcome = Outcome::Copied;
        image.stats = CopyStats { bytes: 2048, ..CopyStats::default() };
        board.image_done(0, &image);
        let running = board.snapshot().steps[0].running.clone().unwrap();
        assert_eq!((running.found, running.done, running.bytes), (3, 1, 2048));
        assert!(board.snapshot().steps[1].running.is_none(), "the other step is idle");

        let mut report = StepReport::new(0, "ocidir://a", "ocidir://b", "repository");
        report.add(image, true);
        report.errors.push(crate::pipeline::StageError::new(
            crate::pipeline::Stage::Copy,
            0,
            "ocidir://b:v2",
            crate::pipeline::Cause::Filter("<b>boom</b>".into()),
        ));
        board.finished(&key, &report);
        let row = board.snapshot().steps[0].clone();
        assert!(row.running.is_none());
        let last = row.last_run.unwrap();
        assert_eq!((last.ok, last.copied, last.failed), (false, 1, 1));
        assert_eq!(row.failures[0].error, "ocidir://b:v2: <b>boom</b>");
        assert_eq!(row.schedule, "@every 1h0m0s");
        // A reload that keeps the step keeps its history.
        board.set_config(&config, &PluginSet::default());
        assert!(board.snapshot().steps[0].last_run.is_some());
        board.reloaded(false, vec!["bad".into()]);
        assert_eq!(board.snapshot().last_reload.unwrap().errors, ["bad"]);
    }
}
