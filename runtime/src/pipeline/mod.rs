//! The sync engine. Every step runs through the same stages, one module each:
//!
//! ```text
//! discover → filter → plan → backup → copy (+ referrers)
//! ```
//!
//! `discover` lists what a step covers, `filter` keeps what the filters
//! allow, `plan` decides per image from two HEADs, `backup` saves a target
//! about to be overwritten, `copy` moves the image graph children first, and
//! `referrers` brings referrers and digest tags along. The result of a step is
//! a [`StepReport`]. Checks run concurrently; copies wait for one of the
//! `parallel` copy slots (PAR-1, decisions.md).

pub mod backup;
pub mod copy;
pub mod discover;
pub mod filter;
pub mod plan;
pub mod ratelimit;
pub mod referrers;
pub mod report;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use self::copy::{CopyOptions, ImageCopy, RunState};
use self::filter::TagFilterHook;
pub use self::plan::Action;
use self::plan::{Decision, Observed, RefreshFlags};
pub use self::report::{CopyStats, ImageAction, ImageReport, StepReport};
use crate::client::{Client, ClientError, ErrorKind, ManifestHead, is_index};
use crate::config::{Config, SyncStep, SyncType};
use crate::platform::Platform;
use crate::reference::Reference;

/// Knobs of the engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Stop at the first error (`--abort-on-error`).
    pub abort_on_error: bool,
    /// Steps checked at once.
    pub step_concurrency: usize,
    /// Images of one step checked at once.
    pub image_concurrency: usize,
    /// Replaces the rate-limit retry wait (tests; the config floor is 5 minutes).
    pub rate_limit_retry: Option<Duration>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { abort_on_error: false, step_concurrency: 16, image_concurrency: 8, rate_limit_retry: None }
    }
}

/// Runs sync steps.
pub struct Engine {
    client: Client,
    slots: Arc<Semaphore>,
    /// Index digest + platform → the chosen child (IMG-6), bounded unlike regsync's.
    platforms: std::sync::Mutex<copy::Bounded<crate::client::Descriptor>>,
    options: EngineOptions,
    cancel: CancellationToken,
    /// Tag filters by name (plugins), for steps' `filters:`.
    filters: std::collections::HashMap<String, Arc<dyn TagFilterHook>>,
    /// Observers by name (notifier plugins), for steps' `notify:`.
    observers: std::collections::HashMap<String, Arc<dyn StepObserver>>,
}

/// Told when a step run starts and ends (notifier plugins).
pub trait StepObserver: Send + Sync {
    /// A run of `step` begins.
    fn started(&self, step: &SyncStep);
    /// A run ended; `report` says what it did.
    fn finished(&self, report: &StepReport);
}

fn cancelled(what: &str) -> String {
    format!("task was canceled: {what}")
}

impl Engine {
    /// An engine for a config: `parallel` copy slots (at least one).
    pub fn new(config: &Config, client: Client, options: EngineOptions) -> Self {
        let slots = config.defaults.parallel.max(1) as usize;
        tracing::debug!(concurrent = slots, "Configuring parallel settings");
        Engine {
            client,
            slots: Arc::new(Semaphore::new(slots)),
            platforms: std::sync::Mutex::new(copy::Bounded::new(copy::CACHE_ENTRIES)),
            options,
            cancel: CancellationToken::new(),
            filters: std::collections::HashMap::new(),
            observers: std::collections::HashMap::new(),
        }
    }

    /// Makes a tag filter available to steps that list `name` under `filters:`.
    pub fn add_tag_filter(&mut self, name: &str, hook: Arc<dyn TagFilterHook>) {
        self.filters.insert(name.to_string(), hook);
    }

    /// Makes an observer available to steps that list `name` under `notify:`.
    pub fn add_observer(&mut self, name: &str, observer: Arc<dyn StepObserver>) {
        self.observers.insert(name.to_string(), observer);
    }

    fn hooks_of(&self, step: &SyncStep) -> Result<Vec<Arc<dyn TagFilterHook>>, String> {
        step.spec
            .filters
            .iter()
            .map(|n| self.filters.get(n).cloned().ok_or_else(|| format!("tag filter plugin \"{n}\" is not loaded")))
            .collect()
    }

    fn observers_of(&self, step: &SyncStep) -> Vec<Arc<dyn StepObserver>> {
        step.spec.notify.iter().filter_map(|n| self.observers.get(n).cloned()).collect()
    }

    /// Cancelling this stops the run: no new image starts, waits end.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs every step as one run (blobs are shared between steps); reports
    /// come back in step order.
    pub async fn run(&self, steps: &[SyncStep], action: Action) -> Vec<StepReport> {
        let state = RunState::default();
        let state = &state;
        futures_util::stream::iter(steps.iter().map(|s| self.run_step_in(s, action, state)))
            .buffered(self.options.step_concurrency.max(1))
            .collect()
            .await
    }

    fn note_error(&self, report: &mut StepReport, e: String) {
        report.errors.push(e);
        if self.options.abort_on_error {
            self.cancel.cancel();
        }
    }

    /// Runs one step as a run of its own.
    pub async fn run_step(&self, step: &SyncStep, action: Action) -> StepReport {
        self.run_step_in(step, action, &RunState::default()).await
    }

    /// Runs one step within a run, telling its observers.
    pub async fn run_step_in(&self, step: &SyncStep, action: Action, state: &RunState) -> StepReport {
        let observers = if action == Action::Check { Vec::new() } else { self.observers_of(step) };
        for o in &observers {
            o.started(step);
        }
        let report = self.run_step_stages(step, action, state).await;
        for o in &observers {
            o.finished(&report);
        }
        report
    }

    async fn run_step_stages(&self, step: &SyncStep, action: Action, state: &RunState) -> StepReport {
        let started = Instant::now();
        let spec = &step.spec;
        let mut report = StepReport {
            index: step.index,
            source: spec.source.clone(),
            target: spec.target.clone(),
            kind: spec.kind.as_str().to_string(),
            images: Vec::new(),
            errors: Vec::new(),
            duration: Duration::ZERO,
        };
        if self.cancel.is_cancelled() {
            report.duration = started.elapsed();
            return report;
        }
        match spec.kind {
            SyncType::Image => {
                let (Some(src), Some(tgt)) = (&step.compiled.source_ref, &step.compiled.target_ref) else {
                    self.note_error(&mut report, "step references were not compiled".into());
                    return report;
                };
                let image = self.process_image_in(step, src.clone(), tgt.clone(), action, state).await;
                if let Some(e) = &image.error {
                    self.note_error(&mut report, e.clone());
                }
                report.images.push(image);
            }
            SyncType::Repository => {
                self.run_repository(step, &spec.source, &spec.target, action, &mut report, state).await;
            }
            SyncType::Registry => self.run_registry(step, action, &mut report, state).await,
        }
        report.duration = started.elapsed();
        report
    }

    async fn run_registry(&self, step: &SyncStep, action: Action, report: &mut StepReport, state: &RunState) {
        let spec = &step.spec;
        let registry = crate::reference::parse_registry_host(&spec.source).unwrap_or_else(|_| spec.source.clone());
        let repos = match discover::repositories(&self.client, &registry).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(source = spec.source, error = %e, "Failed to list source repositories");
                self.note_error(report, format!("failed to list source repositories: {e}"));
                return;
            }
        };
        for repo in filter::repositories(step, &repos) {
            if self.cancel.is_cancelled() {
                break;
            }
            let src = discover::repository_base(&spec.source, &repo);
            let tgt = discover::repository_base(&spec.target, &repo);
            self.run_repository(step, &src, &tgt, action, report, state).await;
        }
    }

    async fn run_repository(
        &self,
        step: &SyncStep,
        src: &str,
        tgt: &str,
        action: Action,
        report: &mut StepReport,
        state: &RunState,
    ) {
        let (src_repo, tgt_repo) = match (Reference::parse(src), Reference::parse(tgt)) {
            (Ok(s), Ok(t)) => (s, t),
            (Err(e), _) => {
                tracing::error!(source = src, error = %e, "Failed parsing source");
                return self.note_error(report, format!("{src}: {e}"));
            }
            (_, Err(e)) => {
                tracing::error!(target = tgt, error = %e, "Failed parsing target");
                return self.note_error(report, format!("{tgt}: {e}"));
            }
        };
        let available = match discover::tags(&self.client, &src_repo).await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(source = src, error = %e, "Failed getting source tags");
                return self.note_error(report, format!("failed getting source tags of {src}: {e}"));
            }
        };
        let hooks = match self.hooks_of(step) {
            Ok(h) => h,
            Err(e) => return self.note_error(report, e),
        };
        let mut tags = match filter::tags(step, src, &available, &hooks) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(source = src, error = %e, "Failed processing tag filters");
                return self.note_error(report, format!("sync[{}] (source \"{src}\"): {e}", step.index));
            }
        };
        if tags.is_empty() {
            tracing::warn!(source = src, available = ?available, "No matching tags found");
            return;
        }
        if action == Action::Missing {
            let existing = match discover::tags(&self.client, &tgt_repo).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(target = tgt, error = %e, "Failed getting target tags");
                    Vec::new()
                }
            };
            tags = filter::missing_only(tags, &existing);
        }
        let work = tags.into_iter().map(|tag| async move {
            if self.cancel.is_cancelled() {
                return None;
            }
            let refs = (discover::tag_reference(src, &tag), discover::tag_reference(tgt, &tag));
            Some(match refs {
                (Ok(s), Ok(t)) => self.process_image_in(step, s, t, action, state).await,
                (Err(e), _) | (_, Err(e)) => {
                    failed_image(format!("{src}:{tag}"), format!("{tgt}:{tag}"), e.to_string())
                }
            })
        });
        let mut stream = futures_util::stream::iter(work).buffered(self.options.image_concurrency.max(1));
        while let Some(image) = stream.next().await {
            let Some(image) = image else { continue };
            if let Some(e) = &image.error {
                self.note_error(report, e.clone());
            }
            report.images.push(image);
        }
    }

    /// Plans and, unless checking, copies one image (IMG-1 … IMG-15), as a run of its own.
    pub async fn process_image(&self, step: &SyncStep, src: Reference, tgt: Reference, action: Action) -> ImageReport {
        self.process_image_in(step, src, tgt, action, &RunState::default()).await
    }

    async fn process_image_in(
        &self,
        step: &SyncStep,
        src: Reference,
        tgt: Reference,
        action: Action,
        state: &RunState,
    ) -> ImageReport {
        let started = Instant::now();
        let mut report = ImageReport {
            source: src.common_name(),
            target: tgt.common_name(),
            action: ImageAction::Failed,
            reason: String::new(),
            digest: String::new(),
            stats: CopyStats::default(),
            duration: Duration::ZERO,
            error: None,
            rate_limit_remaining: None,
            source_registry: if src.registry.is_empty() { src.path.clone() } else { src.registry.clone() },
        };
        let result = self.image(step, &src, &tgt, action, &mut report, state).await;
        if let Err(e) = result {
            if e.kind == ErrorKind::Cancelled {
                report.reason = "canceled".into();
            } else {
                tracing::error!(target = %tgt.common_name(), source = %src.common_name(), error = %e, "Failed to sync");
                report.error = Some(format!("{} -> {}: {e}", src.common_name(), tgt.common_name()));
            }
            report.action = ImageAction::Failed;
        }
        report.duration = started.elapsed();
        report
    }

    async fn image(
        &self,
        step: &SyncStep,
        src: &Reference,
        tgt: &Reference,
        action: Action,
        report: &mut ImageReport,
        state: &RunState,
    ) -> Result<(), ClientError> {
        let spec = &step.spec;
        let flags = RefreshFlags::of(spec);
        let named_source = src;
        // The target first: when it is missing and a copy will follow, the source is
        // read with one GET instead of a HEAD and a GET (the GET is a pull either way).
        let target = self.client.manifest_head(tgt).await.ok();
        let target_digest = target.as_ref().map(|t| t.digest.as_str());
        let fetch_now = target.is_none() && action != Action::Check && spec.platform.is_empty();
        let lookup = async {
            if fetch_now {
                let m = self.client.manifest_get(src).await?;
                Ok::<_, ClientError>((m.head(), Some(m)))
            } else {
                Ok((self.client.manifest_head(src).await?, None))
            }
        };
        let (source, mut source_manifest) = lookup.await.inspect_err(|e| {
            tracing::error!(source = %src.common_name(), error = %e, "Failed to lookup source manifest");
        })?;
        report.digest = source.digest.clone();
        report.rate_limit_remaining = source.rate_limit.map(|l| l.remaining);
        let copy_options = self.copy_options(step)?;
        // With `platforms`, the target holds a filtered index: compare with its digest.
        let mut expected = source.digest.clone();
        if copy_options.platforms.is_some() && is_index(&source.media_type) {
            let m = match source_manifest.take() {
                Some(m) => m,
                None => self.client.manifest_get(&src.with_digest(&source.digest)).await?,
            };
            expected = ImageCopy::new(&self.client, state, &copy_options).top_manifest(&m)?.digest;
            source_manifest = Some(m);
        }
        let observed =
            Observed { action, source_media_type: &source.media_type, expected_digest: &expected, target_digest };
        let refresh = match plan::decide(&observed, flags, &spec.media_types) {
            Decision::UpToDate => {
                tracing::debug!(source = %src.common_name(), target = %tgt.common_name(), "Image matches");
                report.action = ImageAction::UpToDate;
                return Ok(());
            }
            Decision::TargetExists => {
                tracing::debug!(source = %src.common_name(), target = %tgt.common_name(), "target exists");
                report.action = ImageAction::SkippedExists;
                return Ok(());
            }
            Decision::UnsupportedMediaType => {
                tracing::info!(r#ref = %src.common_name(), "mediaType" = source.media_type, allowed = ?spec.media_types, "Skipping unsupported media type");
                report.action = ImageAction::SkippedMediaType;
                report.reason = format!("media type {} not in mediaTypes", source.media_type);
                return Ok(());
            }
            Decision::Copy { refresh } => refresh,
        };
        let mut src = src.with_digest(&source.digest);
        if !spec.platform.is_empty() && is_index(&source.media_type) {
            let chosen = self.resolve_platform(&src, &source, &spec.platform).await?;
            src = src.with_digest(&chosen);
            source_manifest = None;
            if plan::platform_matches(target_digest, &chosen, spec.force_recursive) {
                tracing::debug!(source = %src.common_name(), platform = spec.platform, target = %tgt.common_name(), "Image matches for platform");
                report.action = ImageAction::UpToDate;
                return Ok(());
            }
        }
        let matches = target_digest == Some(expected.as_str()) || target_digest == Some(src.digest.as_str());
        if refresh && matches {
            tracing::info!(
                source = %src.common_name(), target = %tgt.common_name(), forced = spec.force_recursive,
                "digestTags" = spec.digest_tags, referrers = spec.referrers, "Image refreshing"
            );
        } else {
            tracing::info!(source = %src.common_name(), target = %tgt.common_name(), "Image sync needed");
        }
        report.reason = plan::reason(target_digest, refresh && matches, flags);
        if action == Action::Check {
            report.action = if refresh && matches { ImageAction::WouldRefresh } else { ImageAction::Stale };
            return Ok(());
        }

        // A copy: wait for a slot (PAR-1), then for the rate limit (RL-3).
        let mut permit = Some(tokio::select! {
            p = self.slots.clone().acquire_owned() => p.map_err(|_| ClientError::new(ErrorKind::Cancelled, "", ""))?,
            _ = self.cancel.cancelled() => return Err(ClientError::new(ErrorKind::Cancelled, cancelled(&src.common_name()), "")),
        });
        let retry = self.options.rate_limit_retry.unwrap_or(spec.ratelimit.retry.to_std());
        let policy = ratelimit::Policy { min: spec.ratelimit.min, retry };
        // By the name the step gave (a tag): digest lookups may be cached, limits must be live.
        ratelimit::wait(&self.client, named_source, source.rate_limit, policy, &self.slots, &mut permit, &self.cancel)
            .await?;
        tracing::debug!(source = %src.common_name(), target = %tgt.common_name(), "Image sync running");
        if target.is_some()
            && !matches
            && let Some(template) = &step.compiled.backup
        {
            backup::save(&self.client, state, spec, template, tgt)
                .await
                .map_err(|e| ClientError::new(ErrorKind::Invalid, tgt.common_name(), e.to_string()))?;
        }
        let manifest = match source_manifest {
            Some(m) => m,
            None => self.client.manifest_get(&src).await?,
        };
        self.client.begin(tgt);
        let copied = ImageCopy::new(&self.client, state, &copy_options).run(&src, tgt, &manifest).await;
        let closed = self.client.close(tgt).await;
        drop(permit);
        let stats = copied.inspect_err(|e| {
            tracing::error!(source = %src.common_name(), target = %tgt.common_name(), error = %e, "Failed to copy image");
        })?;
        closed?;
        report.stats = stats;
        report.action = if refresh && matches { ImageAction::Refreshed } else { ImageAction::Copied };
        Ok(())
    }

    fn copy_options(&self, step: &SyncStep) -> Result<CopyOptions, ClientError> {
        let spec = &step.spec;
        let parse = |text: &str, what: &str| -> Result<Option<Reference>, ClientError> {
            if text.is_empty() {
                return Ok(None);
            }
            Reference::parse(text).map(Some).map_err(|e| {
                tracing::error!(error = %e, "failed to parse {what} reference");
                ClientError::new(ErrorKind::Invalid, text, e.to_string())
            })
        };
        let platforms = if spec.platforms.is_empty() {
            None
        } else {
            let mut list = Vec::new();
            for p in &spec.platforms {
                list.push(if p.is_empty() {
                    None
                } else {
                    Some(Platform::parse(p).map_err(|e| ClientError::new(ErrorKind::Invalid, p, e.to_string()))?)
                });
            }
            Some(list)
        };
        Ok(CopyOptions {
            referrers: spec.referrers,
            referrer_filters: spec.referrer_filters.clone(),
            referrer_source: parse(&spec.referrer_source, "referrer source")?,
            referrer_target: parse(&spec.referrer_target, "referrer target")?,
            digest_tags: spec.digest_tags,
            force_recursive: spec.force_recursive,
            include_external: spec.include_external,
            platforms,
        })
    }

    /// The child of an index for `platform` (IMG-6), remembered per index digest.
    async fn resolve_platform(
        &self,
        src: &Reference,
        head: &ManifestHead,
        platform: &str,
    ) -> Result<String, ClientError> {
        let key = format!("{}|{platform}", head.digest);
        if let Some(d) = self.platforms.lock().expect("poisoned").get(&key) {
            return Ok(d.digest);
        }
        let wanted = Platform::parse(platform).map_err(|e| {
            tracing::warn!(platform, err = %e, "Could not parse platform");
            ClientError::new(ErrorKind::Invalid, platform, e.to_string())
        })?;
        let list = self.client.manifest_get(src).await.inspect_err(|e| {
            tracing::error!(source = %src.common_name(), error = %e, "Failed to get source manifest");
        })?;
        let doc = list.doc().map_err(|e| ClientError::new(ErrorKind::Invalid, src.common_name(), e.to_string()))?;
        let Some(chosen) = wanted.select(&doc.manifests) else {
            let available: Vec<String> = doc
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref().map(|p| Platform::from_descriptor(p).to_string()))
                .collect();
            tracing::warn!(platform, platforms = ?available, "Platform could not be found in source manifest list");
            return Err(ClientError::new(
                ErrorKind::NotFound,
                src.common_name(),
                format!("platform {platform} not found"),
            ));
        };
        self.platforms.lock().expect("poisoned").put(key, chosen.clone());
        Ok(chosen.digest.clone())
    }
}

fn failed_image(source: String, target: String, error: String) -> ImageReport {
    tracing::error!(source, target, error, "Failed to sync");
    ImageReport {
        error: Some(format!("{source} -> {target}: {error}")),
        source,
        target,
        action: ImageAction::Failed,
        reason: String::new(),
        digest: String::new(),
        stats: CopyStats::default(),
        duration: Duration::ZERO,
        rate_limit_remaining: None,
        source_registry: String::new(),
    }
}
