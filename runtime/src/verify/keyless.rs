//! Keyless signatures: a short-lived Fulcio certificate names who signed
//! (subject) and who vouched for them (the OIDC issuer); the certificate's
//! chain, its SCT and the Rekor entry that fixes the signing time are
//! checked offline against a trusted root by the Sigstore project's
//! verifier, and the identity is then matched against the entry.
//!
//! cosign's legacy `.sig` signatures carry the same material in
//! annotations; they are put in the shape of a v0.1 Sigstore bundle (which
//! is what they are, spread out) so one verifier checks both.

use std::sync::Arc;

use sigstore_verify::{VerificationPolicy, Verifier};

use super::cosign::Candidate;
use super::rekor::LogEntry;

/// How an identity or issuer must look: exactly, or matching an anchored
/// regular expression.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Equal to this.
    Exact(String),
    /// Matching this pattern, as written (anchored when compiled).
    Pattern {
        /// The pattern as written.
        text: String,
        /// It compiled, anchored.
        regex: regex::Regex,
    },
}

impl Matcher {
    /// A pattern anchored at both ends (`^(?:…)$`), as the rest of the config's.
    pub fn pattern(text: &str) -> Result<Self, regex::Error> {
        let regex = regex::Regex::new(&format!("^(?:{text})$"))?;
        Ok(Matcher::Pattern { text: text.to_string(), regex })
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(s) => s == value,
            Matcher::Pattern { regex, .. } => regex.is_match(value),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Exact(s) => write!(f, "{s:?}"),
            Matcher::Pattern { text, .. } => write!(f, "/{text}/"),
        }
    }
}

/// A keyless entry, its trusted root prepared once.
#[derive(Clone)]
pub struct Keyless {
    /// Who may sign.
    pub subject: Matcher,
    /// Whose word for it counts.
    pub issuer: Matcher,
    /// Check the certificate's signed certificate timestamp.
    pub sct: bool,
    /// Check the Rekor entry (its SET at least).
    pub tlog: bool,
    verifier: Arc<Verifier>,
    /// The trusted root's certificate authorities (DER, intermediates
    /// first, root last), for certificates of a private PKI.
    authorities: Arc<Vec<Vec<Vec<u8>>>>,
}

impl std::fmt::Debug for Keyless {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyless").field("subject", &self.subject).field("issuer", &self.issuer).finish()
    }
}

/// Who signed, as the certificate says and the verifier checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The certificate's SAN (an email or a URI).
    pub identity: String,
    /// The OIDC issuer.
    pub issuer: String,
    /// The Rekor entry, when one was checked.
    pub log: Option<LogEntry>,
}

impl Keyless {
    /// A keyless entry checked against the trusted root in `root_json`.
    pub fn new(subject: Matcher, issuer: Matcher, sct: bool, tlog: bool, root_json: &str) -> Result<Self, String> {
        super::provider::install();
        let root = sigstore_verify::trust_root::TrustedRoot::from_json(root_json).map_err(|e| e.to_string())?;
        let verifier = Verifier::new(&root).map_err(|e| e.to_string())?;
        let authorities = Arc::new(super::pki::authorities(root_json)?);
        Ok(Keyless { subject, issuer, sct, tlog, verifier: Arc::new(verifier), authorities })
    }

    fn policy(&self) -> VerificationPolicy {
        let mut p = VerificationPolicy::any_identity();
        if !self.sct {
            p = p.skip_sct();
        }
        if !self.tlog {
            p = p.skip_tlog_unsafe();
        }
        p
    }

    /// Checks a Sigstore bundle attached to the image `digest` (a referrer):
    /// who signed it and, for an in-toto statement, its predicate type.
    pub fn check_bundle(&self, json: &str, digest: &str) -> Result<(Signer, Option<String>), String> {
        use sigstore_verify::types::{Artifact, ArtifactDigest, Sha256Hash};
        let bundle = sigstore_verify::types::Bundle::from_json(json).map_err(|e| format!("unusable bundle: {e}"))?;
        let hex = digest.strip_prefix("sha256:").ok_or("only sha256 digests are verified")?;
        let hash = Sha256Hash::from_hex(hex).map_err(|e| e.to_string())?;
        let artifact = Artifact::Digest(ArtifactDigest::sha256(hash));
        let result = self.verifier.verify(artifact, &bundle, &self.policy()).map_err(|e| e.to_string())?;
        let signer = self.authorized(&result)?;
        let doc: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let log = super::bundle::log_entry(&doc);
        Ok((Signer { log, ..signer }, super::bundle::predicate_type(&doc)))
    }

    /// The signer a verified result names, when the entry accepts them.
    fn authorized(&self, result: &sigstore_verify::VerificationResult) -> Result<Signer, String> {
        let identity = result.identity().map(|i| i.as_str().to_string()).unwrap_or_default();
        let issuer = result.issuer().unwrap_or_default().to_string();
        self.accepts(Signer { identity, issuer, log: None })
    }

    /// Checks a legacy cosign signature (certificate and Rekor bundle in
    /// annotations) over its payload; who signed it, or why it does not count.
    pub fn check_legacy(&self, c: &Candidate) -> Result<Signer, String> {
        let cert = c.certificate.as_deref().ok_or("its signature has no certificate")?;
        if !self.tlog && c.bundle.is_none() {
            // No log, no timestamp: a certificate of a private PKI, checked
            // against the root's authorities as of now.
            let (identity, issuer) = super::pki::check(c, cert, &self.authorities)?;
            let signer = Signer { identity, issuer, log: None };
            return self.accepts(signer);
        }
        let bundle = super::legacy::signature_bundle(c, cert)?;
        let bundle = sigstore_verify::types::Bundle::from_json(&bundle).map_err(|e| format!("unusable bundle: {e}"))?;
        let result = self.verifier.verify(c.payload.as_slice(), &bundle, &self.policy()).map_err(|e| e.to_string())?;
        let signer = self.authorized(&result)?;
        Ok(Signer { log: super::legacy::log_entry(c.bundle.as_deref()), ..signer })
    }

    /// `signer` when the entry's matchers accept them.
    fn accepts(&self, signer: Signer) -> Result<Signer, String> {
        if !self.subject.matches(&signer.identity) {
            return Err(format!("signed by {:?}, not {}", signer.identity, self.subject));
        }
        if !self.issuer.matches(&signer.issuer) {
            return Err(format!("identity vouched for by {:?}, not {}", signer.issuer, self.issuer));
        }
        Ok(signer)
    }
}
