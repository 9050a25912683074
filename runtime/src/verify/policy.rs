//! A step's `verify:` policy, compiled (keys and trusted roots read), and
//! its verdict on the signatures found for one digest.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use super::bundle::{KeyBundles, is_signature};
use super::cosign::{Candidate, MAX_ANNOTATION, signed_digest};
use super::keyless::Keyless;
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
    /// Keyless: who may sign, instead of keys.
    #[serde(skip)]
    pub keyless: Option<Keyless>,
    /// Key entries: how bundles signed with the keys are checked.
    #[serde(skip)]
    pub key_bundles: Option<KeyBundles>,
}

impl PartialEq for Keyless {
    // What a keyless entry accepts is its matchers and flags; its trusted
    // root is compared through the policy's fingerprint.
    fn eq(&self, other: &Self) -> bool {
        (self.subject.to_string(), self.issuer.to_string(), self.sct, self.tlog)
            == (other.subject.to_string(), other.issuer.to_string(), other.sct, other.tlog)
    }
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
    /// In-toto statements that must be attached and signed.
    pub attestations: Vec<AttestationRule>,
    /// A digest of everything the verdict depends on (keys and roots
    /// included), so a remembered verdict is never reused for another policy.
    #[serde(skip)]
    pub fingerprint: String,
}

/// One `attestations` item: a statement of this predicate type must be
/// attached to the image, signed by one of the named entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestationRule {
    /// The statement's predicate type.
    pub predicate_type: String,
    /// Entries whose signature counts; empty: any entry.
    pub signed_by: Vec<String>,
}

/// What was found attached to one digest.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// cosign `.sig` signatures.
    pub signatures: Vec<Candidate>,
    /// Sigstore bundles attached as referrers (JSON).
    pub bundles: Vec<String>,
}

/// One bundle that verified for an entry.
#[derive(Debug, Clone)]
struct Checked {
    /// Keyless: the certificate's identity and issuer.
    identity: Option<(String, String)>,
    /// Its Rekor entry.
    log: Option<LogEntry>,
    /// Its statement's predicate type (`None`: a message signature).
    predicate: Option<String>,
}

/// One bundle checked for one entry, or why it does not count.
type BundleCheck = Result<Checked, String>;

/// An entry a signature satisfied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The entry's name.
    pub entry: String,
    /// The Rekor entry, when the entry required one.
    pub log: Option<LogEntry>,
    /// Keyless: the certificate's identity and issuer.
    pub identity: Option<(String, String)>,
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
    /// The verdict on `digest` given the `.sig` signatures found for it.
    pub fn evaluate(&self, digest: &str, candidates: &[Candidate]) -> Verdict {
        self.judge(digest, &Found { signatures: candidates.to_vec(), bundles: Vec::new() })
    }

    /// The verdict on `digest` given everything found attached to it.
    pub fn judge(&self, digest: &str, found: &Found) -> Verdict {
        // Each bundle checked once per entry, for signatures and attestations alike.
        let checked: Vec<Vec<BundleCheck>> =
            self.entries.iter().map(|e| found.bundles.iter().map(|b| e.check_bundle(b, digest)).collect()).collect();
        let mut matched = Vec::new();
        let mut why = Vec::new();
        for (entry, bundles) in self.entries.iter().zip(&checked) {
            match entry.satisfied_by(digest, &found.signatures, bundles) {
                Ok(m) => matched.push(m),
                Err(reason) => why.push(format!("{}: {reason}", entry.name)),
            }
        }
        let mut accepted = matched.len() >= self.count;
        let mut reason = if accepted {
            String::new()
        } else if found.signatures.is_empty() && found.bundles.is_empty() {
            format!("no signatures found for {digest}")
        } else {
            format!("{} of {} required signature entries satisfied ({})", matched.len(), self.count, why.join("; "))
        };
        if accepted {
            for rule in &self.attestations {
                let signed = self.entries.iter().zip(&checked).any(|(entry, bundles)| {
                    (rule.signed_by.is_empty() || rule.signed_by.contains(&entry.name))
                        && bundles
                            .iter()
                            .flatten()
                            .any(|c| c.predicate.as_deref() == Some(rule.predicate_type.as_str()))
                });
                if !signed {
                    accepted = false;
                    let by =
                        if rule.signed_by.is_empty() { "any entry".to_string() } else { rule.signed_by.join(", ") };
                    reason = format!("no attestation {} signed by {by}", rule.predicate_type);
                    break;
                }
            }
        }
        Verdict { accepted, matched, reason }
    }
}

impl Entry {
    /// The first signature that satisfies this entry, or the most telling
    /// reason none does.
    fn satisfied_by(&self, digest: &str, candidates: &[Candidate], bundles: &[BundleCheck]) -> Result<Match, String> {
        let legacy = match &self.keyless {
            Some(keyless) => self.keyless_by(keyless, digest, candidates),
            None => self.keys_by(digest, candidates),
        };
        let Err(mut reason) = legacy else { return legacy };
        for b in bundles {
            match b {
                Ok(c) if is_signature(c.predicate.as_deref()) => {
                    return Ok(Match { entry: self.name.clone(), log: c.log, identity: c.identity.clone() });
                }
                Ok(_) => {}
                Err(e) => reason = format!("a bundle: {e}"),
            }
        }
        Err(reason)
    }

    /// One attached bundle, checked as this entry's.
    fn check_bundle(&self, json: &str, digest: &str) -> BundleCheck {
        if let Some(keyless) = &self.keyless {
            let (signer, predicate) = keyless.check_bundle(json, digest)?;
            return Ok(Checked { identity: Some((signer.identity, signer.issuer)), log: signer.log, predicate });
        }
        let bundles = self.key_bundles.as_ref().ok_or("bundles are not checked for this entry")?;
        let (log, predicate) = bundles.check(json, digest, &self.keys)?;
        Ok(Checked { identity: None, log, predicate })
    }

    /// A `.sig` signature by one of the entry's keys.
    fn keys_by(&self, digest: &str, candidates: &[Candidate]) -> Result<Match, String> {
        first_match(candidates.iter(), "no signature by its keys", |c| self.key_signature(c, digest))
    }

    fn key_signature(&self, c: &Candidate, digest: &str) -> Result<Option<Match>, String> {
        if c.signature.len() > MAX_ANNOTATION {
            return Err("a signature annotation is too large".into());
        }
        let sig = STANDARD.decode(c.signature.trim()).map_err(|_| "a signature is not base64".to_string())?;
        let Some(key) = self.keys.iter().find(|k| k.verifies(&c.payload, &sig)) else {
            return Ok(None);
        };
        vouches_for(&c.payload, digest)?;
        let log = match self.tlog {
            Tlog::Ignore => None,
            Tlog::Require => {
                let root = self.trusted_root.as_ref().ok_or("tlog: require needs a trustedRoot")?;
                let bundle = c.bundle.as_deref().filter(|b| b.len() <= MAX_ANNOTATION);
                let bundle = bundle.ok_or("its signature has no Rekor bundle (tlog: require)")?;
                Some(rekor::check(bundle, root, &c.payload, &c.signature, key)?)
            }
        };
        Ok(Some(Match { entry: self.name.clone(), log, identity: None }))
    }

    /// A keyless `.sig` signature the entry accepts.
    fn keyless_by(&self, keyless: &Keyless, digest: &str, candidates: &[Candidate]) -> Result<Match, String> {
        let with_certificate = candidates.iter().filter(|c| c.certificate.is_some());
        first_match(with_certificate, "no keyless signature", |c| {
            let signer = keyless.check_legacy(c)?;
            vouches_for(&c.payload, digest)?;
            let identity = Some((signer.identity, signer.issuer));
            Ok(Some(Match { entry: self.name.clone(), log: signer.log, identity }))
        })
    }
}

/// The first candidate `check` accepts (`Ok(Some)`); else the reason the
/// last refused one gave (`Err`), or `none` when none was even by the entry's
/// signer (`Ok(None)`).
fn first_match<'c>(
    candidates: impl Iterator<Item = &'c Candidate>,
    none: &str,
    mut check: impl FnMut(&'c Candidate) -> Result<Option<Match>, String>,
) -> Result<Match, String> {
    let mut reason = none.to_string();
    for c in candidates {
        match check(c) {
            Ok(Some(m)) => return Ok(m),
            Ok(None) => {}
            Err(e) => reason = e,
        }
    }
    Err(reason)
}

/// The payload vouches for `digest`, or why not.
fn vouches_for(payload: &[u8], digest: &str) -> Result<(), String> {
    match signed_digest(payload)? {
        d if d == digest => Ok(()),
        d => Err(format!("its signature vouches for {d}, not this image")),
    }
}
