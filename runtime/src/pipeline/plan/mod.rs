//! The `plan` stage: look, then decide, for one image.
//!
//! It observes (target and source HEADs, the run's tag lists, referrer
//! listings, a platform lookup) and hands what it saw to the pure decision
//! in `decide.rs`, which names exactly what needs work: nothing, the whole
//! image, or only some referrers and digest tags. It never writes.

pub(crate) mod decide;
mod extras;
pub(crate) mod platform;

pub use self::decide::{CopyReason, Mode, Plan, RefreshFlags, Work};
use self::decide::{First, Observed};
use self::platform::PlatformCache;
use super::admission::Admission;
use super::context::Context;
use crate::client::{ClientError, ErrorKind, Manifest, ManifestHead, Result, is_index};
use crate::config::SyncStep;
use crate::reference::Reference;

/// What the plan stage saw and decided for one image.
#[derive(Debug)]
pub struct Planned {
    /// The decision.
    pub plan: Plan,
    /// The source to copy from: as configured, pinned to the digest to copy
    /// (the platform's manifest when `platform` picked one).
    pub source: Reference,
    /// The source's HEAD, as first seen.
    pub source_head: ManifestHead,
    /// The source manifest (of `source`'s digest), when planning read it.
    pub manifest: Option<Manifest>,
}

/// Plans one image: `src` and `tgt` as the step names them.
pub async fn plan(
    ctx: &Context<'_>,
    step: &SyncStep,
    src: &Reference,
    tgt: &Reference,
    action: Mode,
    admission: &mut Admission<'_>,
    platforms: &PlatformCache,
) -> Result<Planned> {
    let spec = &step.spec;
    let flags = RefreshFlags::of(spec);
    let (client, state) = (ctx.client, ctx.state);
    // IMG-2: an unreadable target counts as missing.
    let target = match state.head(client, tgt).await {
        Ok(t) => t,
        Err(e) => {
            tracing::debug!(target = %tgt.common_name(), error = %e, "Target lookup failed, treating it as missing");
            None
        }
    };
    // The source is asked whether it still has what the target has: a 304 costs
    // it less than a HEAD. Not with a rate limit, whose numbers a 304 may lack.
    let like = target.clone().filter(|_| spec.options.ratelimit.min <= 0);
    let target_digest = target.map(|t| t.digest);
    // If the whole target repository is new, nothing else in it needs looking
    // up (one tag list instead of a HEAD per blob and manifest).
    let fresh = target_digest.is_none() && action != Mode::Check && state.is_fresh(client, &ctx.scope.target).await;
    // Into a new repository a copy all but surely follows, so the source is
    // read with one GET instead of a HEAD and a GET. Elsewhere a missing tag may
    // be one `mediaTypes` skips on every run, and its GET would spend a pull
    // (on Docker Hub) each time, so a HEAD comes first, as in regsync. Not with
    // a rate limit either, whose check must come before any pull (RL-2).
    let fetch_now = fresh && step.compiled.platform.is_none() && spec.options.ratelimit.min <= 0;
    let lookup = async {
        if fetch_now {
            let m = client.manifest_get(src).await?;
            state.record_head(src, m.head());
            Ok::<_, ClientError>((m.head(), Some(m)))
        } else {
            match state.head_like(client, src, like.as_ref()).await? {
                Some(h) => Ok((h, None)),
                None => Err(ClientError::new(ErrorKind::NotFound, src.common_name(), "manifest not found")),
            }
        }
    };
    let (source_head, mut manifest) = lookup.await.inspect_err(|e| {
        tracing::error!(source = %src.common_name(), error = %e, "Failed to lookup source manifest");
    })?;
    admission.first_lookup(source_head.rate_limit);
    let mut source = src.with_digest(&source_head.digest);
    let mut top_media_type = source_head.media_type.clone();
    let mut expected = source_head.digest.clone();

    if let Some(wanted) = &step.compiled.platform
        && is_index(&source_head.media_type)
    {
        admission.before_pull().await?;
        let chosen = platforms.resolve(client, &source, manifest.as_ref(), wanted).await?;
        source = src.with_digest(&chosen.digest);
        manifest = None;
        if decide::platform_matches(target_digest.as_deref(), &chosen.digest, spec.options.force_recursive) {
            return Ok(Planned { plan: Plan::PlatformUpToDate, source, source_head, manifest });
        }
        // IMG-5 still checks the index's media type, as regsync does; what is
        // copied from here on is the chosen manifest.
        top_media_type = chosen.media_type;
        expected = chosen.digest;
    } else if ctx.options.platforms.is_some() && is_index(&source_head.media_type) {
        // With `platforms`, the target holds a filtered index: compare with its digest.
        admission.before_pull().await?;
        let m = match manifest.take() {
            Some(m) => m,
            None => state.manifest(client, &source).await?,
        };
        expected = ctx.options.top_manifest(&m)?.digest;
        manifest = Some(m);
    }

    let observed = Observed {
        action,
        source_media_type: &source_head.media_type,
        expected_digest: &expected,
        target_digest: target_digest.as_deref(),
    };
    let plan = match decide::first(&observed, flags, &spec.options.media_types) {
        First::Done(plan) => plan,
        First::CompareExtras => {
            let (referrers, tags) =
                extras::observe(ctx, &source.digest, &expected, &top_media_type, !admission.limited()).await?;
            decide::refresh(&referrers, &tags)
        }
    };
    Ok(Planned { plan, source, source_head, manifest })
}
