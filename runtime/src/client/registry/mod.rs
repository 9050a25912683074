//! The distribution-API backend: manifests, blobs, tags, catalog and
//! referrers over HTTP, with mirrors for reads (HTTP-2), `pathPrefix`,
//! per-host transport rules and auth.

pub mod auth;
pub(crate) mod body;
mod cache;
pub(crate) mod helper;
pub mod hosts;
pub mod listing;
pub mod referrers;
pub(crate) mod tls;
pub(crate) mod transport;
pub(crate) mod upload;
pub mod urls;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use reqwest::Method;

use self::auth::Scope;
use self::cache::ManifestCache;
use self::transport::{Body, Request, Response, RetryPolicy, Transport, strip_query};
use super::blob::{BlobData, BlobSource, ByteStream};
use super::error::{ClientError, ErrorKind, Result};
use super::locks::KeyedLocks;
use super::types::*;
use crate::config::{Host, Limits};
use crate::reference::Reference;

/// Settings of the registry backend.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `User-Agent` (CLIENT-5).
    pub user_agent: String,
    /// Read `/etc/docker/certs.d` (off with `skipDockerConfig`).
    pub docker_certs: bool,
    /// Backoff timing.
    pub retry: RetryPolicy,
    /// Ask for pages of this many tags or repositories (`n=`); `None` lets the registry choose.
    pub page_size: Option<usize>,
    /// Largest chunk accepted when a registry asks for bigger ones (HTTP-12).
    pub blob_limit: u64,
    /// Manifest cache entries and lifetime, when both are set (HTTP-10).
    pub cache: Option<(usize, Duration)>,
    /// Sizes read and waits (`defaults.limits`).
    pub limits: Limits,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            user_agent: "regsync".into(),
            docker_certs: true,
            retry: RetryPolicy::default(),
            page_size: None,
            blob_limit: 1 << 30,
            cache: None,
            limits: Limits::default(),
        }
    }
}

/// Talks to registries.
pub struct RegistryClient {
    hosts: BTreeMap<String, Host>,
    transports: Mutex<HashMap<String, Arc<Transport>>>,
    options: RegistryOptions,
    cache: Option<ManifestCache>,
    api: referrers::ApiSupport,
    /// Writes of one tag that must not interleave (fallback index upkeep).
    tag_locks: KeyedLocks,
    /// One referrers-API probe per registry at a time.
    api_probes: KeyedLocks,
    /// Large bodies read at once, over every host.
    gate: body::ReadGate,
}

/// What a manifest push learnt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pushed {
    /// The registry answered `OCI-Subject`: it has the referrers API and
    /// indexed the subject itself, so no fallback index is needed.
    pub subject_acknowledged: bool,
}

/// The largest `n=` asked for in tag and catalog listings.
pub const MAX_PAGE_SIZE: usize = 1000;

/// How many times a manifest push answered `DIGEST_INVALID` is retried once
/// everything it names is confirmed present.
const DIGEST_INVALID_RETRIES: usize = 3;

/// Whether a mount happened.
pub enum Mount {
    /// The registry linked the blob.
    Mounted,
    /// Refused; the session it opened is ready for an upload.
    Refused(upload::Session),
}

fn manifest_ref(r: &Reference) -> &str {
    if !r.digest.is_empty() {
        &r.digest
    } else if !r.tag.is_empty() {
        &r.tag
    } else {
        "latest"
    }
}

fn content_type(resp: &Response) -> Option<String> {
    resp.header("content-type").map(|v| v.split(';').next().unwrap_or("").trim().to_string()).filter(|v| !v.is_empty())
}

fn rate_limit(resp: &Response) -> Option<RateLimitInfo> {
    RateLimitInfo::parse(
        resp.header("ratelimit-limit").as_deref(),
        resp.header("ratelimit-remaining").as_deref(),
        resp.header("ratelimit-reset").as_deref(),
    )
}

/// The `rel="next"` target of a response's `Link` header.
pub(crate) fn next_link(resp: &Response) -> Option<String> {
    urls::next_link(&resp.header("link")?)
}

impl RegistryClient {
    /// A client for the given host settings (already merged, see [`hosts::merged_hosts`]).
    pub fn new(hosts: BTreeMap<String, Host>, options: RegistryOptions) -> Self {
        let cache = options.cache.map(|(count, ttl)| ManifestCache::new(count, ttl));
        RegistryClient {
            hosts,
            transports: Mutex::new(HashMap::new()),
            options,
            cache,
            api: referrers::ApiSupport::default(),
            tag_locks: KeyedLocks::default(),
            api_probes: KeyedLocks::default(),
            gate: body::ReadGate::default(),
        }
    }

    /// The `n=` asked for: never above what every registry takes (ECR
    /// refuses more than 1000).
    fn page_size(&self) -> Option<usize> {
        self.options.page_size.map(|n| n.clamp(1, MAX_PAGE_SIZE))
    }

    /// The settings used for a registry name.
    pub fn host_config(&self, name: &str) -> Host {
        self.hosts.get(name).cloned().unwrap_or_else(|| hosts::default_host(name))
    }

    fn transport(&self, name: &str) -> Result<Arc<Transport>> {
        let mut map = self.transports.lock().expect("transport map poisoned");
        if let Some(t) = map.get(name) {
            return Ok(t.clone());
        }
        let t = Arc::new(Transport::new(
            self.host_config(name),
            &self.options.user_agent,
            self.options.docker_certs,
            self.options.retry,
            self.options.limits.idle_timeout.to_std(),
            self.gate.clone(),
        )?);
        map.insert(name.to_string(), t.clone());
        Ok(t)
    }

    /// Hosts to read from: mirrors and the registry, highest priority first,
    /// mirrors before the registry at equal priority (HTTP-2, docs/decisions.md).
    fn read_order(&self, registry: &str) -> Result<Vec<(Arc<Transport>, Option<String>)>> {
        let upstream = self.transport(registry)?;
        let mut list: Vec<(u64, bool, Arc<Transport>, Option<String>)> = Vec::new();
        for m in &upstream.host.mirrors {
            let t = self.transport(m)?;
            let ns = (t.host.hostname != upstream.host.hostname).then(|| registry.to_string());
            list.push((t.host.priority, true, t, ns));
        }
        list.push((upstream.host.priority, false, upstream, None));
        list.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        Ok(list.into_iter().map(|(_, _, t, ns)| (t, ns)).collect())
    }

    /// `https://host/v2/<pathPrefix>/<repo>/<path>`, plus `ns=` for mirrors.
    fn url(t: &Transport, repo: &str, path: &str, ns: Option<&str>) -> String {
        let url = format!("{}/v2/{}/{path}", t.base_url, Self::repo_path(t, repo));
        match ns {
            // The URL was built from parts that parse; keep it if adding the query cannot.
            Some(ns) => urls::with_query(&url, &[("ns", ns)]).unwrap_or(url),
            None => url,
        }
    }

    fn repo_path(t: &Transport, repo: &str) -> String {
        if t.host.path_prefix.is_empty() { repo.to_string() } else { format!("{}/{repo}", t.host.path_prefix) }
    }

    fn scope(t: &Transport, repo: &str, push: bool) -> Scope {
        Scope::Repository { name: Self::repo_path(t, repo), push }
    }

    /// Asks one host (of the mirrors and the registry) for a manifest; an
    /// answer other than 200 becomes the error. Returns the response and its URL.
    async fn ask_manifest(
        t: &Transport,
        ns: Option<&str>,
        r: &Reference,
        method: Method,
        unless: Option<&str>,
    ) -> Result<(Response, String)> {
        let url = Self::url(t, &r.repository, &format!("manifests/{}", manifest_ref(r)), ns);
        let mut req =
            Request::new(method, url.clone(), Self::scope(t, &r.repository, false)).header("accept", ACCEPT_MANIFESTS);
        if let Some(digest) = unless {
            req = req.header("if-none-match", format!("\"{digest}\""));
        }
        let resp = t.send(req).await?;
        let unchanged = unless.is_some() && resp.status() == 304;
        if resp.status() != 200 && !unchanged {
            return Err(Transport::error(resp, &url).await);
        }
        Ok((resp, url))
    }

    /// HEADs a manifest (GET when the host disables HEAD or omits the digest, IMG-1).
    pub async fn manifest_head(&self, r: &Reference) -> Result<ManifestHead> {
        self.manifest_head_unless(r, None).await
    }

    /// HEADs a manifest expected to be `like` (the same manifest seen
    /// elsewhere): asked with `If-None-Match`, a registry that still has it
    /// answers 304 without reading it, which costs it less than a HEAD.
    pub async fn manifest_head_unless(&self, r: &Reference, like: Option<&ManifestHead>) -> Result<ManifestHead> {
        let key = format!("{}@{}", r.repository_key(), r.digest);
        if !r.digest.is_empty()
            && let Some(c) = &self.cache
            && let Some(head) = c.head(&key)
        {
            return Ok(head);
        }
        let mut last = None;
        for (t, ns) in self.read_order(&r.registry)? {
            if t.head_disabled() {
                return self.manifest_get(r).await.map(|m| m.head());
            }
            let unless = like.map(|l| l.digest.as_str());
            let resp = match Self::ask_manifest(&t, ns.as_deref(), r, Method::HEAD, unless).await {
                Ok((resp, _)) => resp,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            if resp.status() == 304
                && let Some(like) = like
            {
                return Ok(ManifestHead { rate_limit: rate_limit(&resp), ..like.clone() });
            }
            let digest = resp.header("docker-content-digest").filter(|d| sha256_hex(d).is_some());
            // A HEAD without a digest, or served as something that is not a
            // manifest (an HTML page), says too little: the GET reads the body and
            // checks it is a manifest at all. One without a type is taken as OCI.
            let media_type = match content_type(&resp) {
                None => Some(MT_OCI_MANIFEST.to_string()),
                Some(m) => Some(m).filter(|m| is_manifest(m)),
            };
            let (Some(digest), Some(media_type)) = (digest, media_type) else {
                drop(resp);
                return self.manifest_get(r).await.map(|m| m.head());
            };
            let head = ManifestHead {
                media_type,
                size: resp.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0),
                rate_limit: rate_limit(&resp),
                digest,
            };
            if !r.digest.is_empty()
                && let Some(c) = &self.cache
            {
                c.put_head(key, head.clone());
            }
            return Ok(head);
        }
        Err(last.unwrap_or_else(|| ClientError::new(ErrorKind::NotFound, r.common_name(), "no host to ask")))
    }

    /// GETs a manifest and checks its bytes against the digest asked for or announced.
    pub async fn manifest_get(&self, r: &Reference) -> Result<Manifest> {
        let key = format!("{}@{}", r.repository_key(), r.digest);
        if !r.digest.is_empty()
            && let Some(c) = &self.cache
            && let Some(m) = c.manifest(&key)
        {
            return Ok(m);
        }
        let mut last = None;
        for (t, ns) in self.read_order(&r.registry)? {
            let (resp, url) = match Self::ask_manifest(&t, ns.as_deref(), r, Method::GET, None).await {
                Ok(answer) => answer,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let announced = resp.header("docker-content-digest").filter(|d| sha256_hex(d).is_some());
            let served = content_type(&resp);
            let limits = rate_limit(&resp);
            let location = strip_query(&url);
            let cap = self.options.limits.manifest_bytes as usize;
            let what = || format!("manifest {}", r.common_name());
            // A large manifest keeps its turn at the read gate until it is checked (parsed).
            let (bytes, turn) = resp.read_gated(cap, &location, what, "limits.manifestBytes").await?;
            let digest = sha256_digest(&bytes);
            let expected = if r.digest.is_empty() { announced } else { Some(r.digest.clone()) };
            if let Some(expected) = expected
                && expected != digest
            {
                return Err(ClientError::digest_mismatch(location, &expected, &digest));
            }
            let media_type = manifest_media_type(served.as_deref(), &bytes)
                .map_err(|why| ClientError::new(ErrorKind::Invalid, &location, why))?;
            drop(turn);
            // Kept under its digest even when asked by tag: a signature read by
            // its tag to verify an image is then not fetched again to copy it.
            let key = if r.digest.is_empty() { format!("{}@{digest}", r.repository_key()) } else { key };
            let m = Manifest { media_type, digest, bytes, rate_limit: limits };
            if let Some(c) = &self.cache {
                c.put_manifest(key, m.clone());
            }
            return Ok(m);
        }
        Err(last.unwrap_or_else(|| ClientError::new(ErrorKind::NotFound, r.common_name(), "no host to ask")))
    }

    /// PUTs a manifest by tag (or by digest when `r` has no tag or `by_digest`).
    /// With `upkeep`, a manifest with a `subject` on a registry that does not
    /// answer `OCI-Subject` also gets its `sha256-<hex>` fallback index
    /// updated (COPY-7, COPY-10). Writes of one fallback tag never interleave.
    pub async fn manifest_put(&self, r: &Reference, m: &Manifest, by_digest: bool, upkeep: bool) -> Result<Pushed> {
        let tagged = !(by_digest || r.tag.is_empty());
        let pushed = if tagged && is_fallback_tag(&r.tag) {
            let _guard = self.tag_locks.lock(&Self::tag_key(r)).await;
            self.put_unlocked(r, m, by_digest).await?
        } else {
            self.put_unlocked(r, m, by_digest).await?
        };
        if pushed.subject_acknowledged {
            self.note_subject_acknowledged(r);
        } else if upkeep
            && m.links().is_ok_and(|l| l.subject.is_some())
            && let Ok(doc) = m.doc()
            && let Some(subject) = &doc.subject
        {
            self.fallback_update(r, &subject.digest, &[referrer_descriptor(m, &doc)], None).await?;
        }
        Ok(pushed)
    }

    /// One manifest PUT. Distribution 2.8 rewrites link files in place, so a
    /// concurrent write of something this manifest names can make its
    /// verification read an empty link and answer `DIGEST_INVALID`; once every
    /// blob and child it names is confirmed present, the push is tried again.
    async fn put_unlocked(&self, r: &Reference, m: &Manifest, by_digest: bool) -> Result<Pushed> {
        let t = self.transport(&r.registry)?;
        let reference = if by_digest || r.tag.is_empty() { m.digest.clone() } else { r.tag.clone() };
        let url = Self::url(&t, &r.repository, &format!("manifests/{reference}"), None);
        let mut attempt = 0;
        loop {
            let req = Request::new(Method::PUT, url.clone(), Self::scope(&t, &r.repository, true))
                .header("content-type", m.media_type.clone())
                .body(Body::Bytes(m.bytes.clone()));
            let resp = t.send(req).await?;
            let status = resp.status();
            if matches!(status, 200 | 202 | 204) {
                tracing::debug!(url = strip_query(&url), status, "Manifest taken with an unusual status");
            } else if status != 201 {
                let e = Transport::error(resp, &url).await;
                if e.code.as_deref() == Some("DIGEST_INVALID") && attempt < DIGEST_INVALID_RETRIES {
                    attempt += 1;
                    self.confirm_named_content(r, m).await?;
                    tracing::debug!(
                        url = strip_query(&url),
                        attempt,
                        "Manifest verification raced a write, pushing again"
                    );
                    tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
                    continue;
                }
                return Err(e);
            }
            let stored = resp.header("docker-content-digest");
            let subject_acknowledged = resp.header("oci-subject").is_some();
            if let Some(d) = stored
                && sha256_hex(&d).is_some()
                && d != m.digest
            {
                return Err(ClientError::digest_mismatch(strip_query(&url), &m.digest, &d));
            }
            return Ok(Pushed { subject_acknowledged });
        }
    }

    /// Checks that every blob and child manifest `m` names is in the
    /// repository; a missing one is an error (no point pushing again).
    async fn confirm_named_content(&self, r: &Reference, m: &Manifest) -> Result<()> {
        let doc = m.links().map_err(|e| ClientError::new(ErrorKind::Invalid, r.common_name(), e.to_string()))?;
        for child in &doc.manifests {
            if is_manifest(&child.media_type) {
                self.manifest_head(&r.with_digest(&child.digest)).await?;
            }
        }
        for blob in doc.config.iter().chain(&doc.layers).chain(&doc.blobs).filter(|b| b.urls.is_empty()) {
            if self.blob_head(r, &blob.digest).await?.is_none() {
                return Err(ClientError::new(
                    ErrorKind::NotFound,
                    r.common_name(),
                    format!("blob {} named by the manifest is missing", blob.digest),
                ));
            }
        }
        Ok(())
    }

    /// Size of a blob in the repository, or `None` when absent.
    pub async fn blob_head(&self, r: &Reference, digest: &str) -> Result<Option<u64>> {
        let t = self.transport(&r.registry)?;
        let url = Self::url(&t, &r.repository, &format!("blobs/{digest}"), None);
        let resp = t.send(Request::new(Method::HEAD, url.clone(), Self::scope(&t, &r.repository, false))).await?;
        match resp.status() {
            200 => Ok(Some(resp.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0))),
            404 => Ok(None),
            _ => Err(Transport::error(resp, &url).await),
        }
    }

    /// Streams a blob from `offset` (mirrors first); the stream holds a request slot.
    pub async fn blob_get(&self, r: &Reference, digest: &str, offset: u64) -> Result<ByteStream> {
        let mut last = None;
        for (t, ns) in self.read_order(&r.registry)? {
            let url = Self::url(&t, &r.repository, &format!("blobs/{digest}"), ns.as_deref());
            let mut req = Request::new(Method::GET, url.clone(), Self::scope(&t, &r.repository, false));
            if offset > 0 {
                req = req.header("range", format!("bytes={offset}-"));
            }
            let resp = match t.send(req).await {
                Ok(r) => r,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let status = resp.status();
            if status != 200 && status != 206 {
                last = Some(Transport::error(resp, &url).await);
                continue;
            }
            // A 200 to a ranged request restarts at byte 0: skip what we already have.
            let mut skip = if status == 200 { offset } else { 0 };
            // The request slot is released once the headers are in: holding it while the
            // body streams into an upload on the same host could starve that upload of slots.
            let stream = resp.into_stream(strip_query(&url)).filter_map(move |chunk| {
                let out = match chunk {
                    Err(e) => Some(Err(e)),
                    Ok(mut bytes) => {
                        if skip > 0 {
                            let n = skip.min(bytes.len() as u64);
                            skip -= n;
                            bytes = bytes.slice(n as usize..);
                        }
                        (!bytes.is_empty()).then_some(Ok(bytes))
                    }
                };
                std::future::ready(out)
            });
            return Ok(Box::pin(stream));
        }
        Err(last.unwrap_or_else(|| ClientError::new(ErrorKind::NotFound, r.common_name(), "no host to ask")))
    }

    /// Asks the registry to link a blob from another repository on the same host.
    pub async fn blob_mount(&self, r: &Reference, from_repository: &str, digest: &str) -> Result<Mount> {
        let t = self.transport(&r.registry)?;
        let repo = Self::repo_path(&t, &r.repository);
        let from = Self::repo_path(&t, from_repository);
        match upload::start(&t, &repo, digest, Some(&from)).await? {
            None => Ok(Mount::Mounted),
            Some(session) => Ok(Mount::Refused(session)),
        }
    }

    /// Uploads a blob, in the given session or a new one.
    pub async fn blob_put(&self, r: &Reference, blob: &BlobData, session: Option<upload::Session>) -> Result<()> {
        let t = self.transport(&r.registry)?;
        let repo = Self::repo_path(&t, &r.repository);
        let session = match session {
            Some(s) => s,
            None => upload::start(&t, &repo, &blob.desc.digest, None).await?.expect("no mount asked"),
        };
        upload::send(&t, &repo, blob, session, self.options.blob_limit).await.map(|_| ())
    }

    /// Every page of a listing, following `Link` (and, for the catalog,
    /// `last=`), within `limits.listPageBytes` per page and `cap` names in all.
    /// A page that adds nothing new, or a `Link` back to a page already read,
    /// ends the listing. Names are de-duplicated in the order listed.
    async fn list_pages(&self, t: &Transport, first: String, scope: Scope, what: &ListingOf) -> Result<Vec<String>> {
        let page_cap = self.options.limits.list_page_bytes as usize;
        let mut out = Vec::new();
        let mut url = first;
        let mut asked = std::collections::HashSet::new();
        let mut linked = false;
        loop {
            if !asked.insert(url.clone()) {
                break;
            }
            let resp = t
                .send(Request::new(Method::GET, url.clone(), scope.clone()).header("accept", "application/json"))
                .await?;
            if resp.status() != 200 {
                return Err(Transport::error(resp, &url).await);
            }
            let next = next_link(&resp);
            let location = strip_query(&url);
            let (body, turn) =
                resp.read_gated(page_cap, &location, || format!("a page of {what}"), "limits.listPageBytes").await?;
            let before = out.len();
            let room = what.cap.saturating_sub(before);
            listing::parse_page(&body, what.key, room, &mut out).map_err(|e| match e {
                listing::PageError::TooMany => ClientError::new(
                    ErrorKind::TooLarge,
                    &location,
                    format!("{what} has more than {} {} ({})", what.cap, what.key, what.limit_name),
                ),
                listing::PageError::Invalid(why) => {
                    ClientError::new(ErrorKind::Invalid, &location, format!("{what} is not a listing: {why}"))
                }
            })?;
            // The parsed names are in `out`; the page and its turn can go.
            drop((body, turn));
            if out.len() == before {
                break;
            }
            match next {
                Some(next) => {
                    linked = true;
                    url = urls::join(&url, &next)?;
                }
                // regsync's catalog loop: ask for `last=` until a page is empty or
                // repeats (REG-2). A registry that pages with `Link` ends its
                // listing by leaving it out, and its `last` may be an opaque
                // cursor (Quay, ECR) a repository name is not.
                None if what.key == "repositories" && !linked => {
                    let last = out.last().cloned().unwrap_or_default();
                    let n = self.page_size().map(|n| n.to_string());
                    let mut query = Vec::new();
                    if let Some(n) = &n {
                        query.push(("n", n.as_str()));
                    }
                    query.push(("last", last.as_str()));
                    url = urls::with_only_query(&url, &query)?;
                }
                None => break,
            }
        }
        let keep: Vec<bool> = {
            let mut seen = std::collections::HashSet::with_capacity(out.len());
            out.iter().map(|x| seen.insert(x.as_str())).collect()
        };
        let mut i = 0;
        out.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        Ok(out)
    }

    /// All tags of a repository, following `Link` pages (REPO-1).
    pub async fn tag_list(&self, r: &Reference) -> Result<Vec<String>> {
        let mut last = None;
        for (t, ns) in self.read_order(&r.registry)? {
            let mut url = Self::url(&t, &r.repository, "tags/list", ns.as_deref());
            if let Some(n) = self.page_size() {
                url = urls::with_query(&url, &[("n", &n.to_string())])?;
            }
            let what = ListingOf {
                key: "tags",
                of: format!("the tag list of {}", r.repository_key()),
                cap: self.options.limits.tags as usize,
                limit_name: "limits.tags",
            };
            match self.list_pages(&t, url, Self::scope(&t, &r.repository, false), &what).await {
                Ok(tags) => return Ok(tags),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::new(ErrorKind::NotFound, r.common_name(), "no host to ask")))
    }

    /// All repositories of a registry (`_catalog`; no mirrors, no `pathPrefix`, REG-2).
    pub async fn catalog(&self, registry: &str) -> Result<Vec<String>> {
        let t = self.transport(registry)?;
        let mut url = format!("{}/v2/_catalog", t.base_url);
        if let Some(n) = self.page_size() {
            url = urls::with_query(&url, &[("n", &n.to_string())])?;
        }
        let what = ListingOf {
            key: "repositories",
            of: format!("the catalog of {registry}"),
            cap: self.options.limits.repositories as usize,
            limit_name: "limits.repositories",
        };
        self.list_pages(&t, url, Scope::Catalog, &what).await
    }

    /// Referrers of `r.digest`: the referrers API when the registry has it,
    /// otherwise the `sha256-<hex>` fallback tag (absent: none).
    pub async fn referrers(&self, r: &Reference) -> Result<Vec<Descriptor>> {
        if let Some(list) = self.referrers_api(r).await? {
            return Ok(list);
        }
        match self.manifest_get(&r.with_tag(&fallback_tag(&r.digest))).await {
            Ok(m) => Ok(m.doc().map(|d| d.manifests).unwrap_or_default()),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

/// Which listing [`RegistryClient::list_pages`] reads, for its limits and errors.
struct ListingOf {
    /// The JSON key of the names.
    key: &'static str,
    /// What it is, for errors: `the tag list of registry/repo`.
    of: String,
    /// Most names in all.
    cap: usize,
    /// The setting of that cap.
    limit_name: &'static str,
}

impl std::fmt::Display for ListingOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.of)
    }
}

/// A registry blob as a [`BlobSource`] (opened with `Range` to resume).
pub struct RegistryBlobSource {
    /// The client.
    pub client: Arc<RegistryClient>,
    /// The repository.
    pub reference: Reference,
    /// The digest.
    pub digest: String,
}

impl BlobSource for RegistryBlobSource {
    fn open(&self, offset: u64) -> BoxFuture<'_, Result<ByteStream>> {
        Box::pin(self.client.blob_get(&self.reference, &self.digest, offset))
    }

    fn location(&self) -> String {
        format!("{}@{}", self.reference.repository_key(), self.digest)
    }
}
