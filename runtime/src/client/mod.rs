//! The I/O layer the sync engine drives: one [`Client`] over two backends,
//! registries (`registry/`) and OCI layouts (`ocidir.rs`), chosen by the
//! reference's scheme, so callers never branch on where images live.
//!
//! Manifests travel as exact bytes with their digest verified; blobs stream
//! from source to target through one chunk at a time ([`blob`]).

pub(crate) mod blob;
pub(crate) mod error;
pub(crate) mod locks;
pub(crate) mod ocidir;
pub mod registry;
pub mod stats;
pub(crate) mod types;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use self::blob::{BlobData, BlobSource, ByteStream};
pub use self::blob::{BlobProgress, TransferWatch};
pub use self::error::{ClientError, ErrorKind, Result};
use self::ocidir::{OciDirBlobSource, OciDirClient};
pub use self::registry::Pushed;
pub use self::registry::body::LARGE_BODY;
use self::registry::{Mount, RegistryBlobSource, RegistryClient, RegistryOptions};
pub use self::types::*;
use crate::config::{Config, Host};
use crate::reference::{Reference, Scheme};

/// How a blob got to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobCopy {
    /// It was already there.
    Existed,
    /// The registry linked it from another repository.
    Mounted,
    /// Its bytes were sent.
    Copied,
}

/// When a pushed manifest with a `subject` gets its fallback index updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Upkeep {
    /// Right after the push (what any client must do on a registry without
    /// the referrers API, and in a layout).
    #[default]
    Now,
    /// The caller updates the fallback index itself, once for several
    /// referrers of one subject (see [`Client::fallback_update`]).
    Caller,
}

/// How a manifest is pushed.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutOptions {
    /// Part of an index or a referrer: a layout does not list it in `index.json`.
    pub child: bool,
    /// Fallback-index upkeep for a manifest with a `subject`.
    pub upkeep: Upkeep,
}

/// Registry and OCI-layout access behind one interface.
#[derive(Clone)]
pub struct Client {
    registry: Arc<RegistryClient>,
    ocidir: Arc<OciDirClient>,
    verify_registry_blobs: bool,
    transfers: Option<Arc<dyn TransferWatch>>,
}

impl Client {
    /// A client for a loaded config: hosts merged from Docker Hub defaults, the
    /// Docker config (unless `skipDockerConfig`) and `creds` (HOST-6), with the
    /// global `defaults` applied (CLIENT-1).
    pub async fn from_config(config: &Config, user_agent: String) -> Self {
        let d = &config.defaults;
        let hosts = registry::hosts::merged_hosts(&config.creds, d.skip_docker_config).await;
        let options = RegistryOptions {
            user_agent: if d.user_agent.is_empty() { user_agent } else { d.user_agent.clone() },
            docker_certs: !d.skip_docker_config,
            blob_limit: if d.blob_limit > 0 { d.blob_limit as u64 } else { 1 << 30 },
            cache: (d.cache_count > 0 && d.cache_time.as_nanos() > 0)
                .then(|| (d.cache_count as usize, d.cache_time.to_std())),
            limits: d.limits,
            ..RegistryOptions::default()
        };
        Client::new(hosts, options)
    }

    /// A client from explicit host settings.
    pub fn new(hosts: BTreeMap<String, Host>, options: RegistryOptions) -> Self {
        Client {
            ocidir: Arc::new(OciDirClient::new(options.limits.manifest_bytes)),
            registry: Arc::new(RegistryClient::new(hosts, options)),
            verify_registry_blobs: true,
            transfers: None,
        }
    }

    /// Whether blobs copied into a registry are hashed on the way (the
    /// registry checks them on commit anyway).
    pub fn with_registry_blob_verification(mut self, on: bool) -> Self {
        self.verify_registry_blobs = on;
        self
    }

    fn path(r: &Reference) -> &Path {
        Path::new(&r.path)
    }

    /// The manifest's media type and digest, without its body where possible.
    pub async fn manifest_head(&self, r: &Reference) -> Result<ManifestHead> {
        match r.scheme {
            Scheme::Registry => self.registry.manifest_head(r).await,
            Scheme::OciDir => self.ocidir.manifest_get(Self::path(r), &r.tag, &r.digest).await.map(|m| m.head()),
        }
    }

    /// [`Client::manifest_head`] of a manifest expected to be `like` (seen on
    /// the other side): cheaper for a registry that still has it.
    pub async fn manifest_head_unless(&self, r: &Reference, like: Option<&ManifestHead>) -> Result<ManifestHead> {
        match r.scheme {
            Scheme::Registry => self.registry.manifest_head_unless(r, like).await,
            Scheme::OciDir => self.manifest_head(r).await,
        }
    }

    /// The manifest bytes, digest verified.
    pub async fn manifest_get(&self, r: &Reference) -> Result<Manifest> {
        match r.scheme {
            Scheme::Registry => self.registry.manifest_get(r).await,
            Scheme::OciDir => self.ocidir.manifest_get(Self::path(r), &r.tag, &r.digest).await,
        }
    }

    /// Stores a manifest: by tag when `r` names a tag and no digest, else by
    /// digest. A layout reference with neither gets `latest` (REF-5).
    pub async fn manifest_put(&self, r: &Reference, m: &Manifest, options: PutOptions) -> Result<Pushed> {
        let by_digest = !r.digest.is_empty();
        let upkeep = options.upkeep == Upkeep::Now;
        match r.scheme {
            Scheme::Registry => self.registry.manifest_put(r, m, by_digest, upkeep).await,
            Scheme::OciDir => {
                let tag = match (by_digest, r.tag.as_str()) {
                    (true, _) => "",
                    (false, "") => "latest",
                    (false, t) => t,
                };
                self.ocidir.manifest_put(Self::path(r), tag, m, options.child, upkeep).await?;
                Ok(Pushed::default())
            }
        }
    }

    /// Adds `add` to the `sha256-<hex>` fallback index of `subject` in `r`'s
    /// repository (or layout), or stores `verbatim`, the source's own index,
    /// when it lists everything the result must. Returns what was written.
    pub async fn fallback_update(
        &self,
        r: &Reference,
        subject: &str,
        add: &[Descriptor],
        verbatim: Option<&Manifest>,
    ) -> Result<Option<Manifest>> {
        match r.scheme {
            Scheme::Registry => self.registry.fallback_update(r, subject, add, verbatim).await,
            Scheme::OciDir => self.ocidir.fallback_update(Self::path(r), subject, add, verbatim).await,
        }
    }

    /// Referrers of `r.digest` through the referrers API; `None` where there
    /// is none (layouts, registries without it).
    pub async fn referrers_api(&self, r: &Reference) -> Result<Option<Vec<Descriptor>>> {
        match r.scheme {
            Scheme::Registry => self.registry.referrers_api(r).await,
            Scheme::OciDir => Ok(None),
        }
    }

    /// Whether `r`'s repository is known to have the referrers API (`Some(false)` for layouts).
    pub fn referrers_api_known(&self, r: &Reference) -> Option<bool> {
        match r.scheme {
            Scheme::Registry => self.registry.referrers_api_known(r),
            Scheme::OciDir => Some(false),
        }
    }

    /// Size of a blob in the repository (or layout), `None` when absent.
    pub async fn blob_head(&self, r: &Reference, digest: &str) -> Result<Option<u64>> {
        match r.scheme {
            Scheme::Registry => self.registry.blob_head(r, digest).await,
            Scheme::OciDir => self.ocidir.blob_head(Self::path(r), digest).await,
        }
    }

    /// A blob's bytes as a stream.
    pub async fn blob_get(&self, r: &Reference, digest: &str) -> Result<ByteStream> {
        match r.scheme {
            Scheme::Registry => self.registry.blob_get(r, digest, 0).await,
            Scheme::OciDir => self.ocidir.blob_get(Self::path(r), digest, 0).await,
        }
    }

    fn source(&self, r: &Reference, digest: &str) -> Arc<dyn BlobSource> {
        match r.scheme {
            Scheme::Registry => Arc::new(RegistryBlobSource {
                client: self.registry.clone(),
                reference: r.clone(),
                digest: digest.to_string(),
            }),
            Scheme::OciDir => Arc::new(OciDirBlobSource {
                client: self.ocidir.clone(),
                layout: r.path.clone().into(),
                digest: digest.to_string(),
            }),
        }
    }

    /// Copies one blob from `src`'s repository to `dst`'s: nothing when the
    /// target has it (HEAD first: a mount or upload of a blob the repository
    /// has would rewrite its link, which distribution 2.8 does in place), else
    /// a cross-repository mount when `mount_from` (or the source) is another
    /// repository of the target registry, else a streamed copy.
    pub async fn copy_blob(
        &self,
        src: &Reference,
        dst: &Reference,
        desc: &Descriptor,
        mount_from: Option<&Reference>,
    ) -> Result<BlobCopy> {
        if self.blob_head(dst, &desc.digest).await?.is_some() {
            return Ok(BlobCopy::Existed);
        }
        self.copy_missing_blob(src, dst, desc, mount_from).await
    }

    /// [`Client::copy_blob`] for a blob the caller knows `dst` lacks (no HEAD).
    pub async fn copy_missing_blob(
        &self,
        src: &Reference,
        dst: &Reference,
        desc: &Descriptor,
        mount_from: Option<&Reference>,
    ) -> Result<BlobCopy> {
        let same_registry = |r: &Reference| {
            r.scheme == Scheme::Registry
                && dst.scheme == Scheme::Registry
                && r.registry == dst.registry
                && r.repository != dst.repository
        };
        let mut session = None;
        let mount = mount_from.filter(|r| same_registry(r)).or_else(|| same_registry(src).then_some(src));
        if let Some(from) = mount {
            match self.registry.blob_mount(dst, &from.repository, &desc.digest).await? {
                Mount::Mounted => return Ok(BlobCopy::Mounted),
                Mount::Refused(s) => session = Some(s),
            }
        }
        let data = BlobData {
            source: self.source(src, &desc.digest),
            desc: desc.clone(),
            verify: dst.scheme == Scheme::Registry && self.verify_registry_blobs,
            progress: self.transfers.as_ref().map(|w| w.blob_started(desc)),
        };
        self.store_blob(dst, &data, session).await?;
        Ok(BlobCopy::Copied)
    }

    /// Writes a blob's bytes into `dst`: an upload (in `session` if one is
    /// open), or a file in the layout.
    async fn store_blob(
        &self,
        dst: &Reference,
        data: &BlobData,
        session: Option<registry::upload::Session>,
    ) -> Result<()> {
        match dst.scheme {
            Scheme::Registry => self.registry.blob_put(dst, data, session).await,
            Scheme::OciDir => self.ocidir.blob_put(Self::path(dst), &data.desc, data.stream()).await.map(|_| ()),
        }
    }

    /// Stores `bytes` (described by `desc`) in `dst`'s repository unless it has them.
    pub async fn blob_put_bytes(&self, dst: &Reference, desc: &Descriptor, bytes: bytes::Bytes) -> Result<()> {
        if self.blob_head(dst, &desc.digest).await?.is_some() {
            return Ok(());
        }
        let data = BlobData {
            source: Arc::new(self::blob::MemoryBlobSource(bytes)),
            desc: desc.clone(),
            verify: true,
            progress: None,
        };
        self.store_blob(dst, &data, None).await
    }

    /// Tells `watch` about every blob whose bytes this client sends.
    pub fn watch_transfers(&mut self, watch: Arc<dyn TransferWatch>) {
        self.transfers = Some(watch);
    }

    /// Tags of a repository (sorted for layouts, REF-8).
    pub async fn tag_list(&self, r: &Reference) -> Result<Vec<String>> {
        match r.scheme {
            Scheme::Registry => self.registry.tag_list(r).await,
            Scheme::OciDir => self.ocidir.tag_list(Self::path(r)).await,
        }
    }

    /// Repositories of a registry.
    pub async fn catalog(&self, registry: &str) -> Result<Vec<String>> {
        self.registry.catalog(registry).await
    }

    /// Referrers of `r.digest`: the referrers API where there is one, else
    /// the `sha256-<hex>` fallback tag.
    pub async fn referrers(&self, r: &Reference) -> Result<Vec<Descriptor>> {
        match r.scheme {
            Scheme::Registry => self.registry.referrers(r).await,
            Scheme::OciDir => self.ocidir.referrers(Self::path(r), &r.digest).await,
        }
    }

    /// A copy into `r` starts (an OCI layout postpones garbage collection).
    pub fn begin(&self, r: &Reference) {
        if r.scheme == Scheme::OciDir {
            self.ocidir.begin(Self::path(r));
        }
    }

    /// A copy into `r` ended; a modified layout is garbage-collected by the last writer (IMG-15).
    pub async fn close(&self, r: &Reference) -> Result<()> {
        match r.scheme {
            Scheme::Registry => Ok(()),
            Scheme::OciDir => self.ocidir.close(Self::path(r)).await,
        }
    }

    /// The registry backend, for settings lookups.
    pub fn registry(&self) -> &RegistryClient {
        &self.registry
    }
}
