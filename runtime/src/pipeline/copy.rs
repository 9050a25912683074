//! The `copy` stage: one image graph from source to target (COPY-*).
//!
//! Children and blobs go first, concurrently; the manifest that names them
//! goes after, and the tagged manifest last, so a target tag never points at
//! something missing, even if the process is killed half way. Within a run a
//! blob is sent to a target repository at most once: concurrent requests for
//! it wait for the first, and a blob already sent to another repository of
//! the same registry is mounted instead of uploaded.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

use super::referrers;
use super::report::CopyStats;
use crate::client::{BlobCopy, Client, ClientError, Descriptor, ErrorKind, Manifest, Result, is_index, is_manifest};
use crate::config::ReferrerFilter;
use crate::platform::Platform;
use crate::reference::{Reference, Scheme};

/// How many children or blobs of one manifest move at once; the per-host
/// request limit still bounds what reaches each registry.
pub const FAN_OUT: usize = 8;
/// Entries kept in long-lived lookup caches (a server runs for months).
pub const CACHE_ENTRIES: usize = 4096;

/// A small bounded map: the oldest entry goes when full.
pub struct Bounded<V> {
    map: HashMap<String, V>,
    order: VecDeque<String>,
    limit: usize,
}

impl<V: Clone> Bounded<V> {
    /// An empty map holding at most `limit` entries.
    pub fn new(limit: usize) -> Self {
        Bounded { map: HashMap::new(), order: VecDeque::new(), limit }
    }

    /// A value.
    pub fn get(&self, k: &str) -> Option<V> {
        self.map.get(k).cloned()
    }

    /// Stores a value.
    pub fn put(&mut self, k: String, v: V) {
        if self.map.insert(k.clone(), v).is_none() {
            self.order.push_back(k);
            while self.order.len() > self.limit {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

type BlobCell = Arc<OnceCell<BlobCopy>>;
type HolderCell = Arc<OnceCell<Reference>>;

/// What one run remembers across its images and steps; a new run starts
/// fresh, so a server's memory does not grow with the runs it made.
pub struct RunState {
    /// Target repository + digest → how the blob got there.
    blobs: Mutex<HashMap<String, BlobCell>>,
    /// Target registry + digest → the first repository of that registry to get it.
    holders: Mutex<HashMap<String, HolderCell>>,
}

impl Default for RunState {
    fn default() -> Self {
        RunState { blobs: Mutex::new(HashMap::new()), holders: Mutex::new(HashMap::new()) }
    }
}

/// A repository's identity for maps: `registry/repo` or `ocidir://path`.
pub(super) fn repo_key(r: &Reference) -> String {
    match r.scheme {
        Scheme::Registry => format!("{}/{}", r.registry, r.repository),
        Scheme::OciDir => format!("ocidir://{}", r.path),
    }
}

impl RunState {
    /// Copies a blob at most once per target repository and run. Concurrent
    /// requests for the same blob wait for the first; on a registry, the
    /// first repository to get a blob is its holder, and every other
    /// repository of that registry mounts from it instead of uploading.
    /// Returns how the blob got there and whether this call did the work.
    pub async fn copy_blob(
        &self,
        client: &Client,
        src: &Reference,
        dst: &Reference,
        desc: &Descriptor,
    ) -> Result<(BlobCopy, bool)> {
        let key = format!("{}@{}", repo_key(dst), desc.digest);
        let cell = self.blobs.lock().expect("poisoned").entry(key.clone()).or_default().clone();
        let mut ran = false;
        let result = cell
            .get_or_try_init(|| {
                ran = true;
                self.copy_once(client, src, dst, desc)
            })
            .await;
        match result {
            Ok(how) => Ok((*how, ran)),
            Err(e) => {
                // Let a later attempt in this run try again.
                self.blobs.lock().expect("poisoned").remove(&key);
                Err(e)
            }
        }
    }

    async fn copy_once(
        &self,
        client: &Client,
        src: &Reference,
        dst: &Reference,
        desc: &Descriptor,
    ) -> Result<BlobCopy> {
        if dst.scheme != Scheme::Registry {
            return client.copy_blob(src, dst, desc, None).await;
        }
        let holder_key = format!("{}@{}", dst.registry, desc.digest);
        let holder = self.holders.lock().expect("poisoned").entry(holder_key).or_default().clone();
        let mut how = None;
        let holding = holder
            .get_or_try_init(|| async {
                how = Some(client.copy_blob(src, dst, desc, None).await?);
                Ok::<_, ClientError>(dst.clone())
            })
            .await?;
        match how {
            Some(h) => Ok(h),
            // Another repository of this registry got it first (or is getting it): mount from there.
            None => client.copy_blob(src, dst, desc, Some(holding)).await,
        }
    }
}

/// What one copy should bring along.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Copy referrers.
    pub referrers: bool,
    /// Referrer filters; empty takes all.
    pub referrer_filters: Vec<ReferrerFilter>,
    /// Read referrers from here instead of the source repository.
    pub referrer_source: Option<Reference>,
    /// Write referrers here instead of the target repository.
    pub referrer_target: Option<Reference>,
    /// Copy `sha256-<hex>.*` digest tags.
    pub digest_tags: bool,
    /// Re-check every manifest and blob even when the target has them.
    pub force_recursive: bool,
    /// Copy layers that carry `urls`.
    pub include_external: bool,
    /// Keep only these platforms of an index (an empty entry keeps children without one).
    pub platforms: Option<Vec<Option<Platform>>>,
}

/// One image copy: a source manifest and everything under it.
pub struct ImageCopy<'a> {
    pub(super) client: &'a Client,
    pub(super) state: &'a RunState,
    pub(super) options: &'a CopyOptions,
    pub(super) stats: Mutex<CopyStats>,
    pub(super) visited: Mutex<HashSet<String>>,
    /// Tags to push once everything they name is in place (digest tags).
    pub(super) deferred: Mutex<Vec<(Reference, Manifest)>>,
    /// Tag lists of source repositories, read once per copy (COPY-10).
    pub(super) source_tags: tokio::sync::Mutex<HashMap<String, Arc<Vec<String>>>>,
}

fn invalid(r: &Reference, e: impl std::fmt::Display) -> ClientError {
    ClientError::new(ErrorKind::Invalid, r.common_name(), e.to_string())
}

/// The index with only the children whose platform is listed (decisions.md:
/// registries that reject partial indexes accept this one).
pub fn filter_index(m: &Manifest, platforms: &[Option<Platform>]) -> std::result::Result<Manifest, serde_json::Error> {
    let mut doc: serde_json::Value = serde_json::from_slice(&m.bytes)?;
    if let Some(list) = doc.get_mut("manifests").and_then(|l| l.as_array_mut()) {
        list.retain(|entry| {
            let desc: Option<Descriptor> = serde_json::from_value(entry.clone()).ok();
            let platform = desc.and_then(|d| d.platform).map(|p| Platform::from_descriptor(&p));
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

impl<'a> ImageCopy<'a> {
    /// Prepares a copy.
    pub fn new(client: &'a Client, state: &'a RunState, options: &'a CopyOptions) -> Self {
        ImageCopy {
            client,
            state,
            options,
            stats: Mutex::new(CopyStats::default()),
            visited: Mutex::new(HashSet::new()),
            deferred: Mutex::new(Vec::new()),
            source_tags: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The manifest to push for `m` at the top: filtered by `platforms` when set.
    pub fn top_manifest(&self, m: &Manifest) -> Result<Manifest> {
        match &self.options.platforms {
            Some(platforms) if is_index(&m.media_type) => {
                filter_index(m, platforms).map_err(|e| ClientError::new(ErrorKind::Invalid, "platforms", e.to_string()))
            }
            _ => Ok(m.clone()),
        }
    }

    /// Copies `m` (read from `src`) to `dst`, tag last, and returns the counters.
    pub async fn run(self, src: &Reference, dst: &Reference, m: &Manifest) -> Result<CopyStats> {
        let top = self.top_manifest(m)?;
        self.copy_tree(src, dst, &top).await?;
        self.client.manifest_put(dst, &top, false).await?;
        self.stats.lock().expect("poisoned").manifests += 1;
        let deferred = std::mem::take(&mut *self.deferred.lock().expect("poisoned"));
        for (tag_ref, manifest) in deferred {
            self.client.manifest_put(&tag_ref, &manifest, false).await?;
            self.stats.lock().expect("poisoned").manifests += 1;
        }
        Ok(*self.stats.lock().expect("poisoned"))
    }

    /// Everything `m` needs on the target, but not `m` itself: child manifests
    /// (pushed by digest), blobs, referrers and digest tags.
    pub(super) fn copy_tree<'b>(
        &'b self,
        src: &'b Reference,
        dst: &'b Reference,
        m: &'b Manifest,
    ) -> BoxFuture<'b, Result<()>> {
        Box::pin(async move {
            if !self.visited.lock().expect("poisoned").insert(m.digest.clone()) {
                return Ok(());
            }
            let doc = m.doc().map_err(|e| invalid(src, e))?;
            // Built eagerly: a lazy `map` closure here trips the compiler's Send checks.
            let children: Vec<BoxFuture<'_, Result<()>>> =
                doc.manifests.iter().map(|child| self.copy_child(src, dst, child)).collect();
            futures_util::stream::iter(children).buffer_unordered(FAN_OUT).try_collect::<Vec<()>>().await?;
            let copies: Vec<BoxFuture<'_, Result<()>>> = doc
                .config
                .iter()
                .chain(&doc.layers)
                .chain(&doc.blobs)
                .map(|b| Box::pin(self.copy_blob(src, dst, b)) as BoxFuture<'_, Result<()>>)
                .collect();
            futures_util::stream::iter(copies).buffer_unordered(FAN_OUT).try_collect::<Vec<()>>().await?;
            for layer in &doc.fs_layers {
                let desc = Descriptor::new("application/vnd.docker.image.rootfs.diff.tar.gzip", &layer.blob_sum, 0);
                self.copy_blob(src, dst, &desc).await?;
            }
            if self.options.referrers {
                referrers::copy_referrers(self, src, dst, &m.digest).await?;
            }
            if self.options.digest_tags {
                referrers::copy_digest_tags(self, src, dst, &m.digest).await?;
            }
            Ok(())
        })
    }

    /// A child of an index: skipped when the target has it (its own children
    /// went first) unless a refresh is asked for, else copied, then pushed by digest.
    fn copy_child<'b>(
        &'b self,
        src: &'b Reference,
        dst: &'b Reference,
        child: &'b Descriptor,
    ) -> BoxFuture<'b, Result<()>> {
        Box::pin(async move {
            if !is_manifest(&child.media_type) {
                return self.copy_blob(src, dst, child).await;
            }
            let dst_child = dst.with_digest(&child.digest);
            let refresh = self.options.force_recursive || self.options.referrers || self.options.digest_tags;
            let present = self.client.manifest_head(&dst_child).await.is_ok_and(|h| h.digest == child.digest);
            if present && !refresh {
                return Ok(());
            }
            let m = self.client.manifest_get(&src.with_digest(&child.digest)).await?;
            self.copy_tree(src, dst, &m).await?;
            if !present || self.options.force_recursive {
                self.client.manifest_put(&dst_child, &m, true).await?;
                self.stats.lock().expect("poisoned").manifests += 1;
            }
            Ok(())
        })
    }

    async fn copy_blob(&self, src: &Reference, dst: &Reference, desc: &Descriptor) -> Result<()> {
        if !desc.urls.is_empty() && !self.options.include_external {
            tracing::debug!(layer = desc.digest, "Skipping external layer");
            return Ok(());
        }
        let (how, ours) = self.state.copy_blob(self.client, src, dst, desc).await?;
        let mut stats = self.stats.lock().expect("poisoned");
        match (how, ours) {
            (BlobCopy::Copied, true) => {
                stats.blobs_copied += 1;
                stats.bytes += desc.size;
            }
            (BlobCopy::Mounted, true) => stats.blobs_mounted += 1,
            _ => stats.blobs_skipped += 1,
        }
        drop(stats);
        if ours && how != BlobCopy::Existed {
            let what = if desc.media_type.contains("config") { "Copy config" } else { "Copy layer" };
            tracing::info!(source = %src.common_name(), target = %dst.common_name(), layer = desc.digest, "{what}");
        }
        Ok(())
    }
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

    #[test]
    fn bounded_map_forgets_the_oldest() {
        let mut b = Bounded::new(2);
        b.put("a".into(), 1);
        b.put("b".into(), 2);
        b.put("c".into(), 3);
        assert_eq!((b.get("a"), b.get("b"), b.get("c")), (None, Some(2), Some(3)));
    }
}
