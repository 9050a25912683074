//! The `ocidir://` backend: OCI image layouts on disk (`oci-layout`,
//! `index.json`, `blobs/sha256/…`).
//!
//! Blobs are written to a temporary file, hashed as they are written, and
//! renamed into place only when the digest matches; `index.json` is replaced
//! atomically under a per-layout lock, so concurrent copies into one layout
//! are safe. A layout that was modified is garbage-collected when the last
//! writer closes it (IMG-15).
//!
//! Temporary files live in `.regsync-tmp/` at the layout's root, never among
//! the blobs, and are removed on every error path (dropping a write removes
//! its file, so a cancelled copy leaves none either). Each is locked
//! (`flock`) while written; a process killed mid-write leaves an unlocked
//! one, which the next writer of the layout sweeps away.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::blob::{BlobSource, ByteStream};
use super::error::{ClientError, ErrorKind, Result};
use super::types::*;

/// The annotation that names a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Largest `index.json` read: room for hundreds of thousands of tags, and a
/// stop for a file that is not one (a layout may come from anywhere).
pub const INDEX_LIMIT: u64 = 64 << 20;
/// Where a layout's temporary files are written (same file system as the blobs, so renames are atomic).
pub const TEMP_DIR: &str = ".regsync-tmp";
const READ_CHUNK: usize = 256 * 1024;
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

#[derive(Default)]
struct LayoutState {
    index_lock: tokio::sync::Mutex<()>,
    modified: AtomicBool,
    writers: AtomicUsize,
    /// Stale temporary files were swept (once per layout and client).
    swept: AtomicBool,
}

/// Reads and writes OCI layouts.
pub struct OciDirClient {
    layouts: Mutex<HashMap<PathBuf, Arc<LayoutState>>>,
    /// Largest manifest read (`limits.manifestBytes`).
    manifest_limit: u64,
}

impl Default for OciDirClient {
    fn default() -> Self {
        OciDirClient::new(crate::config::Limits::default().manifest_bytes)
    }
}

fn blob_path(layout: &Path, digest: &str) -> Result<PathBuf> {
    let hex = sha256_hex(digest).ok_or_else(|| {
        ClientError::new(ErrorKind::Invalid, layout.display().to_string(), format!("unsupported digest {digest}"))
    })?;
    Ok(layout.join("blobs").join("sha256").join(hex))
}

fn tag_of(entry: &Value) -> Option<&str> {
    let name = entry["annotations"][REF_NAME].as_str()?;
    Some(name.rsplit_once(':').map_or(name, |(_, t)| t))
}

fn io_err(path: &Path, e: &std::io::Error) -> ClientError {
    ClientError::io(path.display().to_string(), e)
}

impl OciDirClient {
    /// A client reading manifests of at most `manifest_limit` bytes.
    pub fn new(manifest_limit: u64) -> Self {
        OciDirClient { layouts: Mutex::new(HashMap::new()), manifest_limit }
    }

    fn state(&self, layout: &Path) -> Arc<LayoutState> {
        let mut map = self.layouts.lock().expect("layout map poisoned");
        map.entry(layout.to_path_buf()).or_default().clone()
    }

    async fn read_index(&self, layout: &Path) -> Result<Value> {
        let path = layout.join("index.json");
        let size = tokio::fs::metadata(&path).await.map_err(|e| io_err(&path, &e))?.len();
        if size > INDEX_LIMIT {
            return Err(ClientError::new(
                ErrorKind::TooLarge,
                path.display().to_string(),
                format!("index.json is larger than {INDEX_LIMIT} bytes: {size} bytes"),
            ));
        }
        let bytes = tokio::fs::read(&path).await.map_err(|e| io_err(&path, &e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::new(ErrorKind::Invalid, path.display().to_string(), e.to_string()))
    }

    fn entries(index: &Value) -> Vec<Value> {
        index["manifests"].as_array().cloned().unwrap_or_default()
    }

    /// Creates the layout skeleton when missing, and sweeps what killed
    /// writers left behind the first time this client writes there.
    async fn ensure_layout(&self, layout: &Path) -> Result<()> {
        if !self.state(layout).swept.swap(true, Ordering::SeqCst) {
            sweep_stale(layout).await;
        }
        let blobs = layout.join("blobs").join("sha256");
        tokio::fs::create_dir_all(&blobs).await.map_err(|e| io_err(&blobs, &e))?;
        let marker = layout.join("oci-layout");
        if tokio::fs::metadata(&marker).await.is_err() {
            tokio::fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#).await.map_err(|e| io_err(&marker, &e))?;
        }
        let index = layout.join("index.json");
        if tokio::fs::metadata(&index).await.is_err() {
            let empty = json!({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": []});
            write_atomic(&index, &serde_json::to_vec_pretty(&empty).unwrap_or_default()).await?;
        }
        Ok(())
    }

    /// Applies `change` to `index.json` under the layout's lock.
    async fn update_index(&self, layout: &Path, change: impl FnOnce(&mut Vec<Value>)) -> Result<()> {
        let state = self.state(layout);
        let _guard = state.index_lock.lock().await;
        self.ensure_layout(layout).await?;
        let mut index = self.read_index(layout).await?;
        let mut entries = Self::entries(&index);
        change(&mut entries);
        index["manifests"] = Value::Array(entries);
        let bytes = serde_json::to_vec_pretty(&index).unwrap_or_default();
        write_atomic(&layout.join("index.json"), &bytes).await?;
        state.modified.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// The descriptor a tag names.
    async fn resolve_tag(&self, layout: &Path, tag: &str) -> Result<Descriptor> {
        let index = self.read_index(layout).await?;
        Self::entries(&index)
            .iter()
            .rev()
            .find(|e| tag_of(e) == Some(tag))
            .and_then(|e| serde_json::from_value::<Descriptor>(e.clone()).ok())
            .ok_or_else(|| {
                ClientError::new(ErrorKind::NotFound, format!("ocidir://{}:{tag}", layout.display()), "tag not found")
            })
    }

    /// Reads a manifest by tag (default `latest`) or digest, verifying its digest.
    pub async fn manifest_get(&self, layout: &Path, tag: &str, digest: &str) -> Result<Manifest> {
        let (digest, media_type) = if digest.is_empty() {
            let d = self.resolve_tag(layout, if tag.is_empty() { "latest" } else { tag }).await?;
            (d.digest, Some(d.media_type))
        } else {
            (digest.to_string(), None)
        };
        let path = blob_path(layout, &digest)?;
        let location = path.display().to_string();
        let size = tokio::fs::metadata(&path).await.map_err(|e| io_err(&path, &e))?.len();
        if size > self.manifest_limit {
            return Err(ClientError::new(
                ErrorKind::TooLarge,
                &location,
                format!(
                    "manifest {digest} is larger than limits.manifestBytes ({} bytes): {size} bytes",
                    self.manifest_limit
                ),
            ));
        }
        let bytes = Bytes::from(tokio::fs::read(&path).await.map_err(|e| io_err(&path, &e))?);
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(ClientError::digest_mismatch(location, &digest, &actual));
        }
        let media_type = manifest_media_type(media_type.as_deref(), &bytes)
            .map_err(|why| ClientError::new(ErrorKind::Invalid, location, why))?;
        Ok(Manifest { media_type, digest, bytes, rate_limit: None })
    }

    /// Stores a manifest; a tag names it in `index.json`, and so does a top-level
    /// push by digest (`child` false). With `upkeep`, a manifest with a
    /// `subject` is added to the subject's `sha256-<hex>` fallback index, as
    /// regclient's layout writer does, so referrers stay discoverable.
    pub async fn manifest_put(
        &self,
        layout: &Path,
        tag: &str,
        manifest: &Manifest,
        child: bool,
        upkeep: bool,
    ) -> Result<()> {
        self.ensure_layout(layout).await?;
        self.write_blob_bytes(layout, &manifest.digest, &manifest.bytes).await?;
        let desc = manifest.descriptor();
        let tag = tag.to_string();
        if tag.is_empty() && child {
            self.state(layout).modified.store(true, Ordering::SeqCst);
        } else {
            self.update_index(layout, move |entries| {
                if tag.is_empty() {
                    if !entries.iter().any(|e| e["digest"] == json!(desc.digest)) {
                        entries.push(serde_json::to_value(&desc).unwrap_or(Value::Null));
                    }
                } else {
                    set_tag(entries, &tag, &desc);
                }
            })
            .await?;
        }
        if upkeep
            && manifest.links().is_ok_and(|l| l.subject.is_some())
            && let Ok(doc) = manifest.doc()
            && let Some(subject) = &doc.subject
        {
            self.fallback_update(layout, &subject.digest, &[referrer_descriptor(manifest, &doc)], None).await?;
        }
        Ok(())
    }

    /// Adds `add` to the fallback index of `subject` (or stores the source's
    /// `verbatim` index when it covers everything), under the layout's lock.
    /// Returns what was written, `None` when nothing changed.
    pub async fn fallback_update(
        &self,
        layout: &Path,
        subject: &str,
        add: &[Descriptor],
        verbatim: Option<&Manifest>,
    ) -> Result<Option<Manifest>> {
        let tag = fallback_tag(subject);
        let state = self.state(layout);
        let _guard = state.index_lock.lock().await;
        self.ensure_layout(layout).await?;
        let mut index = self.read_index(layout).await?;
        let mut entries = Self::entries(&index);
        let current = match entries.iter().rev().find(|e| tag_of(e) == Some(tag.as_str())) {
            // An index we cannot read is an error: rewriting it would lose its list.
            Some(e) => Some(self.manifest_get(layout, "", e["digest"].as_str().unwrap_or_default()).await?),
            None => None,
        };
        let updated = super::registry::referrers::choose_fallback(current.as_ref(), add, verbatim)
            .map_err(|why| ClientError::new(ErrorKind::Invalid, format!("ocidir://{}:{tag}", layout.display()), why))?;
        let Some(updated) = updated else {
            return Ok(None);
        };
        self.write_blob_bytes(layout, &updated.digest, &updated.bytes).await?;
        set_tag(&mut entries, &tag, &updated.descriptor());
        index["manifests"] = Value::Array(entries);
        write_atomic(&layout.join("index.json"), &serde_json::to_vec_pretty(&index).unwrap_or_default()).await?;
        state.modified.store(true, Ordering::SeqCst);
        Ok(Some(updated))
    }

    /// Size of a blob, or `None`.
    pub async fn blob_head(&self, layout: &Path, digest: &str) -> Result<Option<u64>> {
        let path = blob_path(layout, digest)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path, &e)),
        }
    }

    /// Streams a blob from `offset`.
    pub async fn blob_get(&self, layout: &Path, digest: &str, offset: u64) -> Result<ByteStream> {
        let path = blob_path(layout, digest)?;
        let mut file = tokio::fs::File::open(&path).await.map_err(|e| io_err(&path, &e))?;
        if offset > 0 {
            file.seek(std::io::SeekFrom::Start(offset)).await.map_err(|e| io_err(&path, &e))?;
        }
        let location = path.display().to_string();
        Ok(Box::pin(futures_util::stream::unfold(Some(file), move |file| {
            let location = location.clone();
            async move {
                let mut file = file?;
                let mut buf = bytes::BytesMut::with_capacity(READ_CHUNK);
                match file.read_buf(&mut buf).await {
                    Ok(0) => None,
                    Ok(_) => Some((Ok(buf.freeze()), Some(file))),
                    Err(e) => Some((Err(ClientError::io(location, &e)), None)),
                }
            }
        })))
    }

    /// Writes a blob from a stream: temp file, hash while writing, rename when the
    /// digest and size match. An existing blob is kept (content-addressed).
    pub async fn blob_put(&self, layout: &Path, desc: &Descriptor, mut stream: ByteStream) -> Result<u64> {
        self.ensure_layout(layout).await?;
        let final_path = blob_path(layout, &desc.digest)?;
        if tokio::fs::metadata(&final_path).await.is_ok() {
            return Ok(0);
        }
        // Dropped on every way out but the rename, which removes the file.
        let mut temp = TempFile::create(layout, &final_path).await?;
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            written += chunk.len() as u64;
            temp.file.write_all(&chunk).await.map_err(|e| io_err(&temp.path, &e))?;
        }
        let actual = format!("sha256:{}", hex(&hasher.finalize()));
        if actual != desc.digest || written != desc.size {
            return Err(ClientError::digest_mismatch(final_path.display().to_string(), &desc.digest, &actual));
        }
        temp.commit(&final_path).await?;
        self.state(layout).modified.store(true, Ordering::SeqCst);
        Ok(written)
    }

    async fn write_blob_bytes(&self, layout: &Path, digest: &str, bytes: &Bytes) -> Result<()> {
        let desc = Descriptor::new("", digest, bytes.len() as u64);
        let stream: ByteStream = Box::pin(futures_util::stream::iter([Ok(bytes.clone())]));
        self.blob_put(layout, &desc, stream).await.map(|_| ())
    }

    /// Tags per REF-8: names after the last `:`, de-duplicated and sorted.
    pub async fn tag_list(&self, layout: &Path) -> Result<Vec<String>> {
        let index = self.read_index(layout).await?;
        let tags: BTreeSet<String> = Self::entries(&index).iter().filter_map(tag_of).map(str::to_string).collect();
        Ok(tags.into_iter().collect())
    }

    /// Referrers of `digest`, read from its `sha256-<hex>` fallback tag as
    /// regclient's layout reader does (no tag: none; the layout is not scanned).
    pub async fn referrers(&self, layout: &Path, digest: &str) -> Result<Vec<Descriptor>> {
        match self.manifest_get(layout, &fallback_tag(digest), "").await {
            Ok(m) => Ok(m.doc().map(|d| d.manifests).unwrap_or_default()),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// A copy into the layout starts: garbage collection waits until it closes.
    pub fn begin(&self, layout: &Path) {
        self.state(layout).writers.fetch_add(1, Ordering::SeqCst);
    }

    /// A copy into the layout ended; the last one out collects garbage if the layout changed.
    pub async fn close(&self, layout: &Path) -> Result<()> {
        let state = self.state(layout);
        let previous =
            state.writers.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| Some(w.saturating_sub(1))).unwrap_or(0);
        if previous > 1 || !state.modified.load(Ordering::SeqCst) {
            return Ok(());
        }
        let _guard = state.index_lock.lock().await;
        // Another copy may have begun while we waited for the lock.
        if state.writers.load(Ordering::SeqCst) > 0 {
            return Ok(());
        }
        state.modified.store(false, Ordering::SeqCst);
        self.collect_garbage(layout).await
    }

    /// Deletes blobs that nothing in `index.json` reaches.
    async fn collect_garbage(&self, layout: &Path) -> Result<()> {
        let index = self.read_index(layout).await?;
        let mut keep = BTreeSet::new();
        let mut queue: Vec<Descriptor> =
            Self::entries(&index).into_iter().filter_map(|e| serde_json::from_value(e).ok()).collect();
        while let Some(d) = queue.pop() {
            if !keep.insert(d.digest.clone()) || !is_manifest(&d.media_type) {
                continue;
            }
            let doc = match self.manifest_get(layout, "", &d.digest).await {
                Ok(m) => m.links().map_err(|e| ClientError::new(ErrorKind::Invalid, &d.digest, e.to_string())),
                Err(e) if e.is_not_found() => continue,
                Err(e) => Err(e),
            };
            match doc {
                Ok(doc) => {
                    queue.extend(doc.manifests);
                    queue.extend(doc.config);
                    queue.extend(doc.layers);
                    queue.extend(doc.blobs);
                }
                // What it names is unknown, so nothing can be called unreferenced.
                Err(e) => {
                    tracing::warn!(layout = %layout.display(), manifest = d.digest, error = %e, "Not removing unreferenced blobs: a manifest cannot be read");
                    return Ok(());
                }
            }
        }
        let dir = layout.join("blobs").join("sha256");
        let mut entries = tokio::fs::read_dir(&dir).await.map_err(|e| io_err(&dir, &e))?;
        while let Some(entry) = entries.next_entry().await.map_err(|e| io_err(&dir, &e))? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || keep.contains(&format!("sha256:{name}")) {
                continue;
            }
            tracing::debug!(layout = %layout.display(), blob = name, "Removing unreferenced blob");
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
        // Only when empty: another process may be writing there.
        let _ = tokio::fs::remove_dir(layout.join(TEMP_DIR)).await;
        Ok(())
    }
}

/// Points `tag` at `desc`: the first entry with that name is replaced in
/// place and later ones dropped, else a new entry goes at the end (regclient's order).
fn set_tag(entries: &mut Vec<Value>, tag: &str, desc: &Descriptor) {
    let mut entry = serde_json::to_value(desc).unwrap_or(Value::Null);
    entry["annotations"] = json!({ REF_NAME: tag });
    match entries.iter().position(|e| tag_of(e) == Some(tag)) {
        Some(i) => {
            entries[i] = entry;
            let mut n = 0;
            entries.retain(|e| {
                n += 1;
                n - 1 <= i || tag_of(e) != Some(tag)
            });
        }
        None => entries.push(entry),
    }
}

/// A file being written in a layout's [`TEMP_DIR`], locked while open and
/// removed when dropped unless [`TempFile::commit`] renamed it into place.
struct TempFile {
    path: PathBuf,
    file: tokio::fs::File,
    committed: bool,
}

impl TempFile {
    /// A new locked file in `layout`'s temporary directory, named after `final_path`.
    ///
    /// Created and locked synchronously (two quick local syscalls): through
    /// the blocking pool, a copy cancelled while waiting would leave the
    /// file created after its guard was gone.
    async fn create(layout: &Path, final_path: &Path) -> Result<TempFile> {
        let dir = layout.join(TEMP_DIR);
        tokio::fs::create_dir_all(&dir).await.map_err(|e| io_err(&dir, &e))?;
        let n = TEMP_COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = final_path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let path = dir.join(format!("{}-{n}-{name}", std::process::id()));
        let file = match std::fs::File::create(&path) {
            // The last writer of another process removed the empty directory just now.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, &e))?;
                std::fs::File::create(&path)
            }
            other => other,
        }
        .map_err(|e| io_err(&path, &e))?;
        let temp = TempFile { path, file: tokio::fs::File::from_std(file), committed: false };
        // Held until the file is closed: a sweeper that can take it knows the writer is gone.
        rustix::fs::flock(&temp.file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| io_err(&temp.path, &e.into()))?;
        Ok(temp)
    }

    /// Flushes the file to disk and renames it to `target`.
    async fn commit(mut self, target: &Path) -> Result<()> {
        self.file.flush().await.map_err(|e| io_err(&self.path, &e))?;
        self.file.sync_all().await.map_err(|e| io_err(&self.path, &e))?;
        tokio::fs::rename(&self.path, target).await.map_err(|e| io_err(target, &e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes temporary files nobody holds: those in [`TEMP_DIR`] whose lock can
/// be taken, and the `.tmp-*` files older versions wrote among the blobs and
/// beside `index.json`. Best effort: a file that cannot be read is left.
async fn sweep_stale(layout: &Path) {
    let layout = layout.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || {
        let dir = layout.join(TEMP_DIR);
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(file) = std::fs::File::open(entry.path()) else { continue };
            if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok() {
                tracing::debug!(file = %entry.path().display(), "Removing a temporary file a stopped copy left");
                let _ = std::fs::remove_file(entry.path());
            }
        }
        for old in [layout.join("blobs").join("sha256"), layout.clone()] {
            for entry in std::fs::read_dir(&old).into_iter().flatten().flatten() {
                if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                    tracing::debug!(file = %entry.path().display(), "Removing a temporary file a stopped copy left");
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    })
    .await;
}

async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let layout = path.parent().unwrap_or(Path::new("."));
    let mut temp = TempFile::create(layout, path).await?;
    temp.file.write_all(bytes).await.map_err(|e| io_err(&temp.path, &e))?;
    temp.commit(path).await
}

/// A blob in a layout as a [`BlobSource`].
pub struct OciDirBlobSource {
    /// The client.
    pub client: Arc<OciDirClient>,
    /// Layout directory.
    pub layout: PathBuf,
    /// Blob digest.
    pub digest: String,
}

impl BlobSource for OciDirBlobSource {
    fn open(&self, offset: u64) -> BoxFuture<'_, Result<ByteStream>> {
        Box::pin(self.client.blob_get(&self.layout, &self.digest, offset))
    }

    fn location(&self) -> String {
        format!("ocidir://{}@{}", self.layout.display(), self.digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(layout: &Path) -> Vec<String> {
        let temp = std::fs::read_dir(layout.join(TEMP_DIR)).into_iter().flatten().flatten();
        let blobs = std::fs::read_dir(layout.join("blobs/sha256")).into_iter().flatten().flatten();
        temp.chain(blobs).map(|e| e.file_name().to_string_lossy().into_owned()).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_cancelled_at_any_point_leave_no_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path();
        let client = OciDirClient::default();
        client.ensure_layout(layout).await.unwrap();
        // A body that gives one chunk and then never ends: every write is cut off.
        for i in 0..300u64 {
            let chunk = Bytes::from(vec![i as u8; 4096]);
            let desc = Descriptor::new("x", &sha256_digest(&chunk), 8192);
            let body: ByteStream =
                Box::pin(futures_util::stream::iter([Ok(chunk)]).chain(futures_util::stream::pending()));
            let write = client.blob_put(layout, &desc, body);
            let _ = tokio::time::timeout(std::time::Duration::from_micros(i * 7 % 400), write).await;
        }
        // Whatever the blocking pool was still doing has finished.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(leftovers(layout), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_wrong_body_leaves_no_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let client = OciDirClient::default();
        let good = Bytes::from_static(b"the real blob");
        let desc = Descriptor::new("x", &sha256_digest(&good), good.len() as u64);
        let body: ByteStream = Box::pin(futures_util::stream::iter([Ok(Bytes::from_static(b"not the real blob"))]));
        let e = client.blob_put(dir.path(), &desc, body).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::DigestMismatch);
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    }
}
