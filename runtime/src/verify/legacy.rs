//! cosign 2's signatures and attestations spread what a Sigstore bundle
//! holds over a layer and its annotations (certificate, Rekor bundle). Put
//! back in the shape of a v0.1 bundle, one verifier checks both formats.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::cosign::{BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, Candidate};
use super::rekor::{Bundle as RekorBundle, LogEntry};

/// The media type of a cosign attestation layer (a DSSE envelope).
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryKind {
    kind: String,
    api_version: String,
}

/// The Rekor entry a `dev.sigstore.cosign/bundle` annotation names.
pub fn log_entry(annotation: Option<&str>) -> Option<LogEntry> {
    let b: RekorBundle = serde_json::from_str(annotation?).ok()?;
    Some(LogEntry { log_index: b.payload.log_index, integrated_time: b.payload.integrated_time })
}

/// The verification material of a legacy layer: its certificate (or, for
/// a key signature, a key hint) and its Rekor entry, when it has them.
fn material(certificate: Option<&str>, rekor: Option<&str>) -> Result<Value, String> {
    let mut material = match certificate {
        Some(pem_text) => {
            let cert = pem::parse(pem_text).map_err(|e| format!("its certificate is not PEM: {e}"))?;
            json!({"x509CertificateChain": {"certificates": [{"rawBytes": STANDARD.encode(cert.contents())}]}})
        }
        None => json!({"publicKey": {"hint": ""}}),
    };
    material["tlogEntries"] = match rekor {
        Some(bundle) => {
            let b: RekorBundle = serde_json::from_str(bundle).map_err(|e| format!("unreadable Rekor bundle: {e}"))?;
            let body = STANDARD.decode(&b.payload.body).map_err(|_| "the Rekor entry is not base64".to_string())?;
            let kind: EntryKind = serde_json::from_slice(&body).map_err(|e| format!("unreadable Rekor entry: {e}"))?;
            let log_id = hex_decode(&b.payload.log_id).ok_or("the Rekor log ID is not hex")?;
            json!([{
                "logIndex": b.payload.log_index.to_string(),
                "logId": {"keyId": STANDARD.encode(log_id)},
                "kindVersion": {"kind": kind.kind, "version": kind.api_version},
                "integratedTime": b.payload.integrated_time.to_string(),
                "inclusionPromise": {"signedEntryTimestamp": b.set},
                "canonicalizedBody": b.payload.body,
            }])
        }
        None => json!([]),
    };
    Ok(material)
}

/// A keyless `.sig` signature as a bundle with a message signature over its payload.
pub fn signature_bundle(c: &Candidate, cert_pem: &str) -> Result<String, String> {
    let doc = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": material(Some(cert_pem), c.bundle.as_deref())?,
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": STANDARD.encode(Sha256::digest(&c.payload))},
            "signature": c.signature.trim(),
        },
    });
    Ok(doc.to_string())
}

/// An `.att` layer (a DSSE envelope and its annotations) as a bundle.
pub fn attestation_bundle(
    envelope: &[u8],
    annotations: &std::collections::BTreeMap<String, String>,
) -> Result<String, String> {
    let envelope: Value = serde_json::from_slice(envelope).map_err(|e| format!("not a DSSE envelope: {e}"))?;
    if !envelope["payload"].is_string() || !envelope["signatures"].is_array() {
        return Err("not a DSSE envelope: no payload or signatures".into());
    }
    let material = material(
        annotations.get(CERTIFICATE_ANNOTATION).map(String::as_str),
        annotations.get(BUNDLE_ANNOTATION).map(String::as_str),
    )?;
    let doc = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": material,
        "dsseEnvelope": envelope,
    });
    Ok(doc.to_string())
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}
