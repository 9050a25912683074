//! `verify:` compiled: key files and trusted roots read (relative paths
//! against the config's directory), every value checked, so a policy that
//! could not be applied stops the load instead of letting images through.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::diagnostic::Diagnostics;
use super::raw::{RawKeyless, RawVerify, RawVerifyEntry};
use super::yaml::Pos;
use crate::verify::bundle::KeyBundles;
use crate::verify::{AttestationRule, Entry, Keyless, Matcher, Mode, PublicKey, Tlog, TrustedRoot, VerifyPolicy};

/// The policy of one `verify:` block at `path`, or `None` (with errors in
/// `diags`) when it cannot be applied.
pub(crate) fn policy(raw: &RawVerify, path: &str, base_dir: &Path, diags: &mut Diagnostics) -> Option<VerifyPolicy> {
    let before = diags.error_count();
    let mode = match &raw.mode {
        None => Mode::Enforce,
        Some(m) => Mode::parse(&m.value).unwrap_or_else(|| {
            diags.error(
                m.pos,
                format!("{path}.mode"),
                format!("unknown mode \"{}\": one of enforce, warn, off", m.value),
            );
            Mode::Enforce
        }),
    };
    let entries_path = format!("{path}.signatures.entries");
    let mut fingerprint = Sha256::new();
    let mut entries: Vec<Entry> = Vec::new();
    for (i, e) in raw.entries.iter().enumerate() {
        if let Some(entry) = entry(e, &format!("{entries_path}[{i}]"), base_dir, diags, &mut fingerprint) {
            if entries.iter().any(|other| other.name == entry.name) {
                diags.error(
                    e.pos,
                    format!("{entries_path}[{i}].name"),
                    format!("entry \"{}\" is named twice", entry.name),
                );
            }
            entries.push(entry);
        }
    }
    if raw.entries.is_empty() && mode != Mode::Off {
        diags.error(raw.pos, &entries_path, "a verify policy needs at least one signature entry (keys or keyless)");
    }
    // With attestations, the entries may be there only to sign them: count 0.
    let least = if raw.attestations.is_empty() { 1 } else { 0 };
    let count = match &raw.count {
        None => raw.entries.len(),
        Some(c) if c.value >= least && (c.value as usize) <= raw.entries.len() => c.value as usize,
        Some(c) => {
            let entries = raw.entries.len();
            let msg = format!("count must be between {least} and the number of entries ({entries}), found {}", c.value);
            diags.error(c.pos, format!("{path}.signatures.count"), msg);
            0
        }
    };
    for (i, a) in raw.attestations.iter().enumerate() {
        let ap = format!("{path}.attestations[{i}]");
        if a.predicate_type.as_ref().is_none_or(|p| p.value.is_empty()) {
            diags.error(a.pos, format!("{ap}.predicateType"), "predicateType is required");
        }
        for (j, name) in a.signed_by.iter().enumerate() {
            if !raw.entries.iter().any(|e| e.name.as_ref().is_some_and(|n| n.value == name.value)) {
                let msg = format!("\"{}\" is not the name of a signature entry", name.value);
                diags.error(name.pos, format!("{ap}.signedBy[{j}]"), msg);
            }
        }
    }
    let attestations: Vec<AttestationRule> = raw
        .attestations
        .iter()
        .map(|a| AttestationRule {
            predicate_type: a.predicate_type.as_ref().map(|p| p.value.clone()).unwrap_or_default(),
            signed_by: a.signed_by.iter().map(|s| s.value.clone()).collect(),
        })
        .collect();
    for a in &attestations {
        fingerprint.update(format!("attestation {} {:?}\n", a.predicate_type, a.signed_by));
    }
    if diags.error_count() > before {
        return None;
    }
    if mode != Mode::Off {
        let msg = "signature policy on: stock regsync ignores verify and would copy these images unverified";
        diags.warn(raw.pos, path, msg);
    }
    fingerprint.update(format!("{mode:?}/{count}"));
    Some(VerifyPolicy { mode, count, entries, attestations, fingerprint: crate::verify::hex(&fingerprint.finalize()) })
}

fn entry(
    raw: &RawVerifyEntry,
    path: &str,
    base_dir: &Path,
    diags: &mut Diagnostics,
    fingerprint: &mut Sha256,
) -> Option<Entry> {
    let name = match &raw.name {
        Some(n) if !n.value.is_empty() => n.value.clone(),
        _ => {
            diags.error(raw.pos, format!("{path}.name"), "an entry needs a name");
            String::new()
        }
    };
    fingerprint.update(format!("entry {name}\n"));
    let tlog = match &raw.tlog {
        None => Tlog::Require,
        Some(t) => match t.value.as_str() {
            "require" => Tlog::Require,
            "ignore" => Tlog::Ignore,
            other => {
                diags.error(t.pos, format!("{path}.tlog"), format!("unknown tlog \"{other}\": require or ignore"));
                Tlog::Require
            }
        },
    };
    fingerprint.update(format!("{tlog:?}\n"));
    let mut root_text = None;
    let trusted_root = raw.trusted_root.as_ref().and_then(|f| {
        let file = base_dir.join(&f.value);
        let text = read(&file, f.pos, &format!("{path}.trustedRoot"), diags)?;
        fingerprint.update(&text);
        match TrustedRoot::parse(&text) {
            Ok(root) => {
                if root.expired(chrono::Utc::now()) {
                    let msg = format!("every log key in {} is past its validity", file.display());
                    diags.warn(f.pos, format!("{path}.trustedRoot"), msg);
                }
                root_text = Some((String::from_utf8_lossy(&text).into_owned(), f.pos, file));
                Some(root)
            }
            Err(e) => {
                diags.error(f.pos, format!("{path}.trustedRoot"), format!("{}: {e}", file.display()));
                None
            }
        }
    });
    let keyless = raw.keyless.as_ref().and_then(|k| {
        // Everything a keyless verdict depends on, as written (not where it was written).
        let text = |f: &super::raw::Field<String>| f.as_ref().map(|s| s.value.clone());
        let parts =
            [text(&k.issuer), text(&k.issuer_reg_exp), text(&k.subject), text(&k.subject_reg_exp), text(&raw.sct)];
        fingerprint.update(format!("keyless {parts:?}\n"));
        keyless(k, raw, path, tlog, root_text.as_ref(), diags)
    });
    let mut keys = Vec::new();
    match (&raw.keys, &raw.keyless) {
        (None, None) => diags.error(raw.pos, path, "an entry needs keys or keyless"),
        (Some(_), Some(k)) => diags.error(k.pos, path, "keys and keyless exclude each other: one per entry"),
        (Some(list), None) if list.is_empty() => diags.error(raw.pos, format!("{path}.keys"), "keys is empty"),
        _ => {}
    }
    for (i, k) in raw.keys.iter().flatten().enumerate() {
        let kp = format!("{path}.keys[{i}]");
        let file = base_dir.join(&k.value);
        let Some(text) = read(&file, k.pos, &kp, diags) else { continue };
        fingerprint.update(&text);
        match PublicKey::from_pem(&text) {
            Ok(key) => keys.push(key),
            Err(e) => diags.error(k.pos, kp, format!("{}: {e}", file.display())),
        }
    }
    if raw.keyless.is_none() && raw.keys.is_some() && tlog == Tlog::Require && raw.trusted_root.is_none() {
        let msg = "tlog: require checks the Rekor entry against a trustedRoot (a Sigstore trusted_root.json); \
                   give one, or set tlog: ignore";
        diags.error(raw.pos, format!("{path}.trustedRoot"), msg);
    }
    let key_bundles = match (&raw.keyless, keys.is_empty()) {
        (None, false) => key_bundles(root_text.as_ref(), tlog, path, raw.pos, diags),
        _ => None,
    };
    Some(Entry {
        name,
        key_files: raw.keys.iter().flatten().map(|k| k.value.clone()).collect(),
        keys,
        tlog,
        trusted_root_file: raw.trusted_root.as_ref().map(|f| f.value.clone()).unwrap_or_default(),
        trusted_root,
        key_bundles,
        keyless,
    })
}

/// A keyless block: exactly one of each matcher, anchored patterns, and a
/// trusted root the Sigstore verifier accepts.
fn keyless(
    k: &RawKeyless,
    entry: &RawVerifyEntry,
    path: &str,
    tlog: Tlog,
    root: Option<&(String, Pos, std::path::PathBuf)>,
    diags: &mut Diagnostics,
) -> Option<Keyless> {
    let kp = format!("{path}.keyless");
    let mut matchers = Vec::new();
    for (exact, pattern, what) in
        [(&k.subject, &k.subject_reg_exp, "subject"), (&k.issuer, &k.issuer_reg_exp, "issuer")]
    {
        match (exact, pattern) {
            (None, None) => diags.error(k.pos, &kp, format!("keyless needs {what} or {what}RegExp")),
            (Some(_), Some(p)) => {
                diags.error(p.pos, &kp, format!("{what} and {what}RegExp exclude each other"));
            }
            (None, Some(p)) => match Matcher::pattern(&p.value) {
                Ok(m) => matchers.push(m),
                Err(e) => diags.error(p.pos, format!("{kp}.{what}RegExp"), format!("invalid regular expression: {e}")),
            },
            (Some(s), None) => matchers.push(Matcher::Exact(s.value.clone())),
        }
    }
    let sct = match &entry.sct {
        None => true,
        Some(s) => match s.value.as_str() {
            "require" => true,
            "ignore" => false,
            other => {
                diags.error(s.pos, format!("{path}.sct"), format!("unknown sct \"{other}\": require or ignore"));
                true
            }
        },
    };
    if entry.trusted_root.is_none() {
        diags.error(
            k.pos,
            format!("{path}.trustedRoot"),
            "keyless entries need a trustedRoot (a Sigstore trusted_root.json)",
        );
    }
    let (text, pos, file) = root?;
    let [subject, issuer]: [Matcher; 2] = matchers.try_into().ok()?;
    match Keyless::new(subject, issuer, sct, tlog == Tlog::Require, text) {
        Ok(k) => Some(k),
        Err(e) => {
            diags.error(*pos, format!("{path}.trustedRoot"), format!("{}: {e}", file.display()));
            None
        }
    }
}

/// How bundles signed with an entry's keys are checked: against its
/// trusted root's logs, or (with `tlog: ignore` and no root) against none.
fn key_bundles(
    root: Option<&(String, Pos, std::path::PathBuf)>,
    tlog: Tlog,
    path: &str,
    pos: Pos,
    diags: &mut Diagnostics,
) -> Option<KeyBundles> {
    match KeyBundles::new(root.map(|(text, _, _)| text.as_str()), tlog == Tlog::Require) {
        Ok(b) => Some(b),
        Err(e) => {
            let (pos, file) = root.map_or((pos, String::new()), |(_, p, f)| (*p, format!("{}: ", f.display())));
            diags.error(pos, format!("{path}.trustedRoot"), format!("{file}{e}"));
            None
        }
    }
}

fn read(file: &Path, pos: Pos, path: &str, diags: &mut Diagnostics) -> Option<Vec<u8>> {
    // A key or root file is small; a huge one is a mistake, not a key.
    const MAX: u64 = 4 * 1024 * 1024;
    match std::fs::metadata(file) {
        Ok(m) if m.len() > MAX => {
            diags.error(pos, path, format!("{} is larger than 4 MiB", file.display()));
            return None;
        }
        _ => {}
    }
    match std::fs::read(file) {
        Ok(text) => Some(text),
        Err(e) => {
            diags.error(pos, path, format!("cannot read {}: {e}", file.display()));
            None
        }
    }
}
