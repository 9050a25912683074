//! The sync pipeline. Every step runs through the same stages, one module each:
//!
//! ```text
//! discover → filter → plan → [verify → gates] → backup → copy (+ referrers)
//! ```
//!
//! `discover` lists what a step covers, `filter` keeps what the filters
//! allow, `plan` looks at source and target and decides per image (a typed
//! [`Plan`]), `backup` saves a target about to be overwritten, and `copy`
//! carries out the plan (its `referrers` module brings referrers and digest
//! tags). What a run learns and writes is shared through one [`RunState`],
//! and lookups both plan and copy need live in `lookup`. The result of a
//! step is a [`StepReport`]. Checks run concurrently; writes wait for one of
//! the `parallel` copy slots (PAR-1, docs/decisions.md).

pub(crate) mod admission;
pub(crate) mod backup;
pub(crate) mod cells;
pub mod context;
pub(crate) mod copy;
pub(crate) mod discover;
pub(crate) mod error;
pub(crate) mod filter;
pub mod gate;
mod image;
pub(crate) mod plan;
pub mod report;
pub(crate) mod state;
pub(crate) mod verify;
pub(crate) mod walk;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use self::context::{CopyOptions, Scope};
use self::discover::{RepositoryUnit, Units};
pub use self::error::{Cause, Stage, StageError};
use self::filter::TagFilterExtension;
use self::plan::platform::PlatformCache;
pub use self::plan::{Mode, Plan};
pub use self::report::{CopyStats, ImageReport, Outcome, StepReport};
pub use self::state::RunState;
use crate::client::{Client, ClientError};
use crate::config::{Config, SyncStep, SyncType};
use crate::reference::Reference;

/// Knobs of the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Stop at the first error (`--abort-on-error`): steps and images then
    /// run one at a time in config order, and nothing starts after a failure.
    pub abort_on_error: bool,
    /// Steps checked at once.
    pub step_concurrency: usize,
    /// Images of one step checked at once.
    pub image_concurrency: usize,
    /// Replaces the rate-limit retry wait (tests; the config floor is 5 minutes).
    pub rate_limit_retry: Option<Duration>,
    /// `--shard`: only target repositories this shard owns are synced.
    pub shard: Option<crate::shard::Shard>,
    /// Keep every image's report in its step's report. Off, only what a
    /// summary prints (`check`'s stale images) and what notifiers read (steps
    /// with `notify:`) is kept, and counts and totals are tallied as images
    /// end: a step over a hundred thousand tags then needs no memory per tag.
    pub keep_images: bool,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            abort_on_error: false,
            step_concurrency: 16,
            image_concurrency: 8,
            rate_limit_retry: None,
            shard: None,
            keep_images: true,
        }
    }
}

/// Runs sync steps.
pub struct Pipeline {
    client: Client,
    slots: Arc<Semaphore>,
    /// Index digest + platform → the chosen child (IMG-6), bounded unlike regsync's.
    platforms: PlatformCache,
    options: PipelineOptions,
    cancel: CancellationToken,
    /// Tag filters by name (plugins), for steps' `filters:`.
    filters: std::collections::HashMap<String, Arc<dyn TagFilterExtension>>,
    /// Observers by name (notifier plugins), for steps' `notify:`.
    observers: std::collections::HashMap<String, Arc<dyn StepObserver>>,
    /// Write locks shared by every run (see [`RunState`]).
    writes: Arc<crate::client::locks::KeyedLocks>,
    /// Told how many images there are and when each ends (a progress display).
    images: Option<Arc<dyn ImageWatch>>,
    /// `defaults.limits` (graph depth and referrer fan-out).
    limits: crate::config::Limits,
    /// Digests the signature policies accepted, for the pipeline's life.
    verified: verify::Verified,
    /// Gates by name (plugins), for steps' `gates:`.
    gates: std::collections::HashMap<String, Arc<dyn gate::GateExtension>>,
}

/// Follows a run image by image (a progress display).
pub trait ImageWatch: Send + Sync {
    /// `n` more images of step `step` (its position in `sync:`) were found
    /// to process (a repository's filtered tags).
    fn images_found(&self, step: usize, n: usize);
    /// One image of step `step` ended, whichever way.
    fn image_done(&self, step: usize, image: &ImageReport);
}

/// Told when a step run starts and ends (notifier plugins).
pub trait StepObserver: Send + Sync {
    /// A run of `step` begins.
    fn started(&self, step: &SyncStep);
    /// A run ended; `report` says what it did.
    fn finished(&self, report: &StepReport);
}

/// One repository of a step: its source and target, and whether every
/// image report is kept.
#[derive(Clone, Copy)]
struct Repository<'a> {
    src: &'a str,
    tgt: &'a str,
    keep_all: bool,
}

/// The unit of work `--shard` assigns: the target repository of `target`
/// (`registry/repo`, or the layout of `ocidir://`), tag and digest dropped.
pub fn unit_of(target: &str) -> String {
    Reference::parse(target).map_or_else(|_| target.to_string(), |r| r.repository_key())
}

/// The copy options of a step, from what was compiled at load.
pub(crate) fn copy_options(step: &SyncStep, limits: crate::config::Limits) -> CopyOptions {
    let spec = &step.spec;
    CopyOptions {
        limits,
        referrers: spec.options.referrers,
        referrer_filters: spec.options.referrer_filters.clone(),
        digest_tags: spec.options.digest_tags,
        force_recursive: spec.options.force_recursive,
        include_external: spec.options.include_external,
        platforms: step.compiled.platforms.clone(),
    }
}

impl Pipeline {
    /// A pipeline for a config: `parallel` copy slots (at least one).
    pub fn new(config: &Config, client: Client, options: PipelineOptions) -> Self {
        let slots = config.defaults.parallel.max(1) as usize;
        tracing::debug!(concurrent = slots, "Configuring parallel settings");
        Pipeline {
            client,
            slots: Arc::new(Semaphore::new(slots)),
            platforms: PlatformCache::default(),
            options,
            cancel: CancellationToken::new(),
            filters: std::collections::HashMap::new(),
            observers: std::collections::HashMap::new(),
            writes: Arc::default(),
            images: None,
            limits: config.defaults.limits,
            verified: verify::Verified::default(),
            gates: std::collections::HashMap::new(),
        }
    }

    /// Tells `watch` about the images of every run.
    pub fn watch_images(&mut self, watch: Arc<dyn ImageWatch>) {
        self.images = Some(watch);
    }

    /// Makes a tag filter available to steps that list `name` under `filters:`.
    pub fn add_tag_filter(&mut self, name: &str, hook: Arc<dyn TagFilterExtension>) {
        self.filters.insert(name.to_string(), hook);
    }

    /// Makes a gate available to steps that list `name` under `gates:`.
    pub fn add_gate(&mut self, name: &str, gate: Arc<dyn gate::GateExtension>) {
        self.gates.insert(name.to_string(), gate);
    }

    /// Makes an observer available to steps that list `name` under `notify:`.
    pub fn add_observer(&mut self, name: &str, observer: Arc<dyn StepObserver>) {
        self.observers.insert(name.to_string(), observer);
    }

    fn tag_filters_of(&self, step: &SyncStep) -> Result<Vec<Arc<dyn TagFilterExtension>>, String> {
        step.spec
            .filters
            .iter()
            .map(|n| self.filters.get(n).cloned().ok_or_else(|| format!("tag filter plugin \"{n}\" is not loaded")))
            .collect()
    }

    fn observers_of(&self, step: &SyncStep) -> Vec<Arc<dyn StepObserver>> {
        step.spec.options.notify.iter().filter_map(|n| self.observers.get(n).cloned()).collect()
    }

    fn new_run(&self) -> RunState {
        RunState::new(self.writes.clone())
    }

    /// Cancelling this stops the run: no new image starts, waits end.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    fn image_concurrency(&self) -> usize {
        if self.options.abort_on_error { 1 } else { self.options.image_concurrency.max(1) }
    }

    /// Runs every step as one run (what is learnt and written is shared);
    /// reports come back in step order. With `--abort-on-error`, steps run
    /// one after another and none starts after a failure.
    pub async fn run(&self, steps: &[SyncStep], action: Mode) -> Vec<StepReport> {
        let state = self.new_run();
        let state = &state;
        if self.options.abort_on_error {
            let mut reports = Vec::new();
            for step in steps {
                if self.cancel.is_cancelled() {
                    break;
                }
                reports.push(self.run_step_in(step, action, state).await);
            }
            return reports;
        }
        futures_util::stream::iter(steps.iter().map(|s| Box::pin(self.run_step_in(s, action, state))))
            .buffered(self.options.step_concurrency.max(1))
            .collect()
            .await
    }

    fn note_error(&self, report: &mut StepReport, e: StageError) {
        report.add_error(e);
        if self.options.abort_on_error {
            self.cancel.cancel();
        }
    }

    /// Runs one step as a run of its own.
    pub async fn run_step(&self, step: &SyncStep, action: Mode) -> StepReport {
        self.run_step_in(step, action, &self.new_run()).await
    }

    /// Runs one step within a run, telling its observers.
    pub async fn run_step_in(&self, step: &SyncStep, action: Mode, state: &RunState) -> StepReport {
        let observers = if action == Mode::Check { Vec::new() } else { self.observers_of(step) };
        for o in &observers {
            o.started(step);
        }
        let report = self.run_step_stages(step, action, state).await;
        for o in &observers {
            o.finished(&report);
        }
        report
    }

    async fn run_step_stages(&self, step: &SyncStep, action: Mode, state: &RunState) -> StepReport {
        let started = Instant::now();
        let spec = &step.spec;
        let mut report = StepReport::new(step.index, &spec.source, &spec.target, spec.kind.as_str());
        let keep_all = self.options.keep_images || !self.observers_of(step).is_empty();
        if self.cancel.is_cancelled() {
            report.duration = started.elapsed();
            return report;
        }
        let options = copy_options(step, self.limits);
        let Some(units) = self.until_cancelled(discover::units(&self.client, step)).await else {
            report.duration = started.elapsed();
            return report;
        };
        let units = match units {
            Ok(units) => units,
            Err(e) => {
                if spec.kind == SyncType::Registry {
                    tracing::error!(source = spec.source, error = %e, "Failed to list source repositories");
                }
                self.note_error(&mut report, StageError::new(Stage::Discover, step.index, &spec.source, e));
                report.duration = started.elapsed();
                return report;
            }
        };
        match units {
            Units::Image { source, target } => {
                let (source, target) = (*source, *target);
                if self.claim(&mut report, unit_of(&target.common_name())) {
                    let scope = self.scope(step, source.clone(), target.clone(), vec![]);
                    self.found(step.index, 1);
                    let image = self.process_image_in(step, &options, &scope, source, target, action, state).await;
                    self.collect(&mut report, image, keep_all);
                }
            }
            Units::Repositories(units) => {
                for unit in self.filter_repositories(step, units) {
                    if self.cancel.is_cancelled() {
                        break;
                    }
                    if !self.claim(&mut report, unit_of(&unit.target)) {
                        continue;
                    }
                    let at = Repository { src: &unit.source, tgt: &unit.target, keep_all };
                    self.run_repository(step, &options, at, action, &mut report, state).await;
                }
            }
        }
        report.duration = started.elapsed();
        report
    }

    fn scope(&self, step: &SyncStep, source: Reference, target: Reference, tags: Vec<String>) -> Scope {
        let c = &step.compiled;
        Scope::new(source, target, c.referrer_source.as_ref(), c.referrer_target.as_ref(), tags)
    }

    /// With `--shard`: whether this shard does `unit`, recorded in the report
    /// and logged either way. Without sharding every unit is ours.
    fn claim(&self, report: &mut StepReport, unit: String) -> bool {
        let Some(shard) = self.options.shard else { return true };
        let shard_text = shard.to_string();
        if shard.owns(&unit) {
            tracing::info!(shard = shard_text, unit, "Syncing this shard's repository");
            report.units_owned.push(unit);
            true
        } else {
            tracing::info!(shard = shard_text, unit, "Skipping another shard's repository");
            report.units_skipped.push(unit);
            false
        }
    }

    /// `fut`, or `None` as soon as the run is cancelled: a listing of a slow
    /// or huge repository must not hold up a stop.
    async fn until_cancelled<T>(&self, fut: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            out = fut => Some(out),
            _ = self.cancel.cancelled() => None,
        }
    }

    fn found(&self, step: usize, n: usize) {
        if let Some(w) = &self.images {
            w.images_found(step, n);
        }
    }

    fn collect(&self, report: &mut StepReport, (image, error): (ImageReport, Option<StageError>), keep_all: bool) {
        if let Some(w) = &self.images {
            w.image_done(report.index, &image);
        }
        if let Some(e) = error {
            self.note_error(report, e);
        }
        // Refused and denied images are listed by `check` and read by
        // notifiers; like errors, no more than `ERRORS_KEPT` of them are held.
        let stopped = |o: Outcome| matches!(o, Outcome::Refused | Outcome::Denied);
        let stopped_room = report.count(Outcome::Refused) + report.count(Outcome::Denied) < report::ERRORS_KEPT;
        let keep = keep_all
            || matches!(image.outcome, Outcome::Stale | Outcome::WouldRefresh)
            || (stopped(image.outcome) && stopped_room);
        report.add(image, keep);
    }

    /// The filter stage for repositories: a registry step keeps what its
    /// `repos` filters allow, in the order they give.
    fn filter_repositories(&self, step: &SyncStep, units: Vec<RepositoryUnit>) -> Vec<RepositoryUnit> {
        if step.spec.kind != SyncType::Registry {
            return units;
        }
        let names: Vec<String> = units.iter().filter_map(|u| u.listed.clone()).collect();
        let mut by_name: std::collections::HashMap<String, RepositoryUnit> =
            units.into_iter().filter_map(|u| Some((u.listed.clone()?, u))).collect();
        filter::repositories(step, &names).into_iter().filter_map(|n| by_name.remove(&n)).collect()
    }

    async fn run_repository(
        &self,
        step: &SyncStep,
        options: &CopyOptions,
        at: Repository<'_>,
        action: Mode,
        report: &mut StepReport,
        state: &RunState,
    ) {
        let Repository { src, tgt, keep_all } = at;
        let (src_repo, tgt_repo) = match (Reference::parse(src), Reference::parse(tgt)) {
            (Ok(s), Ok(t)) => (s, t),
            (Err(e), _) => {
                tracing::error!(source = src, error = %e, "Failed parsing source");
                return self.note_error(report, StageError::new(Stage::Discover, step.index, src, e));
            }
            (_, Err(e)) => {
                tracing::error!(target = tgt, error = %e, "Failed parsing target");
                return self.note_error(report, StageError::new(Stage::Discover, step.index, tgt, e));
            }
        };
        // The run's one listing of this repository, shared with the referrer and digest-tag lookups.
        let Some(listed) = self.until_cancelled(state.tag_list(&self.client, &src_repo)).await else {
            return;
        };
        let available = match listed {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(source = src, error = %e, "Failed getting source tags");
                let e =
                    ClientError::new(e.kind, e.location.clone(), format!("failed getting source tags of {src}: {e}"));
                return self.note_error(report, StageError::new(Stage::Discover, step.index, src, e));
            }
        };
        let extensions = match self.tag_filters_of(step) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(source = src, error = %e, "Failed processing tag filters");
                return self.note_error(report, StageError::new(Stage::Filter, step.index, src, Cause::Filter(e)));
            }
        };
        let mut tags = match filter::tags(step, src, &available.tags, &extensions) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(source = src, error = %e, "Failed processing tag filters");
                let why = format!("sync[{}] (source \"{src}\"): {e}", step.index);
                return self.note_error(report, StageError::new(Stage::Filter, step.index, src, Cause::Filter(why)));
            }
        };
        if tags.is_empty() {
            // A huge listing is not repeated whole in one log line.
            let shown = &available.tags[..available.tags.len().min(100)];
            tracing::warn!(source = src, available = ?shown, count = available.tags.len(), "No matching tags found");
            return;
        }
        if action == Mode::Missing {
            let Some(listed) = self.until_cancelled(self.client.tag_list(&tgt_repo)).await else {
                return;
            };
            let existing = match listed {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(target = tgt, error = %e, "Failed getting target tags");
                    Vec::new()
                }
            };
            tags = filter::missing_only(tags, &existing);
        }
        self.found(step.index, tags.len());
        let scope = self.scope(step, src_repo, tgt_repo, tags);
        let scope = &scope;
        // Boxed: an image's future is large, and moving it into the stream would copy it.
        // By index: a closure over `&String` items trips the compiler's Send checks.
        let work = (0..scope.tags.len()).map(|i| -> futures_util::future::BoxFuture<'_, _> {
            Box::pin(async move {
                let tag = &scope.tags[i];
                if self.cancel.is_cancelled() {
                    return None;
                }
                let refs = (discover::tag_reference(src, tag), discover::tag_reference(tgt, tag));
                Some(match refs {
                    (Ok(s), Ok(t)) => self.process_image_in(step, options, scope, s, t, action, state).await,
                    (Err(e), _) | (_, Err(e)) => {
                        let (source, target) = (format!("{src}:{tag}"), format!("{tgt}:{tag}"));
                        tracing::error!(source, target, error = %e, "Failed to sync");
                        let mut failed = ImageReport::failed(&source, &target);
                        let e = StageError::new(Stage::Discover, step.index, format!("{source} -> {target}"), e);
                        failed.error = Some(e.to_string());
                        (failed, Some(e))
                    }
                })
            })
        });
        let mut stream = futures_util::stream::iter(work).buffered(self.image_concurrency());
        while let Some(image) = stream.next().await {
            let Some(image) = image else { continue };
            self.collect(report, image, keep_all);
        }
        drop(stream);
        state.forget_repository(&scope.source);
        state.forget_repository(&scope.target);
    }
}
