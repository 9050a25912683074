//! Signature verification, offline: which signatures a `verify:` policy
//! accepts for one image digest. Pure: the pipeline's verify stage fetches
//! what this module judges.
//!
//! - `keys.rs`: public keys from PEM, and signature checks (ring).
//! - `trust.rs`: a Sigstore trusted root read from a file.
//! - `rekor.rs`: a cosign signature's Rekor bundle (SET) checked offline.
//! - `cosign.rs`: cosign's `.sig` signatures and their simple-signing payload.
//! - `legacy.rs`: cosign 2's annotations put in the shape of a bundle.
//! - `pki.rs`: certificates of a private PKI (no log), checked with webpki.
//! - `keyless.rs`: Fulcio-certificate signatures, checked by the Sigstore
//!   project's verifier running on `provider.rs` (ring).
//! - `policy.rs`: the compiled policy and its verdict.

pub mod bundle;
pub mod cosign;
pub mod keyless;
pub mod keys;
pub mod legacy;
mod pki;
pub mod policy;
mod provider;
pub mod rekor;
pub mod trust;

pub use cosign::Candidate;
pub use keyless::{Keyless, Matcher};
pub use keys::PublicKey;
pub use policy::{AttestationRule, Entry, Found, Match, Mode, Tlog, Verdict, VerifyPolicy};
pub use trust::TrustedRoot;

/// What makes a key, trusted root or signature unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A public key.
    #[error("{0}")]
    Key(String),
    /// A trusted root.
    #[error("{0}")]
    TrustedRoot(String),
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
