//! What a matching image brings along, compared between source and target
//! without pulling what did not change: the referrers and digest tags of
//! its top manifest and, when the tag lists say they may have their own,
//! of its children and referrers.

use std::collections::{HashSet, VecDeque};

use crate::client::{Result, is_index, is_manifest};
use crate::pipeline::lookup::{Context, Referrers};
use crate::pipeline::plan::decide::{DigestTagSeen, ReferrersSeen};

/// The referrer and digest-tag comparisons of the image whose top manifest
/// is `top` (a source digest); the target holds it as `target_top` (the same
/// digest, or the filtered index with `platforms`). `pulls` allows reading
/// the source's fallback indexes where the two sides differ.
pub async fn observe(
    ctx: &Context<'_>,
    top: &str,
    target_top: &str,
    top_media_type: &str,
    pulls: bool,
) -> Result<(Vec<ReferrersSeen>, Vec<DigestTagSeen>)> {
    let mut referrers = Vec::new();
    let mut tags = Vec::new();
    let mut queue = VecDeque::from([(top.to_string(), 0usize)]);
    let mut seen: HashSet<String> = HashSet::new();
    let mut below: Option<bool> = None;
    while let Some((subject, depth)) = queue.pop_front() {
        ctx.options.check_depth(depth, &subject)?;
        if !seen.insert(subject.clone()) {
            continue;
        }
        let mut next: Vec<String> = Vec::new();
        if ctx.options.referrers {
            let state = ctx.referrers(&subject, pulls).await?;
            let in_sync = match &state {
                Referrers::None => true,
                Referrers::Differs => false,
                Referrers::Same(index) => {
                    // Equal indexes list the same referrers; whether those have
                    // referrers of their own only matters when the tag lists say
                    // some manifest below an image's top has any.
                    if lazily(&mut below, ctx, top).await? {
                        next.extend(ctx.listed_in(index).await?.into_iter().map(|d| d.digest));
                    }
                    true
                }
                Referrers::Listed(listing) => {
                    let in_sync = listing.in_sync(&ctx.options.referrer_filters);
                    if in_sync {
                        next.extend(listing.wanted(&ctx.options.referrer_filters).map(|d| d.digest.clone()));
                    }
                    in_sync
                }
            };
            referrers.push(ReferrersSeen { subject: subject.clone(), in_sync });
        }
        if ctx.options.digest_tags {
            for tag in ctx.digest_tags(&subject).await? {
                let target = ctx.state.head(ctx.client, &ctx.scope.target.with_tag(&tag)).await.ok().flatten();
                let source_tag = ctx.scope.source.with_tag(&tag);
                let Some(source) = ctx.state.head_like(ctx.client, &source_tag, target.as_ref()).await? else {
                    continue;
                };
                let same = target.as_ref().is_some_and(|t| t.digest == source.digest);
                if same && lazily(&mut below, ctx, top).await? {
                    next.push(source.digest.clone());
                }
                tags.push(DigestTagSeen { tag, source: source.digest, target: target.map(|t| t.digest) });
            }
        }
        if subject == top && is_index(top_media_type) && lazily(&mut below, ctx, top).await? {
            // The target's copy of the index is the source's (same digest): read it there,
            // so checking costs no pull from the source.
            let index = ctx.state.manifest(ctx.client, &ctx.scope.target.with_digest(target_top)).await?;
            let doc = index
                .doc()
                .map_err(|e| crate::client::ClientError::new(crate::client::ErrorKind::Invalid, top, e.to_string()))?;
            next.extend(doc.manifests.into_iter().filter(|d| is_manifest(&d.media_type)).map(|d| d.digest));
        }
        queue.extend(next.into_iter().map(|d| (d, depth + 1)));
    }
    Ok((referrers, tags))
}

async fn lazily(below: &mut Option<bool>, ctx: &Context<'_>, top: &str) -> Result<bool> {
    if let Some(b) = below {
        return Ok(*b);
    }
    let b = ctx.look_below(top).await?;
    *below = Some(b);
    Ok(b)
}
