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

/// The predicate type of a bundle's in-toto statement (`None` for a plain
/// message signature).
pub fn predicate_type(doc: &serde_json::Value) -> Option<String> {
    let payload = doc["dsseEnvelope"]["payload"].as_str()?;
    let statement: serde_json::Value = serde_json::from_slice(&STANDARD.decode(payload).ok()?).ok()?;
    statement["predicateType"].as_str().map(str::to_string)
}

/// True when a bundle with this predicate type signs the image (rather than
/// attesting something about it).
pub fn is_signature(predicate: Option<&str>) -> bool {
    predicate.is_none_or(|p| p == SIGNATURE_PREDICATE)
}
