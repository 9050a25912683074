//! OCI plumbing for tests, independent of the code under test: digests,
//! descriptors, reading layouts, and a tiny distribution-API client built on
//! plain HTTP calls, used to seed registries and to check what landed there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The referrers fallback tag of a digest: `sha256-<hex>`.
pub fn fallback_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    /// Media type.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Platform object, for index entries.
    pub platform: Option<Value>,
    /// Artifact type, for referrers.
    pub artifact_type: Option<String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// A plain descriptor.
    pub fn new(media_type: &str, digest: &str, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size,
            platform: None,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }

    /// The same descriptor without a platform (for subjects and tag entries).
    pub fn without_platform(&self) -> Descriptor {
        Descriptor { platform: None, ..self.clone() }
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        let mut d = json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size});
        if let Some(p) = &self.platform {
            d["platform"] = p.clone();
        }
        if let Some(a) = &self.artifact_type {
            d["artifactType"] = json!(a);
        }
        if !self.annotations.is_empty() {
            d["annotations"] = json!(self.annotations);
        }
        d
    }

    /// From JSON.
    pub fn from_json(v: &Value) -> Descriptor {
        Descriptor {
            media_type: v["mediaType"].as_str().unwrap_or_default().to_string(),
            digest: v["digest"].as_str().unwrap_or_default().to_string(),
            size: v["size"].as_u64().unwrap_or_default(),
            platform: v.get("platform").cloned(),
            artifact_type: v.get("artifactType").and_then(Value::as_str).map(str::to_string),
            annotations: v
                .get("annotations")
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
                .unwrap_or_default(),
        }
    }

    /// True for manifest and index media types.
    pub fn is_manifest(&self) -> bool {
        is_manifest_type(&self.media_type)
    }
}

/// True for manifest and index media types.
pub fn is_manifest_type(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.manifest.v1+json"
            | "application/vnd.oci.image.index.v1+json"
            | "application/vnd.docker.distribution.manifest.v2+json"
            | "application/vnd.docker.distribution.manifest.list.v2+json"
    )
}

/// What a manifest points at (children of an index, config and layers of an
/// image); the `subject` is not a child.
pub fn children(manifest: &Value) -> Vec<Descriptor> {
    let mut out = Vec::new();
    if let Some(list) = manifest.get("manifests").and_then(Value::as_array) {
        out.extend(list.iter().map(Descriptor::from_json));
    }
    if let Some(config) = manifest.get("config") {
        out.push(Descriptor::from_json(config));
    }
    if let Some(list) = manifest.get("layers").and_then(Value::as_array) {
        out.extend(list.iter().map(Descriptor::from_json));
    }
    out
}

/// An OCI layout on disk.
pub struct LayoutReader {
    dir: PathBuf,
}

impl LayoutReader {
    /// Opens a layout directory.
    pub fn open(dir: impl AsRef<Path>) -> Self {
        LayoutReader { dir: dir.as_ref().to_path_buf() }
    }

    /// The parsed `index.json`.
    pub fn index(&self) -> Value {
        let bytes = std::fs::read(self.dir.join("index.json")).expect("read index.json");
        serde_json::from_slice(&bytes).expect("parse index.json")
    }

    /// Tag → descriptor, from the `org.opencontainers.image.ref.name` annotations.
    pub fn tags(&self) -> BTreeMap<String, Descriptor> {
        let index = self.index();
        index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let name = m["annotations"][crate::fixtures::REF_NAME].as_str()?;
                let tag = name.rsplit(':').next().unwrap_or(name).to_string();
                Some((tag, Descriptor::from_json(m)))
            })
            .collect()
    }

    /// A blob's bytes.
    pub fn blob(&self, digest: &str) -> Option<Vec<u8>> {
        let (alg, hex) = digest.split_once(':')?;
        std::fs::read(self.dir.join("blobs").join(alg).join(hex)).ok()
    }

    /// Checks every blob's digest and that everything reachable from
    /// `index.json` is present. Subjects are not followed: a referrer's
    /// subject may live elsewhere. Returns the problems.
    pub fn verify(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let blobs_dir = self.dir.join("blobs/sha256");
        for entry in std::fs::read_dir(&blobs_dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            if sha256_digest(&bytes) != format!("sha256:{name}") {
                problems.push(format!("blob {name} does not match its digest"));
            }
        }
        let mut seen = BTreeSet::new();
        let mut queue: Vec<Descriptor> =
            self.index()["manifests"].as_array().into_iter().flatten().map(Descriptor::from_json).collect();
        while let Some(d) = queue.pop() {
            if !seen.insert(d.digest.clone()) {
                continue;
            }
            let Some(bytes) = self.blob(&d.digest) else {
                problems.push(format!("missing {} {}", d.media_type, d.digest));
                continue;
            };
            if bytes.len() as u64 != d.size {
                problems.push(format!("{} is {} bytes, descriptor says {}", d.digest, bytes.len(), d.size));
            }
            if d.is_manifest() {
                let doc: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                queue.extend(children(&doc));
            }
        }
        problems
    }
}

/// A distribution-API client made of plain HTTP calls, for seeding and checking.
pub struct RegistryHttp {
    base: String,
    client: reqwest::blocking::Client,
    auth: Option<(String, String)>,
}

/// Every manifest type, for `Accept`.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

impl RegistryHttp {
    /// A client for `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str, client: reqwest::blocking::Client) -> Self {
        RegistryHttp { base: base.trim_end_matches('/').to_string(), client, auth: None }
    }

    /// Sends basic auth with every request.
    pub fn with_basic_auth(mut self, user: &str, pass: &str) -> Self {
        self.auth = Some((user.to_string(), pass.to_string()));
        self
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::blocking::RequestBuilder {
        let r = self.client.request(method, url);
        match &self.auth {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
    }

    /// `GET /v2/` status.
    pub fn ping(&self) -> Result<u16, String> {
        self.request(reqwest::Method::GET, &format!("{}/v2/", self.base))
            .send()
            .map(|r| r.status().as_u16())
            .map_err(|e| format!("{e:?}"))
    }

    /// Uploads a blob (POST, then one PUT with the bytes).
    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> Result<String, String> {
        let digest = sha256_digest(bytes);
        let start = self
            .request(reqwest::Method::POST, &format!("{}/v2/{repo}/blobs/uploads/", self.base))
            .send()
            .map_err(|e| e.to_string())?;
        if start.status().as_u16() != 202 {
            return Err(format!("upload start: {}", start.status()));
        }
        let location = start.headers()["location"].to_str().map_err(|e| e.to_string())?.to_string();
        let url = if location.starts_with("http") { location } else { format!("{}{location}", self.base) };
        let sep = if url.contains('?') { '&' } else { '?' };
        let put = self
            .request(reqwest::Method::PUT, &format!("{url}{sep}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .map_err(|e| e.to_string())?;
        if put.status().as_u16() != 201 {
            return Err(format!("upload {digest}: {}", put.status()));
        }
        Ok(digest)
    }

    /// Pushes a manifest by tag or digest; returns the digest the registry reports.
    pub fn push_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> Result<String, String> {
        let resp = self
            .request(reqwest::Method::PUT, &format!("{}/v2/{repo}/manifests/{reference}", self.base))
            .header("content-type", media_type)
            .body(bytes.to_vec())
            .send()
            .map_err(|e| e.to_string())?;
        if resp.status().as_u16() != 201 {
            let status = resp.status();
            return Err(format!("manifest {reference}: {status} {}", resp.text().unwrap_or_default()));
        }
        Ok(resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).unwrap_or("").to_string())
    }

    /// Fetches a manifest: (media type, bytes, `Docker-Content-Digest`), or `None` on 404.
    pub fn manifest(&self, repo: &str, reference: &str) -> Option<(String, Vec<u8>, String)> {
        let resp = self
            .request(reqwest::Method::GET, &format!("{}/v2/{repo}/manifests/{reference}", self.base))
            .header("accept", ACCEPT_MANIFESTS)
            .send()
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let header = |k: &str| resp.headers().get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let (mt, digest) = (header("content-type"), header("docker-content-digest"));
        Some((mt, resp.bytes().ok()?.to_vec(), digest))
    }

    /// The digest a tag points at, or `None`.
    pub fn digest_of(&self, repo: &str, tag: &str) -> Option<String> {
        self.manifest(repo, tag).map(|(_, bytes, _)| sha256_digest(&bytes))
    }

    /// Every tag of `repo` and its digest, or `None` while one of them is
    /// listed but not readable: distribution 2.8 lists a tag before its link
    /// is written, so a reader racing a running sync can see that.
    pub fn settled_tag_digests(&self, repo: &str) -> Option<BTreeMap<String, String>> {
        self.tags(repo).into_iter().map(|t| self.digest_of(repo, &t).map(|d| (t, d))).collect()
    }

    /// Every tag of `repo` and the digest it points at.
    pub fn tag_digests(&self, repo: &str) -> BTreeMap<String, String> {
        self.tags(repo)
            .into_iter()
            .map(|t| {
                let digest = self.digest_of(repo, &t).unwrap_or_else(|| panic!("{repo}:{t} listed but not readable"));
                (t, digest)
            })
            .collect()
    }

    /// Fetches a blob, or `None`.
    pub fn blob(&self, repo: &str, digest: &str) -> Option<Vec<u8>> {
        let resp =
            self.request(reqwest::Method::GET, &format!("{}/v2/{repo}/blobs/{digest}", self.base)).send().ok()?;
        resp.status().is_success().then(|| resp.bytes().ok().map(|b| b.to_vec()))?
    }

    /// The repository's tags (empty when it does not exist).
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let Ok(resp) = self.request(reqwest::Method::GET, &format!("{}/v2/{repo}/tags/list?n=1000", self.base)).send()
        else {
            return Vec::new();
        };
        let v: Value = resp.json_value();
        v["tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_string)).collect()
    }

    /// Pushes every entry of a layout's `index.json` into `repo`, with its tag.
    pub fn push_layout(&self, layout: &LayoutReader, repo: &str) -> Result<(), String> {
        for entry in layout.index()["manifests"].as_array().into_iter().flatten() {
            let d = Descriptor::from_json(entry);
            self.push_from_layout(layout, repo, &d, entry["annotations"][crate::fixtures::REF_NAME].as_str())?;
        }
        Ok(())
    }

    /// Copies everything reachable from `desc` in a layout (children first,
    /// the manifest last), then tags it.
    pub fn push_from_layout(
        &self,
        layout: &LayoutReader,
        repo: &str,
        desc: &Descriptor,
        tag: Option<&str>,
    ) -> Result<(), String> {
        let bytes = layout.blob(&desc.digest).ok_or_else(|| format!("layout lacks {}", desc.digest))?;
        if desc.is_manifest() {
            let doc: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
            for child in children(&doc) {
                if child.is_manifest() {
                    self.push_from_layout(layout, repo, &child, None)?;
                } else {
                    let blob = layout.blob(&child.digest).ok_or_else(|| format!("layout lacks {}", child.digest))?;
                    self.push_blob(repo, &blob)?;
                }
            }
            let reference = tag.unwrap_or(&desc.digest);
            let pushed = self.push_manifest(repo, reference, &desc.media_type, &bytes)?;
            if pushed != desc.digest {
                return Err(format!("registry stored {pushed}, expected {}", desc.digest));
            }
        } else {
            self.push_blob(repo, &bytes)?;
        }
        Ok(())
    }

    /// Walks a tag's graph on the registry and reports anything missing or
    /// corrupt (the "never a tag pointing at a missing blob" check).
    pub fn verify_tag(&self, repo: &str, tag: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let Some((mt, _, _)) = self.manifest(repo, tag) else {
            return vec![format!("{repo}:{tag} not found")];
        };
        let mut queue = vec![(mt, tag.to_string())];
        let mut seen = BTreeSet::new();
        while let Some((mt, reference)) = queue.pop() {
            if !seen.insert(reference.clone()) {
                continue;
            }
            if is_manifest_type(&mt) {
                let Some((_, bytes, _)) = self.manifest(repo, &reference) else {
                    problems.push(format!("missing manifest {reference}"));
                    continue;
                };
                let doc: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                for c in children(&doc) {
                    queue.push((c.media_type.clone(), c.digest.clone()));
                }
            } else {
                match self.blob(repo, &reference) {
                    Some(b) if sha256_digest(&b) == reference => {}
                    Some(_) => problems.push(format!("blob {reference} is corrupt")),
                    None => problems.push(format!("missing blob {reference}")),
                }
            }
        }
        problems
    }
}

trait JsonValue {
    fn json_value(self) -> Value;
}

impl JsonValue for reqwest::blocking::Response {
    fn json_value(self) -> Value {
        self.bytes().ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null)
    }
}
