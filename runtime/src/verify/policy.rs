//! A step's `verify:` policy, compiled (keys and trusted roots read), and
//! its verdict on the signatures found for one digest.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use super::cosign::{Candidate, MAX_ANNOTATION, signed_digest};
use super::keys::PublicKey;
use super::rekor::{self, LogEntry};
use super::trust::TrustedRoot;

/// What a policy does with its verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A refused image is not copied, and the run fails.
    Enforce,
    /// A refused image is copied and reported.
    Warn,
    /// Nothing is verified.
    Off,
}

impl Mode {
    /// The config spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "enforce" => Some(Mode::Enforce),
            "warn" => Some(Mode::Warn),
            "off" => Some(Mode::Off),
            _ => None,
        }
    }
}

/// Whether a signature must have been logged in a transparency log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tlog {
    /// A Rekor bundle whose SET verifies offline against the trusted root.
    Require,
    /// Whatever the log says is not looked at.
    Ignore,
}

/// One `signatures.entries` item: who may sign.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The entry's name (what logs and `signedBy` use).
    pub name: String,
    /// The key files as written.
    pub key_files: Vec<String>,
    /// The keys read from them.
    #[serde(skip)]
    pub keys: Vec<PublicKey>,
    /// The transparency-log rule.
    pub tlog: Tlog,
    /// The trusted-root file as written (empty when none).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub trusted_root_file: String,
    /// The trusted root read from it.
    #[serde(skip)]
    pub trusted_root: Option<TrustedRoot>,
}

/// A compiled `verify:` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyPolicy {
    /// What the verdict does.
    pub mode: Mode,
    /// How many entries must be satisfied.
    pub count: usize,
    /// The entries.
    pub entries: Vec<Entry>,
    /// A digest of everything the verdict depends on (keys and roots
    /// included), so a remembered verdict is never reused for another policy.
    #[serde(skip)]
    pub fingerprint: String,
}

/// An entry a signature satisfied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The entry's name.
    pub entry: String,
    /// The Rekor entry, when the entry required one.
    pub log: Option<LogEntry>,
}

/// The policy's verdict on one digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Enough entries are satisfied.
    pub accepted: bool,
    /// The entries that are.
    pub matched: Vec<Match>,
    /// Why not, when refused.
    pub reason: String,
}

impl VerifyPolicy {
    /// The verdict on `digest` given the signatures found for it.
    pub fn evaluate(&self, digest: &str, candidates: &[Candidate]) -> Verdict {
        let mut matched = Vec::new();
        let mut why = Vec::new();
        for entry in &self.entries {
            match entry.satisfied_by(digest, candidates) {
                Ok(m) => matched.push(m),
                Err(reason) => why.push(format!("{}: {reason}", entry.name)),
            }
        }
        let accepted = matched.len() >= self.count;
        let reason = if accepted {
            String::new()
        } else if candidates.is_empty() {
            format!("no signatures found for {digest}")
        } else {
            format!("{} of {} required signature entries satisfied ({})", matched.len(), self.count, why.join("; "))
        };
        Verdict { accepted, matched, reason }
    }
}

impl Entry {
    /// The first signature that satisfies this entry, or the most telling
    /// reason none does.
    fn satisfied_by(&self, digest: &str, candidates: &[Candidate]) -> Result<Match, String> {
        let mut reason = "no signature by its keys".to_string();
        for c in candidates {
            if c.signature.len() > MAX_ANNOTATION {
                reason = "a signature annotation is too large".into();
                continue;
            }
            let Ok(sig) = STANDARD.decode(c.signature.trim()) else {
                reason = "a signature is not base64".into();
                continue;
            };
            let Some(key) = self.keys.iter().find(|k| k.verifies(&c.payload, &sig)) else {
                continue;
            };
            match signed_digest(&c.payload) {
                Ok(d) if d == digest => {}
                Ok(d) => {
                    reason = format!("its signature vouches for {d}, not this image");
                    continue;
                }
                Err(e) => {
                    reason = e;
                    continue;
                }
            }
            let log = match self.tlog {
                Tlog::Ignore => None,
                Tlog::Require => {
                    let root = self.trusted_root.as_ref().ok_or("tlog: require needs a trustedRoot")?;
                    let Some(bundle) = c.bundle.as_deref().filter(|b| b.len() <= MAX_ANNOTATION) else {
                        reason = "its signature has no Rekor bundle (tlog: require)".into();
                        continue;
                    };
                    match rekor::check(bundle, root, &c.payload, &c.signature, key) {
                        Ok(log) => Some(log),
                        Err(e) => {
                            reason = e;
                            continue;
                        }
                    }
                }
            };
            return Ok(Match { entry: self.name.clone(), log });
        }
        Err(reason)
    }
}
