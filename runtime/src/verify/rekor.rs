//! A cosign signature's Rekor bundle, checked offline: the log's signed
//! entry timestamp (SET) over the entry, made by a log the trusted root
//! lists while its key was valid, and an entry that records this very
//! signature, payload hash and key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::keys::PublicKey;
use super::trust::TrustedRoot;

/// Where the log put the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEntry {
    /// The entry's index in the log.
    pub log_index: i64,
    /// When the log integrated it (Unix seconds).
    pub integrated_time: i64,
}

/// cosign's `dev.sigstore.cosign/bundle` annotation: a Rekor entry and the
/// log's signed timestamp over it.
#[derive(Deserialize)]
pub(crate) struct Bundle {
    #[serde(rename = "SignedEntryTimestamp")]
    pub(crate) set: String,
    #[serde(rename = "Payload")]
    pub(crate) payload: Payload,
}

/// The entry as the log signed it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Payload {
    /// The entry (base64 JSON).
    pub(crate) body: String,
    pub(crate) integrated_time: i64,
    pub(crate) log_index: i64,
    /// SHA-256 of the log's key, hex.
    #[serde(rename = "logID")]
    pub(crate) log_id: String,
}

/// The parts of a `hashedrekord` (or `rekord`) entry that name a signature.
#[derive(Deserialize)]
struct Entry {
    kind: String,
    spec: Spec,
}

#[derive(Deserialize)]
struct Spec {
    data: Data,
    signature: Signature,
}

#[derive(Deserialize)]
struct Data {
    hash: Option<Hash>,
}

#[derive(Deserialize)]
struct Hash {
    algorithm: String,
    value: String,
}

#[derive(Deserialize)]
struct Signature {
    content: String,
    #[serde(rename = "publicKey")]
    public_key: Content,
}

#[derive(Deserialize)]
struct Content {
    content: String,
}

/// Checks `bundle` (the `dev.sigstore.cosign/bundle` annotation) for the
/// signature `sig_b64` by `key` over `payload`; the log entry, or why not.
pub fn check(
    bundle: &str,
    root: &TrustedRoot,
    payload: &[u8],
    sig_b64: &str,
    key: &PublicKey,
) -> Result<LogEntry, String> {
    let bundle: Bundle = serde_json::from_str(bundle).map_err(|e| format!("unreadable Rekor bundle: {e}"))?;
    let p = &bundle.payload;
    let log = root.log(&p.log_id).ok_or_else(|| format!("Rekor log {} is not in the trusted root", p.log_id))?;
    if !log.valid_at(p.integrated_time) {
        return Err(format!("Rekor log key was not valid at the entry's time {}", p.integrated_time));
    }
    // The SET signs the entry as canonical JSON: keys sorted, no spaces.
    let canonical = serde_json::json!({
        "body": p.body,
        "integratedTime": p.integrated_time,
        "logID": p.log_id,
        "logIndex": p.log_index,
    });
    let signed = serde_json::to_vec(&canonical).map_err(|e| e.to_string())?;
    let set = STANDARD.decode(&bundle.set).map_err(|_| "the Rekor SET is not base64".to_string())?;
    if !log.key.verifies(&signed, &set) {
        return Err("the Rekor SET does not verify with the log's key".into());
    }
    let body = STANDARD.decode(&p.body).map_err(|_| "the Rekor entry is not base64".to_string())?;
    let entry: Entry = serde_json::from_slice(&body).map_err(|e| format!("unreadable Rekor entry: {e}"))?;
    if entry.kind != "hashedrekord" && entry.kind != "rekord" {
        return Err(format!("Rekor entry of kind {} does not record a signature", entry.kind));
    }
    let hash = entry.spec.data.hash.ok_or("the Rekor entry has no payload hash")?;
    let ours = crate::verify::hex(&Sha256::digest(payload));
    if !hash.algorithm.eq_ignore_ascii_case("sha256") || !hash.value.eq_ignore_ascii_case(&ours) {
        return Err("the Rekor entry records another payload".into());
    }
    if normalized(&entry.spec.signature.content) != normalized(sig_b64) {
        return Err("the Rekor entry records another signature".into());
    }
    let named = STANDARD.decode(&entry.spec.signature.public_key.content).unwrap_or_default();
    let same_key = pem::parse(&named).is_ok_and(|b| key.is_spki(b.contents()) || certificate_key(b.contents(), key));
    if !same_key {
        return Err("the Rekor entry records another key".into());
    }
    Ok(LogEntry { log_index: p.log_index, integrated_time: p.integrated_time })
}

fn normalized(b64: &str) -> Vec<u8> {
    STANDARD.decode(b64.trim()).unwrap_or_default()
}

/// True when `der` is a certificate for `key` (entries made with a
/// certificate name it instead of the bare key).
fn certificate_key(der: &[u8], key: &PublicKey) -> bool {
    use x509_parser::prelude::FromDer;
    x509_parser::certificate::X509Certificate::from_der(der).is_ok_and(|(_, c)| key.is_spki(c.public_key().raw))
}
