//! What a matching image brings along, compared between source and target
//! without pulling what did not change: the referrers and digest tags of
//! its top manifest and, when the tag lists say they may have their own,
//! of its children and referrers. The rules are the walk's (`walk.rs`);
//! this only records what it finds, breadth first.

use std::collections::{HashSet, VecDeque};

use crate::client::{ClientError, ErrorKind, Result, is_index, is_manifest};
use crate::pipeline::context::Context;
use crate::pipeline::plan::decide::{DigestTagSeen, ReferrersSeen};
use crate::pipeline::walk::{Referrers, Walk};

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
    let walk = Walk::new(ctx, top);
    let mut referrers = Vec::new();
    let mut tags = Vec::new();
    let mut queue = VecDeque::from([(top.to_string(), 0usize)]);
    let mut seen: HashSet<String> = HashSet::new();
    while let Some((subject, depth)) = queue.pop_front() {
        ctx.options.check_depth(depth, &subject)?;
        if !seen.insert(subject.clone()) {
            continue;
        }
        let mut next: Vec<String> = Vec::new();
        if ctx.options.referrers {
            // Where they differ the copy walks on from here; where both sides
            // agree, the walk goes on to what they list.
            let in_sync = match walk.referrers(&subject, pulls).await? {
                Referrers::None => true,
                Referrers::Differs => false,
                Referrers::Same { below } => {
                    next.extend(below);
                    true
                }
                Referrers::Listed(listing) => {
                    let filters = &ctx.options.referrer_filters;
                    let in_sync = listing.in_sync(filters);
                    if in_sync {
                        next.extend(listing.on_both(filters).map(|d| d.digest.clone()));
                    }
                    in_sync
                }
            };
            referrers.push(ReferrersSeen { subject: subject.clone(), in_sync });
        }
        if ctx.options.digest_tags {
            for tag in walk.digest_tags(&subject).await? {
                let Some(found) = walk.digest_tag(&tag).await? else {
                    continue;
                };
                next.extend(walk.below_tag(&found).await?);
                tags.push(DigestTagSeen { tag: found.tag, source: found.source, target: found.target });
            }
        }
        if subject == top && is_index(top_media_type) && walk.look_below().await? {
            // The target's copy of the index is the source's (same digest): read it there,
            // so checking costs no pull from the source.
            let index = ctx.state.manifest(ctx.client, &ctx.scope.target.with_digest(target_top)).await?;
            let doc = index.doc().map_err(|e| ClientError::new(ErrorKind::Invalid, top, e.to_string()))?;
            next.extend(doc.manifests.into_iter().filter(|d| is_manifest(&d.media_type)).map(|d| d.digest));
        }
        queue.extend(next.into_iter().map(|d| (d, depth + 1)));
    }
    Ok((referrers, tags))
}
