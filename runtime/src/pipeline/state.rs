//! What one run has seen and done, shared by every step and image of the
//! run: manifest HEADs and source tag lists (asked once, then remembered),
//! digest-addressed manifests (immutable, so safe to keep), and the
//! manifests and blobs written to each target repository (written once).
//!
//! A new run starts with a fresh state, so a server's memory does not grow
//! with the runs it makes. Writing the same manifest or blob into one
//! repository twice is not only wasted work: distribution 2.8 rewrites link
//! files in place, and a concurrent push naming that content can then fail
//! its verification with `DIGEST_INVALID`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::cells::{Cell, CellMap, key};
use crate::client::locks::{KeyGuard, KeyedLocks};
use crate::client::{BlobCopy, Client, ClientError, Descriptor, Manifest, ManifestHead, Pushed, PutOptions, Result};
use crate::client::{digest_tag_subject, fallback_tag, is_manifest};
use crate::reference::{Reference, Scheme};

/// A manifest's identity: the repository plus `@digest`, or `:tag` (a
/// layout's untagged reference means `latest`, REF-5).
pub fn manifest_key(r: &Reference) -> String {
    if !r.digest.is_empty() {
        format!("{}@{}", r.repository_key(), r.digest)
    } else {
        format!("{}:{}", r.repository_key(), if r.tag.is_empty() { "latest" } else { &r.tag })
    }
}

/// The tags of a source repository, indexed by the digest their
/// `sha256-<hex>` family names (fallback tags and digest tags).
#[derive(Debug, Default)]
pub struct TagList {
    /// Every tag, as listed.
    pub tags: Vec<String>,
    by_subject: HashMap<String, Vec<String>>,
}

impl TagList {
    /// Indexes a listing.
    pub fn new(tags: Vec<String>) -> Self {
        let mut by_subject: HashMap<String, Vec<String>> = HashMap::new();
        for t in &tags {
            if let Some(subject) = digest_tag_subject(t) {
                by_subject.entry(subject).or_default().push(t.clone());
            }
        }
        TagList { tags, by_subject }
    }

    /// Tags of `digest`'s family: `sha256-<hex>` and `sha256-<hex>.*`.
    pub fn digest_tags(&self, digest: &str) -> &[String] {
        self.by_subject.get(digest).map_or(&[], Vec::as_slice)
    }

    /// True when the referrers fallback tag of `digest` is listed.
    pub fn has_fallback(&self, digest: &str) -> bool {
        let tag = fallback_tag(digest);
        self.digest_tags(digest).contains(&tag)
    }

    /// Digests that some tag of the `sha256-<hex>` family names.
    pub fn subjects(&self) -> impl Iterator<Item = &String> {
        self.by_subject.keys()
    }
}

/// Most manifest HEADs remembered: a repository of a hundred thousand tags
/// keeps the latest this many (the lookups of one image and its neighbours).
const HEADS_CAP: usize = 16 << 10;
/// Most manifests kept, and their bytes together.
const MANIFESTS_CAP: usize = 4 << 10;
const MANIFESTS_BUDGET: usize = 4 << 20;
/// Most pushes and blob copies remembered (a few dozen bytes each).
const WRITES_CAP: usize = 64 << 10;
/// Most blob holders remembered (mount sources).
const HOLDERS_CAP: usize = 16 << 10;

/// Everything one run remembers; bounded (see [`CellMap`]), so forgetting
/// only costs asking again.
pub struct RunState {
    heads: CellMap<Option<ManifestHead>>,
    /// A registry's refusal (a pull-only token may not list tags) is kept for
    /// the run too: every image of the repository would otherwise ask again.
    /// Dropped when the repository's images are done.
    tag_lists: Mutex<HashMap<String, Cell<Result<Arc<TagList>>>>>,
    manifests: CellMap<Manifest>,
    pushed: CellMap<Pushed>,
    blobs: CellMap<BlobCopy>,
    /// Per registry and blob digest: the repository that got it first.
    holders: CellMap<String>,
    /// A write of a manifest or blob holds it exclusively, and a push of a
    /// manifest holds what it names shared: the registry rewrites a link on
    /// every write and reads the links of what a manifest names to verify it.
    /// Shared by every run of a pipeline (a server runs steps side by side).
    writes: Arc<KeyedLocks>,
    /// Target repositories the registry did not know when the run first
    /// copied into them: all they hold was written by this run and is in its
    /// memory, so looking there needs no request.
    fresh: Mutex<HashMap<String, Cell<bool>>>,
}

impl Default for RunState {
    fn default() -> Self {
        RunState {
            heads: CellMap::new(HEADS_CAP, usize::MAX),
            tag_lists: Mutex::default(),
            manifests: CellMap::new(MANIFESTS_CAP, MANIFESTS_BUDGET),
            pushed: CellMap::new(WRITES_CAP, usize::MAX),
            blobs: CellMap::new(WRITES_CAP, usize::MAX),
            holders: CellMap::new(HOLDERS_CAP, usize::MAX),
            writes: Arc::default(),
            fresh: Mutex::default(),
        }
    }
}

fn cell<T>(map: &Mutex<HashMap<String, Cell<T>>>, key: &str) -> Cell<T> {
    map.lock().expect("run state poisoned").entry(key.to_string()).or_default().clone()
}

/// Drops a cell whose initialisation failed, so a later caller asks again;
/// not one that replaced it meanwhile.
fn forget<T>(map: &Mutex<HashMap<String, Cell<T>>>, key: &str, failed: &Cell<T>) {
    let mut map = map.lock().expect("run state poisoned");
    if map.get(key).is_some_and(|c| Arc::ptr_eq(c, failed)) {
        map.remove(key);
    }
}

impl RunState {
    /// A run whose writes are coordinated with other runs through `writes`.
    pub fn new(writes: Arc<KeyedLocks>) -> Self {
        RunState { writes, ..RunState::default() }
    }

    /// Forgets the tag list of `repository` once its images are done: a
    /// registry step over thousands of repositories would keep them all.
    pub fn forget_repository(&self, repository: &Reference) {
        self.tag_lists.lock().expect("run state poisoned").remove(&repository.repository_key());
    }

    /// The manifest `r` names, `None` when absent. Asked once per run (an
    /// error is not remembered, so a later lookup asks again).
    pub async fn head(&self, client: &Client, r: &Reference) -> Result<Option<ManifestHead>> {
        self.head_like(client, r, None).await
    }

    /// [`RunState::head`] of a manifest expected to be `like` (the other
    /// side's): asked conditionally, which costs the registry less when it matches.
    pub async fn head_like(
        &self,
        client: &Client,
        r: &Reference,
        like: Option<&ManifestHead>,
    ) -> Result<Option<ManifestHead>> {
        let key = key(&manifest_key(r));
        if self.known_fresh(r) {
            match self.heads.get(key) {
                None => return Ok(None),
                Some(c) if c.initialized() => return Ok(c.get().cloned().flatten()),
                Some(_) => {}
            }
        }
        let c = self.heads.cell(key);
        let found = c
            .get_or_try_init(|| async {
                match client.manifest_head_unless(r, like).await {
                    Ok(h) => Ok(Some(h)),
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await;
        if found.is_err() {
            self.heads.forget_if(key, &c);
        }
        found.cloned()
    }

    /// True when `repository` (a registry target) did not exist before this
    /// run: its tag list is asked once per run, by the first image to copy into it.
    pub async fn is_fresh(&self, client: &Client, repository: &Reference) -> bool {
        if repository.scheme != Scheme::Registry {
            return false;
        }
        let c = cell(&self.fresh, &repository.repository_key());
        // Only the registry's own "repository unknown" counts: a 404 for other
        // reasons (no list permission) must not skip lookups.
        let unknown = |e: &ClientError| e.code.as_deref() == Some("NAME_UNKNOWN");
        *c.get_or_init(|| async { matches!(client.tag_list(repository).await, Err(e) if unknown(&e)) }).await
    }

    fn known_fresh(&self, r: &Reference) -> bool {
        let fresh = self.fresh.lock().expect("run state poisoned");
        fresh.get(&r.repository_key()).is_some_and(|c| c.get() == Some(&true))
    }

    /// Remembers what `r` names now (after a push, or from a GET).
    pub fn record_head(&self, r: &Reference, head: ManifestHead) {
        let c = Arc::new(OnceCell::new_with(Some(Some(head))));
        self.heads.insert(key(&manifest_key(r)), c);
    }

    /// A manifest by digest (`r` must carry one), fetched once per run.
    pub async fn manifest(&self, client: &Client, r: &Reference) -> Result<Manifest> {
        let key = key(&manifest_key(r));
        let c = self.manifests.cell(key);
        let mut ran = false;
        let m = c
            .get_or_try_init(|| {
                ran = true;
                client.manifest_get(r)
            })
            .await;
        match m {
            Ok(m) => {
                if ran {
                    self.manifests.weigh(key, m.bytes.len());
                }
                Ok(m.clone())
            }
            Err(e) => {
                self.manifests.forget_if(key, &c);
                Err(e)
            }
        }
    }

    /// The tags of `repository`, listed once per run and shared by every
    /// image of it (discovery, referrers, digest tags).
    pub async fn tag_list(&self, client: &Client, repository: &Reference) -> Result<Arc<TagList>> {
        let key = repository.repository_key();
        let c = cell(&self.tag_lists, &key);
        // A refusal settles the cell; any other failure leaves it empty, so the
        // next caller (a waiting one included) asks again.
        let list = c
            .get_or_try_init(|| async {
                match client.tag_list(repository).await {
                    Ok(tags) => Ok(Ok(Arc::new(TagList::new(tags)))),
                    Err(e) if e.is_refusal() => Ok(Err(e)),
                    Err(e) => Err(e),
                }
            })
            .await;
        if list.is_err() {
            forget(&self.tag_lists, &key, &c);
        }
        list?.clone()
    }

    /// Pushes a manifest by digest into `r`'s repository at most once per
    /// run; concurrent callers wait for the first push.
    pub async fn push_once(
        &self,
        client: &Client,
        r: &Reference,
        m: &Manifest,
        options: PutOptions,
    ) -> Result<(Pushed, bool)> {
        self.push_at_most_once(client, &r.pinned(&m.digest), m, options).await
    }

    /// Pushes a manifest under `r`'s tag, at most once per run for the same
    /// manifest (two steps may name one target tag).
    pub async fn push_tag_once(&self, client: &Client, r: &Reference, m: &Manifest) -> Result<bool> {
        self.push_at_most_once(client, r, m, PutOptions::default()).await.map(|(_, ran)| ran)
    }

    async fn push_at_most_once(
        &self,
        client: &Client,
        pinned: &Reference,
        m: &Manifest,
        options: PutOptions,
    ) -> Result<(Pushed, bool)> {
        let key = key(&format!("{}={}", manifest_key(pinned), m.digest));
        let c = self.pushed.cell(key);
        let mut ran = false;
        let pushed = c
            .get_or_try_init(|| async {
                ran = true;
                let _held = self.hold_for_push(pinned, m).await;
                client.manifest_put(pinned, m, options).await
            })
            .await;
        match pushed {
            Ok(p) => {
                if ran {
                    self.record_head(pinned, m.head());
                    self.record_head(&pinned.pinned(&m.digest), m.head());
                }
                Ok((*p, ran))
            }
            Err(e) => {
                self.pushed.forget_if(key, &c);
                Err(e)
            }
        }
    }

    /// Waits until nothing else of this run writes `m` or a manifest it names
    /// in `r`'s repository, and holds that until the guards drop.
    pub async fn hold_for_push(&self, r: &Reference, m: &Manifest) -> Vec<KeyGuard<'_>> {
        let repo = r.repository_key();
        let named: Vec<String> = m
            .links()
            .map(|d| {
                let blobs = d.config.into_iter().chain(d.layers).chain(d.blobs).filter(|b| b.urls.is_empty());
                d.manifests
                    .into_iter()
                    .filter(|c| is_manifest(&c.media_type))
                    .chain(blobs)
                    .map(|c| format!("{repo}@{}", c.digest))
                    .collect()
            })
            .unwrap_or_default();
        self.writes.lock_all(&[format!("{repo}@{}", m.digest)], &named).await
    }

    /// Holds the manifests a fallback index will name (see [`RunState::hold_for_push`]).
    pub async fn hold_named(&self, r: &Reference, named: &[Descriptor]) -> Vec<KeyGuard<'_>> {
        let repo = r.repository_key();
        let shared: Vec<String> = named.iter().map(|d| format!("{repo}@{}", d.digest)).collect();
        self.writes.lock_all(&[], &shared).await
    }

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
        let key = key(&format!("{}@{}", dst.repository_key(), desc.digest));
        let c = self.blobs.cell(key);
        let mut ran = false;
        let result = c
            .get_or_try_init(|| {
                ran = true;
                self.copy_blob_once(client, src, dst, desc)
            })
            .await;
        match result {
            Ok(how) => Ok((*how, ran)),
            Err(e) => {
                self.blobs.forget_if(key, &c);
                Err(e)
            }
        }
    }

    async fn copy_blob_once(
        &self,
        client: &Client,
        src: &Reference,
        dst: &Reference,
        desc: &Descriptor,
    ) -> Result<BlobCopy> {
        if dst.scheme != Scheme::Registry {
            return client.copy_blob(src, dst, desc, None).await;
        }
        let fresh = self.known_fresh(dst);
        let write_key = format!("{}@{}", dst.repository_key(), desc.digest);
        let copy = |from: Option<&Reference>| {
            let (from, write_key) = (from.cloned(), write_key.clone());
            async move {
                let _held = self.writes.lock(&write_key).await;
                if fresh {
                    client.copy_missing_blob(src, dst, desc, from.as_ref()).await
                } else {
                    client.copy_blob(src, dst, desc, from.as_ref()).await
                }
            }
        };
        let holder_key = key(&format!("{}@{}", dst.registry, desc.digest));
        let holder = self.holders.cell(holder_key);
        let mut how = None;
        let holding = holder
            .get_or_try_init(|| async {
                how = Some(copy(None).await?);
                Ok::<_, ClientError>(dst.repository.clone())
            })
            .await;
        let holding = match holding {
            Ok(h) => h.clone(),
            Err(e) => {
                self.holders.forget_if(holder_key, &holder);
                return Err(e);
            }
        };
        match how {
            Some(h) => Ok(h),
            // Another repository of this registry got it first: mount from there.
            None => copy(Some(&Reference { repository: holding, ..dst.clone() })).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_lists_index_the_digest_tag_family() {
        let hex = "a".repeat(64);
        let other = "b".repeat(64);
        let list = TagList::new(vec![
            "v1".into(),
            format!("sha256-{hex}"),
            format!("sha256-{hex}.sig"),
            format!("sha256-{other}.att"),
            format!("sha256-{hex}x"),
        ]);
        let d = format!("sha256:{hex}");
        assert_eq!(list.digest_tags(&d), [format!("sha256-{hex}"), format!("sha256-{hex}.sig")]);
        assert!(list.has_fallback(&d));
        assert!(!list.has_fallback(&format!("sha256:{other}")));
        assert_eq!(list.subjects().count(), 2);
    }

    #[test]
    fn manifest_keys() {
        let r = Reference::parse("reg.example:5000/app:v1").unwrap();
        assert_eq!(manifest_key(&r), "reg.example:5000/app:v1");
        let d = format!("sha256:{}", "c".repeat(64));
        assert_eq!(manifest_key(&r.with_digest(&d)), format!("reg.example:5000/app@{d}"));
        let l = Reference::parse("ocidir://dir").unwrap();
        assert_eq!(manifest_key(&l), "ocidir://dir:latest");
    }
}
