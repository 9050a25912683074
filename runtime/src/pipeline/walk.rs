//! The walk over what an image brings along: the referrers and digest tags
//! of each manifest in its graph, and which of those lead further down.
//!
//! The plan walks it to observe (`plan/extras.rs`: compare, pull nothing it
//! need not) and the copy to act (`copy/referrers.rs`); the rules are here
//! once: which referrers the filters keep and in what order (the source's),
//! how many a subject may have (`limits.referrers`), which digest tags a
//! manifest has, and when a part both sides hold leads the walk below it.
//!
//! On a registry without the referrers API (and in layouts) the source's
//! tag list, read once per run, shows which manifests have a `sha256-<hex>`
//! fallback tag or digest tags at all; a HEAD per such tag on each side
//! tells whether they match. Only what differs is fetched.

use std::collections::HashSet;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use super::context::Context;
use crate::client::{ClientError, Descriptor, Manifest, Result, fallback_tag, is_index};
use crate::config::ReferrerFilter;
use crate::reference::Reference;

/// One image's walk: its stages' context and its top manifest (a source
/// digest), against which "below the top" is measured.
#[derive(Clone, Copy)]
pub struct Walk<'w> {
    ctx: &'w Context<'w>,
    top: &'w str,
}

impl<'w> Walk<'w> {
    /// The walk of the image whose top manifest is `top`.
    pub fn new(ctx: &'w Context<'w>, top: &'w str) -> Self {
        Walk { ctx, top }
    }
}

/// One digest tag as both sides name it.
#[derive(Debug, Clone)]
pub struct DigestTag {
    /// The tag (`sha256-<hex>.*`).
    pub tag: String,
    /// The manifest the source's tag names.
    pub source: String,
    /// The manifest the target's tag names, if it has the tag.
    pub target: Option<String>,
}

impl DigestTag {
    /// True when both sides name the same manifest.
    pub fn same(&self) -> bool {
        self.target.as_deref() == Some(self.source.as_str())
    }
}

/// True when a referrer passes the filters: any filter whose artifact type
/// (if set) matches and whose annotations are all present (with the same
/// value, unless the filter's value is empty). No filters take everything.
pub fn passes(filters: &[ReferrerFilter], d: &Descriptor) -> bool {
    filters.is_empty()
        || filters.iter().any(|f| {
            (f.artifact_type.is_empty() || d.artifact_type.as_deref() == Some(f.artifact_type.as_str()))
                && f.annotations.iter().all(|(k, v)| d.annotations.get(k).is_some_and(|dv| v.is_empty() || dv == v))
        })
}

/// Where the referrers of one manifest stand.
#[derive(Debug, Clone)]
pub enum Referrers {
    /// The source has none.
    None,
    /// Both sides hold byte-equal fallback indexes: nothing to copy. The
    /// walk goes on to the referrers listed there, or to none when no
    /// manifest below the image's top has extras of its own.
    Same {
        /// The referrers whose own extras are looked at next.
        below: Vec<String>,
    },
    /// Both sides listed.
    Listed(Listing),
    /// They differ; finding out more would pull from the source, which the
    /// caller does not allow yet (rate limit, RL-2).
    Differs,
}

/// Referrers listed on both sides.
#[derive(Debug, Clone)]
pub struct Listing {
    /// Every referrer the source lists.
    pub source: Vec<Descriptor>,
    /// The source's fallback index, when listed through one (stored
    /// verbatim on the target when it holds everything).
    pub source_index: Option<Manifest>,
    /// Digests the target lists.
    pub target: HashSet<String>,
}

impl Listing {
    /// The referrers the filters keep.
    pub fn wanted<'l>(&'l self, filters: &'l [ReferrerFilter]) -> impl Iterator<Item = &'l Descriptor> {
        self.source.iter().filter(move |d| passes(filters, d))
    }

    /// The wanted referrers the target lists too: the walk goes on to their
    /// own extras rather than copying them.
    pub fn on_both<'l>(&'l self, filters: &'l [ReferrerFilter]) -> impl Iterator<Item = &'l Descriptor> {
        self.wanted(filters).filter(|d| self.target.contains(&d.digest))
    }

    /// True when the target lists every wanted referrer.
    pub fn in_sync(&self, filters: &[ReferrerFilter]) -> bool {
        self.wanted(filters).all(|d| self.target.contains(&d.digest))
    }
}

impl Walk<'_> {
    /// True when the source lists referrers through the API (so tag lists
    /// show nothing about them).
    fn source_has_api(&self) -> bool {
        self.ctx.client.referrers_api_known(&self.ctx.scope.referrer_source) == Some(true)
    }

    /// Where the referrers of `subject` stand. `pulls` allows fetching the
    /// source's fallback index when the two sides differ.
    pub async fn referrers(&self, subject: &str, pulls: bool) -> Result<Referrers> {
        let (client, state, scope) = (self.ctx.client, self.ctx.state, self.ctx.scope);
        let fb = fallback_tag(subject);
        let target_tag = scope.referrer_target.with_tag(&fb);
        let (source, source_index) = match client.referrers_api(&scope.referrer_source.with_digest(subject)).await? {
            Some(list) => (list, None),
            None => {
                // The tag list says which manifests have a fallback tag at all; where
                // it cannot be read (a pull-only token), the tag itself is asked.
                if let Ok(tags) = state.tag_list(client, &scope.referrer_source).await
                    && !tags.has_fallback(subject)
                {
                    return Ok(Referrers::None);
                }
                let target_head = state.head(client, &target_tag).await.ok().flatten();
                let source_tag = scope.referrer_source.with_tag(&fb);
                let Some(source_head) = state.head_like(client, &source_tag, target_head.as_ref()).await? else {
                    return Ok(Referrers::None);
                };
                if target_head.as_ref().is_some_and(|t| t.digest == source_head.digest) {
                    let below = match self.look_below().await? {
                        true => self.listed_in(&source_head.digest).await?,
                        false => Vec::new(),
                    };
                    return Ok(Referrers::Same { below });
                }
                if !pulls {
                    return Ok(Referrers::Differs);
                }
                let index = state.manifest(client, &scope.referrer_source.with_digest(&source_head.digest)).await?;
                (index.doc().map(|d| d.manifests).unwrap_or_default(), Some(index))
            }
        };
        if source.is_empty() {
            return Ok(Referrers::None);
        }
        self.ctx.options.check_referrers(subject, source.len())?;
        let target = self.target_referrers(subject, &target_tag).await?;
        Ok(Referrers::Listed(Listing { source, source_index, target }))
    }

    /// The digests the target lists for `subject`: its fallback index, else
    /// its referrers API, else nothing.
    async fn target_referrers(&self, subject: &str, target_tag: &Reference) -> Result<HashSet<String>> {
        let (client, state) = (self.ctx.client, self.ctx.state);
        if let Some(head) = state.head(client, target_tag).await.ok().flatten() {
            let index = state.manifest(client, &target_tag.with_digest(&head.digest)).await?;
            return Ok(index.doc().map(|d| d.manifests.into_iter().map(|m| m.digest).collect()).unwrap_or_default());
        }
        let pinned = self.ctx.scope.referrer_target.with_digest(subject);
        Ok(client.referrers_api(&pinned).await?.unwrap_or_default().into_iter().map(|d| d.digest).collect())
    }

    /// The referrers the target's copy of a fallback index lists.
    async fn listed_in(&self, index_digest: &str) -> Result<Vec<String>> {
        let (client, state, scope) = (self.ctx.client, self.ctx.state, self.ctx.scope);
        let index = state.manifest(client, &scope.referrer_target.with_digest(index_digest)).await?;
        Ok(index.doc().map(|d| d.manifests.into_iter().map(|m| m.digest).collect()).unwrap_or_default())
    }

    /// The digest tags of `digest` in the source repository (COPY-10): the
    /// `sha256-<hex>` family, less the fallback tag itself when referrers are
    /// copied from the same repository through that tag.
    pub async fn digest_tags(&self, digest: &str) -> Result<Vec<String>> {
        let (client, state, scope) = (self.ctx.client, self.ctx.state, self.ctx.scope);
        let tags = state.tag_list(client, &scope.source).await?;
        let fb = fallback_tag(digest);
        let mut out: Vec<String> = tags.digest_tags(digest).to_vec();
        if self.ctx.options.referrers && out.contains(&fb) {
            // With referrers on, the target's fallback index is kept by the referrer
            // copy; copying the source's as a digest tag too would have the two
            // overwrite each other every run. A manifest that merely has the name
            // (a self digest tag) is not an index and is copied like any digest tag.
            let head = state.head(client, &scope.source.with_tag(&fb)).await?;
            if head.is_some_and(|h| is_index(&h.media_type)) {
                out.retain(|t| *t != fb);
            }
        }
        Ok(out)
    }

    /// Where one digest tag stands on both sides: the target's HEAD first,
    /// then the source's, asked only as far as the target's answer needs.
    /// `None` when the source no longer has the tag.
    pub async fn digest_tag(&self, tag: &str) -> Result<Option<DigestTag>> {
        let (client, state, scope) = (self.ctx.client, self.ctx.state, self.ctx.scope);
        let target = state.head(client, &scope.target.with_tag(tag)).await.ok().flatten();
        let Some(source) = state.head_like(client, &scope.source.with_tag(tag), target.as_ref()).await? else {
            return Ok(None);
        };
        Ok(Some(DigestTag { tag: tag.to_string(), source: source.digest, target: target.map(|t| t.digest) }))
    }

    /// The manifest a digest tag leads the walk on to: the one both sides
    /// name, when manifests below the image's top may have extras of their own.
    pub async fn below_tag(&self, tag: &DigestTag) -> Result<Option<String>> {
        Ok(match tag.same() && self.look_below().await? {
            true => Some(tag.source.clone()),
            false => None,
        })
    }

    /// True when checking a matching image must look below its top manifest:
    /// the source lists referrers through the API (so children and referrers
    /// may have their own), or the source's tag lists name manifests that are
    /// not the top of any image of the step here (children or referrers with
    /// referrers or digest tags of their own).
    pub async fn look_below(&self) -> Result<bool> {
        let (options, top) = (self.ctx.options, self.top);
        if options.referrers && self.source_has_api() {
            return Ok(true);
        }
        let unattributed = self
            .ctx
            .scope
            .unattributed
            .get_or_try_init(|| async {
                let (client, state, scope) = (self.ctx.client, self.ctx.state, self.ctx.scope);
                let mut named: HashSet<String> = HashSet::new();
                // Without a tag list nothing can be ruled out: look below.
                if options.digest_tags {
                    match state.tag_list(client, &scope.source).await {
                        Ok(tags) => named.extend(tags.subjects().cloned()),
                        Err(_) => return Ok(true),
                    }
                }
                if options.referrers && !self.source_has_api() {
                    match state.tag_list(client, &scope.referrer_source).await {
                        Ok(tags) => named.extend(tags.subjects().cloned()),
                        Err(_) => return Ok(true),
                    }
                }
                if named.is_empty() {
                    return Ok::<_, ClientError>(false);
                }
                // Built eagerly: a lazy `map` closure here trips the compiler's Send checks.
                let lookups: Vec<BoxFuture<'_, Option<String>>> = scope
                    .tags
                    .iter()
                    .map(|t| {
                        // The same lookups, in the same order, as each image's plan makes
                        // (the run remembers them): target first, then the source asked
                        // conditionally.
                        Box::pin(async move {
                            let target = state.head(client, &scope.target.with_tag(t)).await.ok().flatten();
                            let source = state.head_like(client, &scope.source.with_tag(t), target.as_ref()).await;
                            source.ok().flatten().map(|h| h.digest)
                        }) as BoxFuture<'_, Option<String>>
                    })
                    .collect();
                let heads = futures_util::stream::iter(lookups).buffer_unordered(16).collect::<Vec<_>>().await;
                let mut tops: HashSet<String> = heads.into_iter().flatten().collect();
                tops.insert(top.to_string());
                Ok(named.iter().any(|d| !tops.contains(d)))
            })
            .await?;
        Ok(*unattributed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(artifact_type: &str, annotations: &[(&str, &str)]) -> Descriptor {
        let mut d = Descriptor::new("application/vnd.oci.image.manifest.v1+json", "sha256:x", 1);
        d.artifact_type = Some(artifact_type.to_string());
        d.annotations = annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        d
    }

    fn filter(artifact_type: &str, annotations: &[(&str, &str)]) -> ReferrerFilter {
        ReferrerFilter {
            artifact_type: artifact_type.into(),
            annotations: annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn referrer_filters_img_13() {
        let sbom = desc("application/example.sbom", &[("preference", "1"), ("team", "a")]);
        let sig = desc("application/example.signature", &[]);
        assert!(passes(&[], &sig));
        let only_sbom = [filter("application/example.sbom", &[])];
        assert!(passes(&only_sbom, &sbom) && !passes(&only_sbom, &sig));
        assert!(passes(&[filter("", &[("preference", "1")])], &sbom));
        assert!(!passes(&[filter("", &[("preference", "2")])], &sbom));
        assert!(passes(&[filter("", &[("team", "")])], &sbom), "an empty value only needs the key");
        assert!(!passes(&[filter("", &[("owner", "")])], &sbom));
        let either = [filter("application/example.signature", &[]), filter("", &[("team", "a")])];
        assert!(passes(&either, &sbom) && passes(&either, &sig));
        assert!(!passes(&[filter("application/example.sbom", &[("team", "b")])], &sbom), "both parts must match");
    }

    #[test]
    fn a_listing_is_in_sync_when_the_target_has_every_wanted_referrer() {
        let mut sbom = desc("application/example.sbom", &[]);
        sbom.digest = "sha256:sbom".into();
        let mut sig = desc("application/example.signature", &[]);
        sig.digest = "sha256:sig".into();
        let listing = Listing {
            source: vec![sbom, sig],
            source_index: None,
            target: ["sha256:sbom".to_string()].into_iter().collect(),
        };
        assert!(!listing.in_sync(&[]));
        assert!(listing.in_sync(&[filter("application/example.sbom", &[])]));
    }
}
