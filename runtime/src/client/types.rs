//! What travels through the client: manifests as exact bytes, descriptors,
//! and the few manifest fields we read. Manifests are never re-serialised
//! when copied; these types only look inside.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::platform::Platform;

/// OCI image index.
pub const MT_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const MT_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI artifact manifest (deprecated, still readable).
pub const MT_OCI_ARTIFACT: &str = "application/vnd.oci.artifact.manifest.v1+json";
/// Docker manifest list.
pub const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker v2 manifest.
pub const MT_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker schema 1, signed.
pub const MT_DOCKER_V1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker schema 1.
pub const MT_DOCKER_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// `Accept` for manifest requests (HTTP-8).
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.v1+prettyjws, application/vnd.docker.distribution.manifest.v1+json, application/vnd.oci.artifact.manifest.v1+json";

/// True for index and manifest-list types.
pub fn is_index(media_type: &str) -> bool {
    media_type == MT_OCI_INDEX || media_type == MT_DOCKER_LIST
}

/// True for any manifest type the client copies.
pub fn is_manifest(media_type: &str) -> bool {
    matches!(
        media_type,
        MT_OCI_INDEX
            | MT_OCI_MANIFEST
            | MT_OCI_ARTIFACT
            | MT_DOCKER_LIST
            | MT_DOCKER_MANIFEST
            | MT_DOCKER_V1
            | MT_DOCKER_V1_SIGNED
    )
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    format!("sha256:{}", hex(&hash))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a digest string is `sha256:` followed by 64 hex digits; returns the hex.
pub fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())).then_some(hex)
}

/// The referrers fallback tag of a digest: `sha256-<hex>`.
pub fn fallback_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// The digest a tag of the `sha256-<hex>` family names: the exact fallback
/// tag or a digest tag such as `sha256-<hex>.sig` (COPY-10).
pub fn digest_tag_subject(tag: &str) -> Option<String> {
    let rest = tag.strip_prefix("sha256-")?;
    let hex = rest.get(..64)?;
    let tail = &rest[64..];
    let valid = hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    (valid && (tail.is_empty() || tail.starts_with('.'))).then(|| format!("sha256:{hex}"))
}

/// True for a referrers fallback tag (`sha256-<hex>`, nothing after).
pub fn is_fallback_tag(tag: &str) -> bool {
    tag.len() == "sha256-".len() + 64 && digest_tag_subject(tag).is_some()
}

/// The descriptor a referrers list gives a manifest: its artifact type (or,
/// for an image, its config media type) and its annotations, as regclient
/// writes them into a fallback index.
pub fn referrer_descriptor(m: &Manifest, doc: &ManifestDoc) -> Descriptor {
    let mut d = m.descriptor();
    d.artifact_type = doc.artifact_type.clone().or_else(|| doc.config.as_ref().map(|c| c.media_type.clone()));
    d.annotations = doc.annotations.clone();
    d
}

/// A referrers fallback index listing `referrers`, or `current` with the
/// missing ones appended (its other fields kept). `None` when `current`
/// already lists them all.
pub fn fallback_index_with(current: Option<&Manifest>, referrers: &[Descriptor]) -> Option<Manifest> {
    let mut doc: serde_json::Value = current
        .and_then(|m| serde_json::from_slice(&m.bytes).ok())
        .filter(|v: &serde_json::Value| v["manifests"].is_array())
        .unwrap_or_else(|| serde_json::json!({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": []}));
    let list = doc["manifests"].as_array_mut()?;
    let mut added = false;
    for r in referrers {
        if !list.iter().any(|d| d["digest"].as_str() == Some(r.digest.as_str())) {
            list.push(serde_json::to_value(r).unwrap_or_default());
            added = true;
        }
    }
    if !added && current.is_some() {
        return None;
    }
    Some(Manifest::new(MT_OCI_INDEX, Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())))
}

/// A platform in a descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescriptorPlatform {
    /// Architecture.
    pub architecture: String,
    /// OS.
    pub os: String,
    /// OS version.
    #[serde(rename = "os.version", default, skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    /// Variant.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl DescriptorPlatform {
    /// The platform it names, normalised.
    pub fn platform(&self) -> Platform {
        Platform::from_parts(&self.os, &self.architecture, &self.variant, &self.os_version)
    }
}

/// The index entry that best fits `wanted` (IMG-6).
pub fn select_platform<'a>(wanted: &Platform, entries: &'a [Descriptor]) -> Option<&'a Descriptor> {
    wanted.select(entries.iter().filter_map(|d| d.platform.as_ref().map(|p| (d, p.platform()))))
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the content.
    pub media_type: String,
    /// Content digest.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Platform (index entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<DescriptorPlatform>,
    /// Artifact type (referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// External locations (foreign layers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Embedded data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl Descriptor {
    /// A descriptor with just type, digest and size.
    pub fn new(media_type: &str, digest: &str, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size,
            platform: None,
            artifact_type: None,
            annotations: BTreeMap::new(),
            urls: Vec::new(),
            data: None,
        }
    }
}

/// The fields of a manifest or index we read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestDoc {
    /// `mediaType` as written in the document.
    #[serde(default)]
    pub media_type: Option<String>,
    /// Index children.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Image config.
    #[serde(default)]
    pub config: Option<Descriptor>,
    /// Image layers (OCI/Docker v2).
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Artifact blobs (deprecated artifact manifest).
    #[serde(default)]
    pub blobs: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default)]
    pub subject: Option<Descriptor>,
    /// Artifact type.
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Schema 1 layers.
    #[serde(default)]
    pub fs_layers: Vec<Schema1Layer>,
}

/// What a manifest names (children, config, layers, blobs, subject), parsed
/// without its annotations or anything else: the copy walks this, so a
/// manifest carrying megabytes of annotations costs them once, not per walk.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestLinks {
    /// Index children.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Image config.
    #[serde(default)]
    pub config: Option<Descriptor>,
    /// Image layers (OCI/Docker v2).
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Artifact blobs (deprecated artifact manifest).
    #[serde(default)]
    pub blobs: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default)]
    pub subject: Option<Descriptor>,
    /// Schema 1 layers.
    #[serde(default)]
    pub fs_layers: Vec<Schema1Layer>,
}

/// A schema 1 layer reference.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema1Layer {
    /// Layer digest.
    pub blob_sum: String,
}

/// A manifest exactly as stored: bytes, media type and digest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Media type (from the response header or the document).
    pub media_type: String,
    /// `sha256:` of `bytes`, verified.
    pub digest: String,
    /// The exact bytes.
    pub bytes: Bytes,
    /// Rate-limit headers seen on the response.
    pub rate_limit: Option<RateLimitInfo>,
}

impl Manifest {
    /// What a HEAD of it would have answered.
    pub fn head(&self) -> ManifestHead {
        ManifestHead {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
            rate_limit: self.rate_limit,
        }
    }

    /// Wraps bytes, computing the digest.
    pub fn new(media_type: &str, bytes: Bytes) -> Self {
        Manifest { media_type: media_type.to_string(), digest: sha256_digest(&bytes), bytes, rate_limit: None }
    }

    /// Parses the fields we read.
    pub fn doc(&self) -> Result<ManifestDoc, serde_json::Error> {
        serde_json::from_slice(&self.bytes)
    }

    /// Parses only what the manifest names (see [`ManifestLinks`]).
    pub fn links(&self) -> Result<ManifestLinks, serde_json::Error> {
        serde_json::from_slice(&self.bytes)
    }

    /// A descriptor of this manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(&self.media_type, &self.digest, self.bytes.len() as u64)
    }
}

/// The media type of bytes served as a manifest, or why they are not one.
///
/// A registry (or a layout) may answer a manifest request with anything: a
/// login page with status 200, a config blob, an error document. Those must
/// never be pushed as a manifest, so the bytes must be a JSON object whose
/// media type is a manifest type: the document's own `mediaType` when it
/// names one, else the `Content-Type` when that does, else one recognised
/// from the document's shape (an OCI manifest may leave `mediaType` out).
pub fn manifest_media_type(content_type: Option<&str>, bytes: &[u8]) -> Result<String, String> {
    let served = content_type.filter(|c| !c.is_empty()).unwrap_or("no content type");
    if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
        return Err(format!("not a manifest ({served}): {}", preview(bytes)));
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(format!("not a manifest ({served}): the document is not a JSON object"));
    }
    // Parsed exactly as every later reader parses it ([`Manifest::doc`]), so
    // what passes here reads the same there (a duplicate key fails both).
    let doc: ManifestDoc = serde_json::from_slice(bytes).map_err(|e| format!("not a manifest ({served}): {e}"))?;
    match doc.media_type.as_deref().filter(|m| !m.is_empty()) {
        Some(m) if is_manifest(m) => return Ok(m.to_string()),
        Some(m) => return Err(format!("not a manifest: its media type is {m}")),
        None => {}
    }
    if let Some(c) = content_type.filter(|c| is_manifest(c)) {
        return Ok(c.to_string());
    }
    if !doc.manifests.is_empty() {
        Ok(MT_OCI_INDEX.to_string())
    } else if !doc.fs_layers.is_empty() {
        Ok(MT_DOCKER_V1_SIGNED.to_string())
    } else if doc.config.is_some() {
        Ok(MT_OCI_MANIFEST.to_string())
    } else {
        Err(format!("not a manifest ({served}): a JSON document without manifests, config or layers"))
    }
}

/// The start of a body that is not JSON, for an error: printable text only.
fn preview(bytes: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("the body starts with {:?}", text.trim())
}

/// The answer to a manifest HEAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// Media type.
    pub media_type: String,
    /// Digest.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Rate-limit headers seen on the response.
    pub rate_limit: Option<RateLimitInfo>,
}

/// Rate-limit headers of a response (RL-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitInfo {
    /// `RateLimit-Limit`, the integer before `;`.
    pub limit: Option<i64>,
    /// `RateLimit-Remaining`, the integer before `;`.
    pub remaining: i64,
    /// `RateLimit-Reset`, seconds.
    pub reset: Option<i64>,
}

impl RateLimitInfo {
    /// Parses the three headers; `None` unless `RateLimit-Remaining` is an integer (RL-1).
    pub fn parse(limit: Option<&str>, remaining: Option<&str>, reset: Option<&str>) -> Option<Self> {
        let first_int = |s: &str| s.split([';', ',']).next().and_then(|n| n.trim().parse::<i64>().ok());
        Some(RateLimitInfo {
            remaining: remaining.and_then(first_int)?,
            limit: limit.and_then(first_int),
            reset: reset.and_then(|r| r.trim().parse().ok()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_headers_rl_1() {
        let r = RateLimitInfo::parse(Some("100;w=21600"), Some("76;w=21600"), Some("3600")).unwrap();
        assert_eq!(r, RateLimitInfo { limit: Some(100), remaining: 76, reset: Some(3600) });
        assert_eq!(RateLimitInfo::parse(Some("100"), None, None), None);
        assert_eq!(RateLimitInfo::parse(None, Some("x"), None), None);
        assert_eq!(RateLimitInfo::parse(Some("5, 5;w=1"), Some("0"), None).unwrap().limit, Some(5));
    }

    #[test]
    fn what_is_served_as_a_manifest_must_be_one() {
        let d = r#"{"mediaType":"a","digest":"d","size":1}"#;
        let index = format!(r#"{{"manifests":[{d}]}}"#);
        let image = format!(r#"{{"schemaVersion":2,"config":{d},"layers":[]}}"#);
        let ok = [
            (None, format!(r#"{{"mediaType":"{MT_DOCKER_MANIFEST}"}}"#), MT_DOCKER_MANIFEST),
            (None, index.clone(), MT_OCI_INDEX),
            (None, image.clone(), MT_OCI_MANIFEST),
            (Some("application/json"), image.clone(), MT_OCI_MANIFEST),
            (Some(MT_DOCKER_LIST), index.clone(), MT_DOCKER_LIST),
            // The document's own type wins over a header that disagrees.
            (Some(MT_OCI_INDEX), format!(r#"{{"mediaType":"{MT_DOCKER_LIST}","manifests":[]}}"#), MT_DOCKER_LIST),
        ];
        for (ct, body, want) in ok {
            assert_eq!(manifest_media_type(ct, body.as_bytes()).as_deref(), Ok(want), "{ct:?} {body}");
        }
        let html = b"<!DOCTYPE html>\n<html><body>Sign in</body></html>";
        let refused = [
            (
                Some("text/html"),
                &html[..],
                "not a manifest (text/html): the body starts with \"<!DOCTYPE html> <html><body>Sign in</body></html>\"",
            ),
            (
                Some(MT_OCI_MANIFEST),
                &html[..],
                "not a manifest (application/vnd.oci.image.manifest.v1+json): the body starts with",
            ),
            (
                Some(MT_OCI_MANIFEST),
                b"[1, 2]",
                "not a manifest (application/vnd.oci.image.manifest.v1+json): the document is not a JSON object",
            ),
            (
                None,
                br#"{"mediaType":"application/vnd.oci.image.config.v1+json"}"#,
                "not a manifest: its media type is application/vnd.oci.image.config.v1+json",
            ),
            (
                Some("application/json"),
                br#"{"errors":[]}"#,
                "not a manifest (application/json): a JSON document without manifests, config or layers",
            ),
            (None, br#"{"manifests": 3}"#, "not a manifest (no content type): invalid type"),
            // Found by the `manifest` fuzz target: a duplicate key passed a lenient parse
            // here and failed the strict one of every later reader.
            (
                Some(MT_OCI_INDEX),
                br#"{"manifests":[{"mediaType":"a","digest":"d","digest":"e","size":1}]}"#,
                "not a manifest (application/vnd.oci.image.index.v1+json): duplicate field `digest`",
            ),
        ];
        for (ct, body, want) in refused {
            let got = manifest_media_type(ct, body).unwrap_err();
            assert!(got.starts_with(want), "{got} / {want}");
        }
    }

    #[test]
    fn digest_checks() {
        let d = sha256_digest(b"");
        assert_eq!(d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert!(sha256_hex(&d).is_some());
        assert!(sha256_hex("sha256:abc").is_none());
        assert!(sha256_hex("sha512:00").is_none());
        assert_eq!(fallback_tag(&d), d.replace(':', "-"));
        let hex = &d["sha256:".len()..];
        assert_eq!(digest_tag_subject(&format!("sha256-{hex}")), Some(d.clone()));
        assert_eq!(digest_tag_subject(&format!("sha256-{hex}.sig")), Some(d.clone()));
        assert_eq!(digest_tag_subject(&format!("sha256-{hex}x")), None, "a longer hex is another name");
        assert_eq!(digest_tag_subject("sha256-abc"), None);
        assert_eq!(digest_tag_subject("v1"), None);
        assert!(is_fallback_tag(&format!("sha256-{hex}")));
        assert!(!is_fallback_tag(&format!("sha256-{hex}.sig")));
    }

    #[test]
    fn fallback_index_appends_only_what_is_missing() {
        let a = Descriptor::new(MT_OCI_MANIFEST, &sha256_digest(b"a"), 1);
        let b = Descriptor::new(MT_OCI_MANIFEST, &sha256_digest(b"b"), 1);
        let fresh = fallback_index_with(None, std::slice::from_ref(&a)).unwrap();
        assert_eq!(fresh.doc().unwrap().manifests, vec![a.clone()]);
        assert!(fallback_index_with(Some(&fresh), std::slice::from_ref(&a)).is_none(), "nothing to add");
        let both = fallback_index_with(Some(&fresh), &[a.clone(), b.clone()]).unwrap();
        assert_eq!(both.doc().unwrap().manifests, vec![a, b]);
        let empty = fallback_index_with(None, &[]).unwrap();
        assert!(empty.doc().unwrap().manifests.is_empty(), "a new empty index when asked with nothing");
    }
}
