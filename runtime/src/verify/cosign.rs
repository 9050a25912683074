//! cosign's legacy signatures: a `sha256-<hex>.sig` manifest in the image's
//! repository whose layers are "simple signing" payloads, each signed in
//! its layer's `dev.cosignproject.cosign/signature` annotation.

use serde::Deserialize;

/// The annotation holding a layer's base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The annotation holding a keyless signature's Fulcio certificate (PEM).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// The annotation holding a certificate's chain (PEM, leaf excluded).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
/// The annotation holding a layer's Rekor bundle.
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// The largest payload read: real ones are a few hundred bytes.
pub const MAX_PAYLOAD: u64 = 256 * 1024;
/// The most signature layers looked at for one image.
pub const MAX_SIGNATURES: usize = 64;
/// The longest base64 signature or bundle annotation accepted.
pub const MAX_ANNOTATION: usize = 64 * 1024;

/// The tag cosign keeps the signatures of `digest` under.
pub fn signature_tag(digest: &str) -> Option<String> {
    let (alg, hex) = digest.split_once(':')?;
    Some(format!("{alg}-{hex}.sig"))
}

/// The tag cosign 2 keeps the attestations of `digest` under.
pub fn attestation_tag(digest: &str) -> Option<String> {
    let (alg, hex) = digest.split_once(':')?;
    Some(format!("{alg}-{hex}.att"))
}

/// One signature found for an image: the payload and its annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The signed bytes (the layer blob).
    pub payload: Vec<u8>,
    /// The base64 signature.
    pub signature: String,
    /// The Rekor bundle, when the signature was logged.
    pub bundle: Option<String>,
    /// The signing certificate (PEM), for keyless signatures.
    pub certificate: Option<String>,
    /// The certificate's chain (PEM), when given.
    pub chain: Option<String>,
}

impl Candidate {
    /// The signature a layer carries: its payload and annotations; `None`
    /// for a layer that is not a signature (another kind of attachment).
    pub fn of_layer(payload: Vec<u8>, annotations: &std::collections::BTreeMap<String, String>) -> Option<Self> {
        // Line breaks inside the base64 are skipped, as Go's decoder (cosign's) does.
        let signature = annotations.get(SIGNATURE_ANNOTATION)?.replace(['\n', '\r'], "");
        Some(Candidate {
            payload,
            signature,
            bundle: annotations.get(BUNDLE_ANNOTATION).cloned(),
            certificate: annotations.get(CERTIFICATE_ANNOTATION).cloned(),
            chain: annotations.get(CHAIN_ANNOTATION).cloned(),
        })
    }
}

#[derive(Deserialize)]
struct SimpleSigning {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: Image,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

/// The manifest digest a simple-signing payload vouches for.
pub fn signed_digest(payload: &[u8]) -> Result<String, String> {
    let doc: SimpleSigning =
        serde_json::from_slice(payload).map_err(|e| format!("the payload is not a cosign signature payload: {e}"))?;
    if !doc.critical.kind.eq_ignore_ascii_case("cosign container image signature") {
        return Err(format!("the payload's type is {:?}, not a cosign container image signature", doc.critical.kind));
    }
    Ok(doc.critical.image.digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_names_the_digest_it_signs() {
        let payload = br#"{"critical":{"identity":{"docker-reference":"r/x"},"image":{"docker-manifest-digest":"sha256:ab"},"type":"cosign container image signature"},"optional":null}"#;
        assert_eq!(signed_digest(payload).unwrap(), "sha256:ab");
        let other =
            br#"{"critical":{"identity":{},"image":{"docker-manifest-digest":"sha256:ab"},"type":"something else"}}"#;
        assert!(signed_digest(other).unwrap_err().contains("not a cosign container image signature"));
        assert!(signed_digest(b"\x00\x01").unwrap_err().contains("not a cosign signature payload"));
        assert_eq!(signature_tag("sha256:ab").unwrap(), "sha256-ab.sig");
    }
}
