//! What the per-image stages work with: the step's copy options (what an
//! image brings along, its graph limits), the scope (where its source,
//! target and referrers are) and the run's client and memory.

use bytes::Bytes;
use tokio::sync::OnceCell;

use super::state::RunState;
use crate::client::{Client, ClientError, Descriptor, ErrorKind, Manifest, Result, is_index};
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
            listed(platforms, platform.as_ref())
        });
    }
    let bytes = Bytes::from(serde_json::to_vec(&doc)?);
    Ok(Manifest::new(&m.media_type, bytes))
}

/// True when a child of `platform` (none: a child without one) is among `platforms`.
fn listed(platforms: &[Option<Platform>], platform: Option<&Platform>) -> bool {
    platforms.iter().any(|want| match (want, platform) {
        (None, None) => true,
        (Some(w), Some(p)) => w.matches(p),
        _ => false,
    })
}

impl CopyOptions {
    /// True when the copy keeps this child of an index (`platforms`).
    pub fn keeps(&self, child: &Descriptor) -> bool {
        match &self.platforms {
            Some(platforms) => listed(platforms, child.platform.as_ref().map(|p| p.platform()).as_ref()),
            None => true,
        }
    }

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
    /// Whether the source's tag lists name manifests that are no image's
    /// top here (see `walk.rs`), found once per scope.
    pub(super) unattributed: OnceCell<bool>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
