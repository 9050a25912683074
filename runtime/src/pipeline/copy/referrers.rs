//! Referrers and digest tags, part of a copy (COPY-8, COPY-10, COPY-11).
//!
//! Referrers are read from `referrerSource` (else the source), filtered by
//! `referrerFilters`, copied by digest to `referrerTarget` (else the target)
//! and, recursively, bring their own. Where the target has no referrers API
//! its `sha256-<hex>` fallback index is updated once per subject, with the
//! source's own bytes when they list exactly what the target should, so the
//! next run finds both sides equal with one HEAD each.
//!
//! Digest tags (`sha256-<hex>.*`) are copied by tag and pushed at the end of
//! the copy. Loops (an index whose referrer is itself, a digest tag naming
//! its own image) end because each manifest is copied once per image copy.
//!
//! What a manifest has and where the walk goes on is the walk's (`walk.rs`),
//! shared with the plan; this acts on it.

use futures_util::future::BoxFuture;

use super::{ImageCopy, Names};
use crate::client::{Descriptor, ErrorKind, Result, Upkeep, fallback_tag};
use crate::pipeline::walk::Referrers;

/// Brings the target's referrers of `subject` (a source digest) in line with
/// the source's; the referrers are `depth` levels below the image's top.
pub fn sync<'b>(copy: &'b ImageCopy<'b>, subject: &'b str, depth: usize) -> BoxFuture<'b, Result<()>> {
    Box::pin(async move {
        let ctx = copy.ctx;
        let listing = match copy.walk().referrers(subject, true).await? {
            Referrers::None | Referrers::Differs => return Ok(()),
            Referrers::Same { below } => {
                for r in below {
                    copy.extras_of(&r, depth).await?;
                }
                return Ok(());
            }
            Referrers::Listed(listing) => listing,
        };
        let wanted: Vec<Descriptor> = listing.wanted(&ctx.options.referrer_filters).cloned().collect();
        let mut add = Vec::new();
        let mut acknowledged = false;
        let mut all_landed = true;
        for r in &wanted {
            match referrer(copy, subject, r, listing.target.contains(&r.digest), depth).await {
                Ok(Some(ack)) => {
                    acknowledged |= ack;
                    if !listing.target.contains(&r.digest) {
                        add.push(r.clone());
                    }
                }
                Ok(None) => all_landed = false,
                Err(e) => {
                    if e.kind != ErrorKind::Cancelled {
                        let (src, tgt) = (&ctx.scope.referrer_source, &ctx.scope.referrer_target);
                        tracing::warn!(
                            digest = r.digest,
                            src = %src.pinned(&r.digest).common_name(),
                            tgt = %tgt.pinned(&r.digest).common_name(),
                            "Failed to copy referrer"
                        );
                    }
                    return Err(e);
                }
            }
        }
        if add.is_empty() || acknowledged {
            return Ok(());
        }
        // The source's own index, when it lists exactly what the target has now
        // (a referrer still being copied higher up is added at the end, COPY-11).
        let verbatim =
            (all_landed && wanted.len() == listing.source.len()).then_some(listing.source_index.as_ref()).flatten();
        let to = &ctx.scope.referrer_target;
        let held = ctx.state.hold_named(to, &add).await;
        let written = ctx.client.fallback_update(to, subject, &add, verbatim).await?;
        drop(held);
        if let Some(written) = written {
            ctx.state.record_head(&to.with_tag(&fallback_tag(subject)), written.head());
            copy.stats.lock().expect("poisoned").manifests += 1;
        }
        Ok(())
    })
}

/// One referrer of `subject`: copied unless the target has it, then its own
/// referrers and digest tags. `Some(acknowledged)` when it is on the target
/// (acknowledged: the push was answered with `OCI-Subject`); `None` when it
/// is still being copied higher up, so the subject waits for the end (COPY-11).
async fn referrer(
    copy: &ImageCopy<'_>,
    subject: &str,
    r: &Descriptor,
    listed: bool,
    depth: usize,
) -> Result<Option<bool>> {
    let ctx = copy.ctx;
    ctx.options.check_depth(depth, &r.digest)?;
    let (from, to) = (&ctx.scope.referrer_source, &ctx.scope.referrer_target);
    let present = listed || ctx.state.head(ctx.client, &to.pinned(&r.digest)).await.ok().flatten().is_some();
    if copy.visited.lock().expect("poisoned").contains(&r.digest) {
        if !present {
            copy.loops.lock().expect("poisoned").push(subject.to_string());
            return Ok(None);
        }
        return Ok(Some(false));
    }
    if present && !ctx.options.force_recursive {
        copy.extras_of(&r.digest, depth).await?;
        return Ok(Some(false));
    }
    let m = ctx.state.manifest(ctx.client, &from.pinned(&r.digest)).await?;
    let names = Names::pinned(from, to, &r.digest);
    copy.copy_tree(from, to, &m, &names, None, depth).await?;
    let pushed = copy.push_by_digest(to, &m, Upkeep::Caller).await?;
    Ok(Some(pushed.subject_acknowledged))
}

/// Copies the digest tags of `digest` (COPY-10).
pub async fn digest_tags_of(copy: &ImageCopy<'_>, digest: &str, depth: usize) -> Result<()> {
    for tag in copy.walk().digest_tags(digest).await? {
        digest_tag(copy, &tag, depth).await?;
    }
    Ok(())
}

/// One digest tag: nothing when both sides name the same manifest, else
/// its graph now and the tag at the end of the copy.
pub fn digest_tag<'b>(copy: &'b ImageCopy<'b>, tag: &'b str, depth: usize) -> BoxFuture<'b, Result<()>> {
    Box::pin(async move {
        let ctx = copy.ctx;
        let (src, dst) = (ctx.scope.source.with_tag(tag), ctx.scope.target.with_tag(tag));
        let result: Result<()> = async {
            let walk = copy.walk();
            let Some(found) = walk.digest_tag(tag).await? else {
                return Ok(());
            };
            if found.same() && !ctx.options.force_recursive {
                if let Some(below) = walk.below_tag(&found).await? {
                    copy.extras_of(&below, depth).await?;
                }
                return Ok(());
            }
            let m = ctx.client.manifest_get(&src.with_digest(&found.source)).await?;
            let names = Names { source: src.common_name(), target: dst.common_name() };
            let under = crate::client::digest_tag_subject(tag).filter(|_| crate::client::is_fallback_tag(tag));
            copy.copy_tree(&ctx.scope.source, &ctx.scope.target, &m, &names, under.as_deref(), depth).await?;
            copy.deferred.lock().expect("poisoned").push((dst.clone(), m));
            Ok(())
        }
        .await;
        if let Err(e) = &result
            && e.kind != ErrorKind::Cancelled
        {
            tracing::warn!(tag, src = %src.common_name(), tgt = %dst.common_name(), "Failed to copy digest-tag");
        }
        result
    })
}
