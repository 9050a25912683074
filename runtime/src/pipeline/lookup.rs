//! Lookups the `plan` and `copy` stages share, cheapest first: where the
//! referrers and digest tags of one manifest stand on source and target.
//!
//! On a registry without the referrers API (and in layouts) the source's
//! tag list, read once per run, shows which manifests have a `sha256-<hex>`
//! fallback tag or digest tags at all; a HEAD per such tag on each side
//! tells whether they match. Only what differs is fetched.

use std::collections::HashSet;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use tokio::sync::OnceCell;

use super::state::RunState;
use crate::client::{Client, ClientError, Descriptor, ErrorKind, Manifest, Result, fallback_tag, is_index};
use crate::config::ReferrerFilter;
use crate::platform::Platform;
use crate::reference::Reference;

/// What a copy brings along, compiled from the step once.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Copy referrers.
    pub referrers: bool,
    /// Referrer filters; empty takes all.
    pub referrer_filters: Vec<ReferrerFilter>,
    /// Copy `sha256-<hex>.*` digest tags.
    pub digest_tags: bool,
    /// Re-push every manifest even when the target has it (COPY-12).
    pub force_recursive: bool,
    /// Copy layers that carry `urls`.
    pub include_external: bool,
    /// Keep only these platforms of an index (an empty entry keeps children without one).
    pub platforms: Option<Vec<Option<Platform>>>,
    /// How deep and wide an image's graph may be (`limits.depth`, `limits.referrers`).
    pub limits: crate::config::Limits,
}

impl CopyOptions {
    /// Fails when a manifest `depth` levels below an image's top is one too many.
    pub fn check_depth(&self, depth: usize, digest: &str) -> Result<()> {
        let max = self.limits.depth as usize;
        if depth > max {
            return Err(ClientError::new(
                ErrorKind::TooLarge,
                digest,
                format!("the image's graph is deeper than {max} levels (limits.depth): nested indexes or referrers"),
            ));
        }
        Ok(())
    }

    /// Fails when `subject` has more referrers than `limits.referrers`.
    pub fn check_referrers(&self, subject: &str, count: usize) -> Result<()> {
        let max = self.limits.referrers as usize;
        if count > max {
            return Err(ClientError::new(
                ErrorKind::TooLarge,
                subject,
                format!("{count} referrers, more than {max} (limits.referrers)"),
            ));
        }
        Ok(())
    }
}

/// The index with only the children whose platform is listed (docs/decisions.md:
/// registries that reject partial indexes accept this one).
pub fn filter_index(m: &Manifest, platforms: &[Option<Platform>]) -> std::result::Result<Manifest, serde_json::Error> {
    let mut doc: serde_json::Value = serde_json::from_slice(&m.bytes)?;
    if let Some(list) = doc.get_mut("manifests").and_then(|l| l.as_array_mut()) {
        list.retain(|entry| {
            let desc: Option<Descriptor> = serde_json::from_value(entry.clone()).ok();
            let platform = desc.and_then(|d| d.platform).map(|p| p.platform());
            platforms.iter().any(|want| match (want, &platform) {
                (None, None) => true,
                (Some(w), Some(p)) => w.matches(p),
                _ => false,
            })
        });
    }
    let bytes = Bytes::from(serde_json::to_vec(&doc)?);
    Ok(Manifest::new(&m.media_type, bytes))
}

impl CopyOptions {
    /// The manifest to push for `m` at the top: filtered by `platforms` when set.
    pub fn top_manifest(&self, m: &Manifest) -> Result<Manifest> {
        match &self.platforms {
            Some(platforms) if is_index(&m.media_type) => {
                filter_index(m, platforms).map_err(|e| ClientError::new(ErrorKind::Invalid, "platforms", e.to_string()))
            }
            _ => Ok(m.clone()),
        }
    }
}

/// One source repository of a step and where its images, referrers and
/// digest tags go.
pub struct Scope {
    /// The source repository (its tag is not used).
    pub source: Reference,
    /// The target repository.
    pub target: Reference,
    /// Where referrers are read (`referrerSource`, else the source).
    pub referrer_source: Reference,
    /// Where referrers are written (`referrerTarget`, else the target).
    pub referrer_target: Reference,
    /// The step's tags in this repository (repository and registry steps).
    pub tags: Vec<String>,
    unattributed: OnceCell<bool>,
}

impl Scope {
    /// A scope; `tags` are the images the step covers in this repository.
    pub fn new(
        source: Reference,
        target: Reference,
        referrer_source: Option<&Reference>,
        referrer_target: Option<&Reference>,
        tags: Vec<String>,
    ) -> Self {
        Scope {
            referrer_source: referrer_source.cloned().unwrap_or_else(|| source.clone()),
            referrer_target: referrer_target.cloned().unwrap_or_else(|| target.clone()),
            source,
            target,
            tags,
            unattributed: OnceCell::new(),
        }
    }
}

/// What the stages work with for one image.
pub struct Context<'a> {
    /// The client.
    pub client: &'a Client,
    /// The run's memory.
    pub state: &'a RunState,
    /// What to bring along.
    pub options: &'a CopyOptions,
    /// Where things are.
    pub scope: &'a Scope,
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
    /// Both sides hold byte-equal fallback indexes: nothing to do. The
    /// target's index digest, to read the list if it is needed.
    Same(String),
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

    /// True when the target lists every wanted referrer.
    pub fn in_sync(&self, filters: &[ReferrerFilter]) -> bool {
        self.wanted(filters).all(|d| self.target.contains(&d.digest))
    }
}

impl Context<'_> {
    fn referrer_source(&self, digest: &str) -> Reference {
        self.scope.referrer_source.with_digest(digest)
    }

    /// True when the source lists referrers through the API (so tag lists
    /// show nothing about them).
    pub fn source_has_api(&self) -> bool {
        self.client.referrers_api_known(&self.scope.referrer_source) == Some(true)
    }

    /// Where the referrers of `subject` stand. `pulls` allows fetching the
    /// source's fallback index when the two sides differ.
    pub async fn referrers(&self, subject: &str, pulls: bool) -> Result<Referrers> {
        let (client, state, scope) = (self.client, self.state, self.scope);
        let fb = fallback_tag(subject);
        let target_tag = scope.referrer_target.with_tag(&fb);
        let (source, source_index) = match client.referrers_api(&self.referrer_source(subject)).await? {
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
                    return Ok(Referrers::Same(source_head.digest));
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
        self.options.check_referrers(subject, source.len())?;
        let target = self.target_referrers(subject, &target_tag).await?;
        Ok(Referrers::Listed(Listing { source, source_index, target }))
    }

    /// The digests the target lists for `subject`: its fallback index, else
    /// its referrers API, else nothing.
    async fn target_referrers(&self, subject: &str, target_tag: &Reference) -> Result<HashSet<String>> {
        let (client, state) = (self.client, self.state);
        if let Some(head) = state.head(client, target_tag).await.ok().flatten() {
            let index = state.manifest(client, &target_tag.with_digest(&head.digest)).await?;
            return Ok(index.doc().map(|d| d.manifests.into_iter().map(|m| m.digest).collect()).unwrap_or_default());
        }
        let pinned = self.scope.referrer_target.with_digest(subject);
        Ok(client.referrers_api(&pinned).await?.unwrap_or_default().into_iter().map(|d| d.digest).collect())
    }

    /// The referrers the target's copy of a fallback index lists (after [`Referrers::Same`]).
    pub async fn listed_in(&self, index_digest: &str) -> Result<Vec<Descriptor>> {
        let index = self.state.manifest(self.client, &self.scope.referrer_target.with_digest(index_digest)).await?;
        Ok(index.doc().map(|d| d.manifests).unwrap_or_default())
    }

    /// The digest tags of `digest` in the source repository (COPY-10): the
    /// `sha256-<hex>` family, less the fallback tag itself when referrers are
    /// copied from the same repository through that tag.
    pub async fn digest_tags(&self, digest: &str) -> Result<Vec<String>> {
        let tags = self.state.tag_list(self.client, &self.scope.source).await?;
        let fb = fallback_tag(digest);
        let mut out: Vec<String> = tags.digest_tags(digest).to_vec();
        if self.options.referrers && out.contains(&fb) {
            // With referrers on, the target's fallback index is kept by the referrer
            // copy; copying the source's as a digest tag too would have the two
            // overwrite each other every run. A manifest that merely has the name
            // (a self digest tag) is not an index and is copied like any digest tag.
            let head = self.state.head(self.client, &self.scope.source.with_tag(&fb)).await?;
            if head.is_some_and(|h| crate::client::is_index(&h.media_type)) {
                out.retain(|t| *t != fb);
            }
        }
        Ok(out)
    }

    /// True when checking a matching image must look below its top manifest:
    /// the source lists referrers through the API (so children and referrers
    /// may have their own), or the source's tag lists name manifests that are
    /// not the top of any image of the step here (children or referrers with
    /// referrers or digest tags of their own). `top` is this image's digest.
    pub async fn look_below(&self, top: &str) -> Result<bool> {
        if self.options.referrers && self.source_has_api() {
            return Ok(true);
        }
        let unattributed = self
            .scope
            .unattributed
            .get_or_try_init(|| async {
                let (client, state, scope) = (self.client, self.state, self.scope);
                let mut named: HashSet<String> = HashSet::new();
                // Without a tag list nothing can be ruled out: look below.
                if self.options.digest_tags {
                    match state.tag_list(client, &scope.source).await {
                        Ok(tags) => named.extend(tags.subjects().cloned()),
                        Err(_) => return Ok(true),
                    }
                }
                if self.options.referrers && !self.source_has_api() {
                    match state.tag_list(client, &scope.referrer_source).await {
                        Ok(tags) => named.extend(tags.subjects().cloned()),
                        Err(_) => return Ok(true),
                    }
                }
                if named.is_empty() {
                    return Ok::<_, crate::client::ClientError>(false);
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

    #[test]
    fn filtered_index_keeps_listed_platforms_only() {
        let doc = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:1", "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:2", "size": 1, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:3", "size": 1, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:4", "size": 1}
            ]
        });
        let m =
            Manifest::new("application/vnd.oci.image.index.v1+json", Bytes::from(serde_json::to_vec(&doc).unwrap()));
        let keep = vec![Some(Platform::parse("linux/amd64").unwrap()), Some(Platform::parse("linux/arm64").unwrap())];
        let filtered = filter_index(&m, &keep).unwrap();
        let digests: Vec<String> = filtered.doc().unwrap().manifests.into_iter().map(|d| d.digest).collect();
        assert_eq!(digests, vec!["sha256:1", "sha256:2"]);
        assert_ne!(filtered.digest, m.digest);
        assert_eq!(filter_index(&m, &keep).unwrap().digest, filtered.digest, "deterministic");
        let unplatformed = filter_index(&m, &[None]).unwrap();
        assert_eq!(unplatformed.doc().unwrap().manifests.len(), 1);
    }
}
