//! The stage chain of one image (IMG-1 … IMG-15):
//!
//! ```text
//! plan → decide → admission → checks (verify, gates) → backup → copy (referrers included)
//! ```
//!
//! Each stage takes what the one before gave and fails as itself (an
//! [`ImageFailure`] names its [`Stage`]). `checks` is where stages that may
//! stop an image before anything is written slot in: signature
//! verification (`verify.rs`), then gate plugins (`gate.rs`); `check` runs
//! them too, to report what a copy would refuse or deny. The image's report is made from
//! the stages' outputs once the chain ends.

use std::time::Instant;

use super::Pipeline;
use super::admission::{Admission, Policy};
use super::backup;
use super::context::{Context, CopyOptions, Scope};
use super::copy::{ImageCopy, Names};
use super::error::{Cause, Stage, StageError};
use super::gate;
use super::plan::{self, CopyReason, Mode, Plan, Planned};
use super::report::{CopyStats, ImageReport, Outcome};
use super::state::RunState;
use super::verify::{self, Passed};
use crate::client::{ClientError, ErrorKind};
use crate::config::SyncStep;
use crate::reference::Reference;

/// A stage of one image that failed, and why.
pub(super) struct ImageFailure {
    stage: Stage,
    cause: Cause,
}

impl ImageFailure {
    fn new(stage: Stage, cause: impl Into<Cause>) -> Self {
        ImageFailure { stage, cause: cause.into() }
    }

    /// For `map_err`: a failure of `stage`.
    fn at(stage: Stage) -> impl FnOnce(ClientError) -> ImageFailure {
        move |e| ImageFailure::new(stage, e)
    }
}

/// What the plan stage learnt, kept for the report whatever happens next.
#[derive(Default)]
struct Learnt {
    digest: String,
    rate_limit_remaining: Option<i64>,
    reason: String,
}

impl Learnt {
    fn of(planned: &Planned) -> Self {
        Learnt {
            digest: planned.source_head.digest.clone(),
            rate_limit_remaining: planned.source_head.rate_limit.map(|l| l.remaining),
            reason: plan::decide::reason(&planned.plan),
        }
    }
}

/// How the decide stage ends: settled without writing, or on to the writes.
enum Decision {
    /// Nothing to write (or `check`): the image's outcome, and a reason that
    /// replaces the plan's when the plan's says too little.
    Settled(Outcome, Option<String>),
    /// Copy or refresh; `refreshing` when the target already has the digest.
    Write { refreshing: bool },
}

/// What the chain gives when it ends without failing.
struct Done {
    outcome: Outcome,
    reason: Option<String>,
    stats: CopyStats,
}

impl Done {
    fn settled(outcome: Outcome, reason: Option<String>) -> Self {
        Done { outcome, reason, stats: CopyStats::default() }
    }
}

/// One image going through the chain.
struct ImageRun<'a> {
    pipeline: &'a Pipeline,
    ctx: &'a Context<'a>,
    step: &'a SyncStep,
    src: &'a Reference,
    tgt: &'a Reference,
    action: Mode,
}

impl Pipeline {
    /// Plans and, unless checking, copies one image (IMG-1 … IMG-15), as a run of its own.
    pub async fn process_image(&self, step: &SyncStep, src: Reference, tgt: Reference, action: Mode) -> ImageReport {
        let scope = self.scope(step, src.clone(), tgt.clone(), vec![]);
        let options = super::copy_options(step, self.limits);
        self.process_image_in(step, &options, &scope, src, tgt, action, &self.new_run()).await.0
    }

    /// Runs one image's chain within a run; its report, and the error to
    /// count against the step (none when cancelled, SIG-3).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn process_image_in(
        &self,
        step: &SyncStep,
        options: &CopyOptions,
        scope: &Scope,
        src: Reference,
        tgt: Reference,
        action: Mode,
        state: &RunState,
    ) -> (ImageReport, Option<StageError>) {
        let started = Instant::now();
        let ctx = Context { client: &self.client, state, options, scope };
        let run = ImageRun { pipeline: self, ctx: &ctx, step, src: &src, tgt: &tgt, action };
        let mut learnt = Learnt::default();
        // Cancelling drops the image's requests in flight, as regsync's context does
        // (SIG-1): whatever was written is complete, its tag is pushed last.
        let result = tokio::select! {
            r = run.chain(&mut learnt) => r,
            _ = self.cancel.cancelled() => Err(ImageFailure::new(Stage::Copy, ClientError::new(ErrorKind::Cancelled, tgt.common_name(), ""))),
        };
        let mut report = ImageReport::failed(&src.common_name(), &tgt.common_name());
        report.source_registry = if src.registry.is_empty() { src.path.clone() } else { src.registry.clone() };
        report.digest = learnt.digest;
        report.rate_limit_remaining = learnt.rate_limit_remaining;
        report.reason = learnt.reason;
        report.duration = started.elapsed();
        let error = match result {
            Ok(done) => {
                report.outcome = done.outcome;
                report.stats = done.stats;
                if let Some(reason) = done.reason {
                    report.reason = reason;
                }
                None
            }
            Err(ImageFailure { stage, cause }) => {
                let subject = format!("{} -> {}", src.common_name(), tgt.common_name());
                let e = StageError::new(stage, step.index, subject, cause);
                if e.is_cancelled() {
                    report.reason = "canceled".into();
                    None
                } else if let Cause::Refused(reason) = &e.cause {
                    // The verify stage logged the refusal with its reason.
                    report.outcome = Outcome::Refused;
                    report.reason = reason.clone();
                    report.error = Some(e.to_string());
                    Some(e)
                } else if let Cause::Denied(denied) = &e.cause {
                    // So did the gate stage.
                    report.outcome = Outcome::Denied;
                    report.reason = denied.to_string();
                    report.error = Some(e.to_string());
                    Some(e)
                } else {
                    tracing::error!(target = %tgt.common_name(), source = %src.common_name(), error = %e.cause, "Failed to sync");
                    report.error = Some(e.to_string());
                    Some(e)
                }
            }
        };
        (report, error)
    }
}

impl ImageRun<'_> {
    /// The chain: each stage in turn, stopping at the first that settles or fails.
    async fn chain(&self, learnt: &mut Learnt) -> Result<Done, ImageFailure> {
        let mut admission = self.admission();
        let mut planned = self.plan(&mut admission).await?;
        *learnt = Learnt::of(&planned);
        let refreshing = match self.decide(&planned) {
            Decision::Settled(Outcome::Stale, reason) => {
                // `check` judges signatures and runs gates too, unless reading
                // for them would be a pull against a rate limit: check never
                // waits (IMG-8, RL-2).
                let options = &self.step.spec.options;
                let verifies = options.verify.as_ref().is_some_and(|p| p.mode != crate::verify::Mode::Off);
                let skipped = match (verifies, !options.gates.is_empty()) {
                    (true, true) => "signatures and gates",
                    (true, false) => "signatures",
                    (false, true) => "gates",
                    (false, false) => "",
                };
                let warned = if !skipped.is_empty() && admission.limited() {
                    Some(format!("{skipped} not checked: the source is rate limited (ratelimit.min)"))
                } else {
                    self.checks(&planned).await?
                };
                return Ok(Done::settled(Outcome::Stale, warned.or(reason)));
            }
            Decision::Settled(outcome, reason) => return Ok(Done::settled(outcome, reason)),
            Decision::Write { refreshing } => refreshing,
        };
        // A large manifest is not held while waiting for a slot (every image of a
        // step may be waiting): the copy reads it again when its turn comes.
        if planned.manifest.as_ref().is_some_and(|m| m.bytes.len() > crate::client::LARGE_BODY) {
            planned.manifest = None;
        }
        self.admit(&mut admission).await?;
        let warned = self.checks(&planned).await?;
        self.backup(&planned).await?;
        let looked_closer = matches!(planned.plan, Plan::Refresh(_));
        let stats = self.copy(planned).await;
        drop(admission);
        let stats = stats?;
        let outcome = match (looked_closer, refreshing) {
            // Looked closer after the rate-limit check and found nothing missing.
            (true, _) if stats.manifests == 0 => Outcome::UpToDate,
            (_, true) => Outcome::Refreshed,
            _ => Outcome::Copied,
        };
        Ok(Done { outcome, reason: warned, stats })
    }

    fn admission(&self) -> Admission<'_> {
        let p = self.pipeline;
        let ratelimit = &self.step.spec.options.ratelimit;
        let retry = p.options.rate_limit_retry.unwrap_or(ratelimit.retry.to_std());
        let policy = Policy { min: ratelimit.min, retry };
        Admission::new(&p.client, &p.slots, &p.cancel, policy, self.src.clone())
    }

    /// Plan: source and target looked at, a typed [`Plan`]. A plan that must
    /// pull under a rate limit is admitted first; a failure then is admission's.
    async fn plan(&self, admission: &mut Admission<'_>) -> Result<Planned, ImageFailure> {
        if self.pipeline.cancel.is_cancelled() {
            return Err(ImageFailure::new(
                Stage::Plan,
                ClientError::new(ErrorKind::Cancelled, self.src.common_name(), ""),
            ));
        }
        plan::plan(self.ctx, self.step, self.src, self.tgt, self.action, admission, &self.pipeline.platforms)
            .await
            .map_err(|e| ImageFailure::new(if admission.passed() { Stage::Admission } else { Stage::Plan }, e))
    }

    /// Decide: what the plan means for this run, logged as regsync logs it.
    fn decide(&self, planned: &Planned) -> Decision {
        let spec = &self.step.spec;
        let (source, target) = (self.src.common_name(), self.tgt.common_name());
        let refreshing = match &planned.plan {
            Plan::UpToDate => {
                tracing::debug!(source, target, "Image matches");
                return Decision::Settled(Outcome::UpToDate, None);
            }
            Plan::PlatformUpToDate => {
                let pinned = planned.source.common_name();
                tracing::debug!(source = pinned, platform = spec.platform, target, "Image matches for platform");
                return Decision::Settled(Outcome::UpToDate, None);
            }
            Plan::TargetExists => {
                tracing::debug!(source, target, "target exists");
                return Decision::Settled(Outcome::SkippedExists, None);
            }
            Plan::UnsupportedMediaType => {
                let media_type = &planned.source_head.media_type;
                tracing::info!(r#ref = source, "mediaType" = media_type, allowed = ?spec.options.media_types, "Skipping unsupported media type");
                let reason = format!("media type {media_type} not in mediaTypes");
                return Decision::Settled(Outcome::SkippedMediaType, Some(reason));
            }
            Plan::Copy(CopyReason::Forced) | Plan::Refresh(_) => true,
            Plan::Copy(_) => false,
        };
        if refreshing {
            tracing::info!(
                source,
                target,
                forced = spec.options.force_recursive,
                "digestTags" = spec.options.digest_tags,
                referrers = spec.options.referrers,
                "Image refreshing"
            );
        } else {
            tracing::info!(source, target, "Image sync needed");
        }
        if self.action == Mode::Check {
            let outcome = if refreshing { Outcome::WouldRefresh } else { Outcome::Stale };
            return Decision::Settled(outcome, None);
        }
        Decision::Write { refreshing }
    }

    /// Admission: writes wait for a copy slot, then for the rate limit (PAR-1, RL-3).
    async fn admit(&self, admission: &mut Admission<'_>) -> Result<(), ImageFailure> {
        admission.pass().await.map_err(ImageFailure::at(Stage::Admission))?;
        tracing::debug!(source = self.src.common_name(), target = self.tgt.common_name(), "Image sync running");
        Ok(())
    }

    /// Checks that may stop an admitted image before anything is written:
    /// the step's signature policy judges the digest the plan resolved (the
    /// one the copy copies), then its gates are shown the image's facts. A
    /// refresh brings referrers or digest tags of an image the target
    /// already has, so nothing is judged again. `Some(reason)` when a `warn`
    /// policy or gate let a stopped image through.
    async fn checks(&self, planned: &Planned) -> Result<Option<String>, ImageFailure> {
        if matches!(planned.plan, Plan::Refresh(_)) {
            return Ok(None);
        }
        let options = &self.step.spec.options;
        let image = self.src.common_name();
        // A digest tag (`sha256-<hex>.sig`, `.att`, a fallback index) is an
        // attachment: it passes when the image it names does. Anything can be
        // pushed under such a name, so that image is judged, never skipped.
        let (digest, copied) = match crate::client::digest_tag_subject(&self.src.tag) {
            Some(subject) => (subject.clone(), subject),
            None => (planned.source_head.digest.clone(), planned.source.digest.clone()),
        };
        let verified = &self.pipeline.verified;
        let mut warnings = Vec::new();
        let signers = match verify::check(self.ctx, options.verify.as_ref(), verified, &image, &digest, &copied).await {
            Ok(Passed::Unchecked) => Vec::new(),
            Ok(Passed::Accepted(signers)) => signers,
            Ok(Passed::Warned(reason)) => {
                warnings.push(format!("unverified (verify mode warn): {reason}"));
                Vec::new()
            }
            Err(reason) => return Err(ImageFailure::new(Stage::Verify, Cause::Refused(reason))),
        };
        let subject = gate::Subject { source: self.src, target: self.tgt, copied: &copied, signers };
        let allowed = gate::check(self.ctx, &options.gates, &self.pipeline.gates, subject)
            .await
            .map_err(|denied| ImageFailure::new(Stage::Gate, Cause::Denied(denied)))?;
        warnings.extend(allowed.warnings);
        if warnings.is_empty() {
            return Ok(None);
        }
        let done = if self.action == Mode::Check { "would copy" } else { "copied" };
        Ok(Some(format!("{done} {}", warnings.join("; "))))
    }

    /// Backup: a target about to be overwritten is saved first (BAK-1 …).
    async fn backup(&self, planned: &Planned) -> Result<(), ImageFailure> {
        let Some(template) = &self.step.compiled.backup else { return Ok(()) };
        if !matches!(planned.plan, Plan::Copy(CopyReason::DigestDiffers)) {
            return Ok(());
        }
        backup::save(&self.pipeline.client, self.ctx.state, &self.step.spec, template, self.tgt)
            .await
            .map_err(|e| ImageFailure::new(Stage::Backup, e))
    }

    /// Copy: the plan carried out, referrers and digest tags included, the
    /// target's write session closed whatever happened.
    async fn copy(&self, planned: Planned) -> Result<CopyStats, ImageFailure> {
        let client = &self.pipeline.client;
        let (source, target) = (self.src.common_name(), self.tgt.common_name());
        let copy = ImageCopy::new(self.ctx, &planned.source.digest);
        client.begin(self.tgt);
        let copied = match &planned.plan {
            Plan::Refresh(work) => copy.refresh(work).await,
            _ => {
                let manifest = match planned.manifest {
                    Some(m) => Ok(m),
                    None => self.ctx.state.manifest(client, &planned.source).await,
                };
                match manifest {
                    Ok(m) => {
                        let names = Names { source: self.src.original.clone(), target: self.tgt.original.clone() };
                        copy.copy_image(&planned.source, self.tgt, &m, &names).await
                    }
                    Err(e) => Err(e),
                }
            }
        };
        let closed = client.close(self.tgt).await;
        let stats = copied.map_err(|e| {
            if e.kind != ErrorKind::Cancelled {
                tracing::error!(source, target, error = %e, "Failed to copy image");
            }
            ImageFailure::new(Stage::Copy, e)
        })?;
        closed.map_err(ImageFailure::at(Stage::Copy))?;
        Ok(stats)
    }
}
