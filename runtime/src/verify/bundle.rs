//! Sigstore bundles attached to an image as OCI referrers (cosign 3's
//! default, GitHub artifact attestations): which referrers hold one, and
//! what a bundle states. A bundle's own verification is `keyless.rs`'s.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// What a bundle manifest's `artifactType` (or config media type) starts with.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle";
/// The predicate type cosign 3 gives an image signature.
pub const SIGNATURE_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
/// The largest bundle read.
pub const MAX_BUNDLE: u64 = 1024 * 1024;
/// The most referrers looked at for bundles.
pub const MAX_REFERRERS: usize = 32;

/// True when a manifest's artifact type or config media type names a bundle.
pub fn is_bundle(media_type: Option<&str>) -> bool {
    media_type.is_some_and(|m| m.starts_with(BUNDLE_MEDIA_TYPE))
}

/// The predicate type of a bundle's in-toto statement: `None` for a plain
/// message signature, empty for an envelope whose statement has none (which
/// then neither signs the image nor attests anything).
pub fn predicate_type(doc: &serde_json::Value) -> Option<String> {
    let envelope = doc.get("dsseEnvelope")?;
    let statement: Option<serde_json::Value> = envelope["payload"]
        .as_str()
        .and_then(|p| STANDARD.decode(p).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    Some(statement.and_then(|s| s["predicateType"].as_str().map(str::to_string)).unwrap_or_default())
}

/// True when a bundle with this predicate type signs the image (rather than
/// attesting something about it).
pub fn is_signature(predicate: Option<&str>) -> bool {
    predicate.is_none_or(|p| p == SIGNATURE_PREDICATE)
}

/// Bundles signed with a managed key (cosign 3 `--key`): checked with the
/// entry's keys, and against its trusted root's logs unless `tlog: ignore`.
#[derive(Clone)]
pub struct KeyBundles {
    verifier: std::sync::Arc<sigstore_verify::Verifier>,
    tlog: bool,
}

impl std::fmt::Debug for KeyBundles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyBundles").field("tlog", &self.tlog).finish()
    }
}

impl PartialEq for KeyBundles {
    // The trusted root behind it is compared through the policy's fingerprint.
    fn eq(&self, other: &Self) -> bool {
        self.tlog == other.tlog
    }
}

/// A trusted root that trusts nothing: key bundles checked without a log.
const EMPTY_ROOT: &str = r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[],"certificateAuthorities":[],"ctlogs":[],"timestampAuthorities":[]}"#;

impl KeyBundles {
    /// Key bundles checked against `root_json` (none: `tlog` must be off).
    pub fn new(root_json: Option<&str>, tlog: bool) -> Result<Self, String> {
        super::provider::install();
        let root = sigstore_verify::trust_root::TrustedRoot::from_json(root_json.unwrap_or(EMPTY_ROOT))
            .map_err(|e| e.to_string())?;
        let verifier = sigstore_verify::Verifier::new(&root).map_err(|e| e.to_string())?;
        Ok(KeyBundles { verifier: std::sync::Arc::new(verifier), tlog })
    }

    /// Checks a bundle attached to `digest` with each of `keys`: the Rekor
    /// entry (when logged) and the statement's predicate type.
    pub fn check(
        &self,
        json: &str,
        digest: &str,
        keys: &[super::PublicKey],
    ) -> Result<(Option<super::rekor::LogEntry>, Option<String>), String> {
        use sigstore_verify::types::{Artifact, ArtifactDigest, DerPublicKey, Sha256Hash};
        let doc: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("unusable bundle: {e}"))?;
        let unlogged = doc["verificationMaterial"]["tlogEntries"].as_array().is_none_or(|e| e.is_empty());
        if !self.tlog && unlogged && doc["dsseEnvelope"].is_object() {
            // The Sigstore verifier wants a log entry or a timestamp; with
            // `tlog: ignore` an unlogged envelope is checked with the key alone.
            return dsse_by_key(&doc["dsseEnvelope"], digest, keys).map(|p| (None, p));
        }
        let bundle = sigstore_verify::types::Bundle::from_json(json).map_err(|e| format!("unusable bundle: {e}"))?;
        let hex = digest.strip_prefix("sha256:").ok_or("only sha256 digests are verified")?;
        let hash = Sha256Hash::from_hex(hex).map_err(|e| e.to_string())?;
        let mut reason = "no bundle signed by its keys".to_string();
        for key in keys.iter().filter(|k| !k.spki().is_empty()) {
            let mut policy = sigstore_verify::PublicKeyVerificationPolicy::new(DerPublicKey::from_bytes(key.spki()));
            if !self.tlog {
                policy = policy.skip_tlog_unsafe();
            }
            let artifact = Artifact::Digest(ArtifactDigest::sha256(hash));
            match self.verifier.verify(artifact, &bundle, &policy) {
                Ok(_) => {
                    let doc: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
                    return Ok((log_entry(&doc), predicate_type(&doc)));
                }
                Err(e) => reason = e.to_string(),
            }
        }
        Err(reason)
    }
}

/// A DSSE envelope signed by one of `keys` whose statement names `digest`;
/// its predicate type.
fn dsse_by_key(
    envelope: &serde_json::Value,
    digest: &str,
    keys: &[super::PublicKey],
) -> Result<Option<String>, String> {
    let payload_type = envelope["payloadType"].as_str().unwrap_or_default();
    if payload_type != "application/vnd.in-toto+json" {
        return Err(format!("the envelope holds {payload_type:?}, not an in-toto statement"));
    }
    let payload = STANDARD
        .decode(envelope["payload"].as_str().unwrap_or_default())
        .map_err(|_| "the envelope's payload is not base64".to_string())?;
    let mut signed = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    signed.extend_from_slice(&payload);
    let signatures = envelope["signatures"].as_array().map(Vec::as_slice).unwrap_or_default();
    let by_key = signatures
        .iter()
        .filter_map(|s| STANDARD.decode(s["sig"].as_str()?).ok())
        .any(|sig| keys.iter().any(|k| k.verifies(&signed, &sig)));
    if !by_key {
        return Err("no envelope signed by its keys".into());
    }
    let statement: serde_json::Value =
        serde_json::from_slice(&payload).map_err(|e| format!("the envelope holds no in-toto statement: {e}"))?;
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let names = statement["subject"].as_array().is_some_and(|s| s.iter().any(|d| d["digest"]["sha256"] == hex));
    if !names {
        return Err(format!("the statement is not about {digest}"));
    }
    Ok(Some(statement["predicateType"].as_str().unwrap_or_default().to_string()))
}

/// The first Rekor entry a bundle carries.
pub fn log_entry(doc: &serde_json::Value) -> Option<super::rekor::LogEntry> {
    let e = doc["verificationMaterial"]["tlogEntries"].get(0)?;
    let number = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse().ok()).or(v.as_i64());
    Some(super::rekor::LogEntry { log_index: number(&e["logIndex"])?, integrated_time: number(&e["integratedTime"])? })
}
