//! Signature verification against real third-party signatures, offline:
//! containers/image's cosign fixtures and the Sigstore public-good trusted
//! root, read from `../shared/fixtures/sigstore/` (never copied here), each
//! with the verdict its README documents.

use std::collections::BTreeMap;
use std::path::Path;

use regsync::verify::{
    AttestationRule, Candidate, Entry, Found, Keyless, Matcher, Mode, PublicKey, Tlog, TrustedRoot, Verdict,
    VerifyPolicy,
};
use regsync_tests::oci::sha256_digest;
use regsync_tests::shared::sigstore_fixtures;

/// One `signature-N` file: `\0sigstore-json\n` and a JSON object holding the
/// base64 payload and the layer's annotations.
fn candidate(file: &Path) -> Option<Candidate> {
    use base64::Engine;
    let bytes = std::fs::read(file).unwrap();
    let json = bytes.strip_prefix(b"\x00sigstore-json\n").expect("sigstore-json prefix");
    let doc: serde_json::Value = serde_json::from_slice(json).unwrap();
    let payload = base64::engine::general_purpose::STANDARD.decode(doc["payload"].as_str().unwrap()).unwrap();
    let annotations: BTreeMap<String, String> = serde_json::from_value(doc["annotations"].clone()).unwrap_or_default();
    Candidate::of_layer(payload, &annotations)
}

fn policy(dir: &Path, key: &str, tlog: Tlog) -> VerifyPolicy {
    let key = PublicKey::from_pem(&std::fs::read(dir.join(key)).unwrap()).unwrap();
    let root = sigstore_fixtures("cosign")
        .map(|c| TrustedRoot::parse(&std::fs::read(c.join("trusted_root_pgi.json")).unwrap()).unwrap());
    VerifyPolicy {
        mode: Mode::Enforce,
        count: 1,
        entries: vec![Entry {
            name: "fixture".into(),
            key_files: vec![],
            keys: vec![key],
            tlog,
            trusted_root_file: String::new(),
            trusted_root: root,
            keyless: None,
            key_bundles: None,
        }],
        attestations: vec![],
        fingerprint: "test".into(),
    }
}

/// The verdict on an image folder: its manifest's digest, its signatures.
fn verdict(dir: &Path, image: &str, policy: &VerifyPolicy) -> Verdict {
    let folder = dir.join(image);
    let digest = sha256_digest(&std::fs::read(folder.join("manifest.json")).unwrap());
    let mut found = Vec::new();
    for n in 1.. {
        let file = folder.join(format!("signature-{n}"));
        if !file.exists() {
            break;
        }
        found.extend(candidate(&file));
    }
    policy.evaluate(&digest, &found)
}

#[test]
fn containers_image_key_signatures_get_their_documented_verdicts() {
    let Some(dir) = sigstore_fixtures("containers-image") else { return };
    let key = policy(&dir, "cosign.pub", Tlog::Ignore);
    for ok in
        ["dir-img-cosign-valid", "dir-img-cosign-valid-2", "dir-img-cosign-valid-with-tag", "dir-img-cosign-mixed"]
    {
        let v = verdict(&dir, ok, &key);
        assert!(v.accepted, "{ok}: {}", v.reason);
        assert_eq!(v.matched[0].entry, "fixture");
    }
    let modified = verdict(&dir, "dir-img-cosign-modified-manifest", &key);
    assert!(!modified.accepted && modified.reason.contains("vouches for sha256:"), "{}", modified.reason);
    let schema1 = verdict(&dir, "dir-img-cosign-manifest-digest-error", &key);
    assert!(!schema1.accepted, "a schema-1 manifest's digest cannot match: {}", schema1.reason);
    // Text that carries the signature annotation without being signed.
    let attachment = verdict(&dir, "dir-img-cosign-other-attachment", &key);
    assert!(!attachment.accepted && attachment.reason.contains("no signature by its keys"), "{}", attachment.reason);

    // A signature by a key nobody trusts, over the valid image's digest.
    let unknown = candidate(&dir.join("unknown-cosign-key.signature")).unwrap();
    let digest = sha256_digest(&std::fs::read(dir.join("dir-img-cosign-valid/manifest.json")).unwrap());
    let v = key.evaluate(&digest, &[unknown]);
    assert!(!v.accepted && v.reason.contains("no signature by its keys"), "{}", v.reason);

    // The Rekor-logged image is signed by the other key.
    let v = verdict(&dir, "dir-img-cosign-key-rekor-valid", &key);
    assert!(!v.accepted, "another key");
}

#[test]
fn a_real_rekor_set_verifies_offline_against_the_public_good_trusted_root() {
    let Some(dir) = sigstore_fixtures("containers-image") else { return };
    if sigstore_fixtures("cosign").is_none() {
        return;
    }
    let logged = policy(&dir, "cosign2.pub", Tlog::Require);
    let v = verdict(&dir, "dir-img-cosign-key-rekor-valid", &logged);
    assert!(v.accepted, "{}", v.reason);
    let log = v.matched[0].log.expect("the Rekor entry is reported");
    assert!(log.log_index > 0 && log.integrated_time > 1_600_000_000, "{log:?}");

    // The same key without a logged signature: tlog: require refuses it.
    let unlogged = policy(&dir, "cosign.pub", Tlog::Require);
    let v = verdict(&dir, "dir-img-cosign-valid", &unlogged);
    assert!(!v.accepted && v.reason.contains("no Rekor bundle"), "{}", v.reason);

    // A Rekor bundle whose SET was made for another entry does not verify.
    let folder = dir.join("dir-img-cosign-key-rekor-valid");
    let mut c = candidate(&folder.join("signature-1")).unwrap();
    let mut bundle: serde_json::Value = serde_json::from_str(c.bundle.as_deref().unwrap()).unwrap();
    bundle["Payload"]["logIndex"] = serde_json::json!(bundle["Payload"]["logIndex"].as_i64().unwrap() + 1);
    c.bundle = Some(bundle.to_string());
    let digest = sha256_digest(&std::fs::read(folder.join("manifest.json")).unwrap());
    let v = logged.evaluate(&digest, &[c]);
    assert!(!v.accepted && v.reason.contains("SET does not verify"), "{}", v.reason);
}

#[test]
fn the_public_good_trusted_root_parses_and_is_current() {
    let Some(dir) = sigstore_fixtures("cosign") else { return };
    let root = TrustedRoot::parse(&std::fs::read(dir.join("trusted_root_pgi.json")).unwrap()).unwrap();
    assert!(!root.tlogs.is_empty());
    assert!(!root.expired(chrono::Utc::now()));
}

fn keyless_policy(subject: Matcher, issuer: Matcher, sct: bool) -> Option<VerifyPolicy> {
    let root = std::fs::read_to_string(sigstore_fixtures("cosign")?.join("trusted_root_pgi.json")).unwrap();
    let keyless = Keyless::new(subject, issuer, sct, true, &root).unwrap();
    Some(one_keyless_entry("upstream", keyless, Tlog::Require))
}

/// A policy of one keyless entry, satisfied once.
fn one_keyless_entry(name: &str, keyless: Keyless, tlog: Tlog) -> VerifyPolicy {
    VerifyPolicy {
        mode: Mode::Enforce,
        count: 1,
        entries: vec![Entry {
            name: name.into(),
            key_files: vec![],
            keys: vec![],
            tlog,
            trusted_root_file: String::new(),
            trusted_root: None,
            keyless: Some(keyless),
            key_bundles: None,
        }],
        attestations: vec![],
        fingerprint: "test".into(),
    }
}

#[test]
fn a_real_keyless_signature_verifies_offline_with_its_identity() {
    let Some(dir) = sigstore_fixtures("containers-image") else { return };
    let github = || Matcher::Exact("https://github.com/login/oauth".into());
    let Some(exact) = keyless_policy(Matcher::Exact("mitr@redhat.com".into()), github(), true) else { return };
    let v = verdict(&dir, "dir-img-cosign-fulcio-rekor-valid", &exact);
    assert!(v.accepted, "{}", v.reason);
    let m = &v.matched[0];
    assert_eq!(
        m.identity.as_ref().unwrap(),
        &("mitr@redhat.com".to_string(), "https://github.com/login/oauth".to_string())
    );
    assert!(m.log.is_some_and(|l| l.log_index > 0), "{m:?}");

    let pattern = keyless_policy(Matcher::pattern(".*@redhat\\.com").unwrap(), github(), true).unwrap();
    assert!(verdict(&dir, "dir-img-cosign-fulcio-rekor-valid", &pattern).accepted);
    // Anchored: a pattern matching only part of the identity does not do.
    let partial = keyless_policy(Matcher::pattern("mitr").unwrap(), github(), true).unwrap();
    let v = verdict(&dir, "dir-img-cosign-fulcio-rekor-valid", &partial);
    assert!(!v.accepted && v.reason.contains("signed by \"mitr@redhat.com\""), "{}", v.reason);
    let other_issuer = keyless_policy(
        Matcher::Exact("mitr@redhat.com".into()),
        Matcher::Exact("https://accounts.google.com".into()),
        true,
    )
    .unwrap();
    let v = verdict(&dir, "dir-img-cosign-fulcio-rekor-valid", &other_issuer);
    assert!(!v.accepted && v.reason.contains("vouched for by \"https://github.com/login/oauth\""), "{}", v.reason);
    // Key-signed images carry no certificate: nothing keyless to check.
    let v = verdict(&dir, "dir-img-cosign-valid", &exact);
    assert!(!v.accepted && v.reason.contains("no keyless signature"), "{}", v.reason);
}

#[test]
fn a_real_keyless_attestation_bundle_verifies_offline_and_its_predicate_type_is_checked() {
    let Some(dir) = sigstore_fixtures("cosign") else { return };
    let bundle = std::fs::read_to_string(dir.join("oci-attestation.sigstore.json")).unwrap();
    let digest = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4";
    let github = || Matcher::Exact("https://github.com/login/oauth".into());
    let rule =
        |predicate: &str| AttestationRule { predicate_type: predicate.into(), signed_by: vec!["upstream".into()] };
    let mut policy = keyless_policy(Matcher::Exact("cody@soyland.com".into()), github(), true).unwrap();
    policy.count = 0;
    policy.attestations = vec![rule("https://cosign.sigstore.dev/attestation/v1")];
    let found = Found { signatures: vec![], bundles: vec![bundle.clone()] };
    let v = policy.judge(digest, &found);
    assert!(v.accepted, "{}", v.reason);

    policy.attestations = vec![rule("https://slsa.dev/provenance/v1")];
    let v = policy.judge(digest, &found);
    assert!(
        !v.accepted && v.reason.contains("no attestation https://slsa.dev/provenance/v1 signed by upstream"),
        "{}",
        v.reason
    );

    // The statement names another image: it attests nothing about this one.
    policy.attestations = vec![rule("https://cosign.sigstore.dev/attestation/v1")];
    let other = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    assert!(!policy.judge(other, &found).accepted);

    // An attestation is not a signature: an entry needing one stays unsatisfied.
    policy.count = 1;
    policy.attestations.clear();
    let v = policy.judge(digest, &found);
    assert!(!v.accepted && v.reason.contains("0 of 1"), "{}", v.reason);

    // Someone else's identity.
    let mut wrong = keyless_policy(Matcher::Exact("someone@example.com".into()), github(), true).unwrap();
    wrong.count = 0;
    wrong.attestations = vec![rule("https://cosign.sigstore.dev/attestation/v1")];
    assert!(!wrong.judge(digest, &found).accepted);
}

/// A trusted root whose one certificate authority is the fixture's private
/// PKI (intermediates first, root last), as a user would write it.
fn pki_root(dir: &Path) -> String {
    use base64::Engine;
    let mut chain = Vec::new();
    for file in ["pki_intermediate_crts.pem", "pki_root_crts.pem"] {
        for block in pem::parse_many(std::fs::read(dir.join(file)).unwrap()).unwrap() {
            chain.push(
                serde_json::json!({"rawBytes": base64::engine::general_purpose::STANDARD.encode(block.contents())}),
            );
        }
    }
    serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [], "ctlogs": [], "timestampAuthorities": [],
        "certificateAuthorities": [{"subject": {"commonName": "Linuxera Root Certificate Authority"}, "uri": "https://pki.test",
            "certChain": {"certificates": chain}, "validFor": {"start": "2024-01-01T00:00:00Z"}}]
    })
    .to_string()
}

fn pki_policy(root: &str, subject: &str) -> VerifyPolicy {
    let keyless =
        Keyless::new(Matcher::Exact(subject.into()), Matcher::pattern(".*").unwrap(), false, false, root).unwrap();
    one_keyless_entry("pki", keyless, Tlog::Ignore)
}

#[test]
fn a_private_pki_signature_verifies_against_its_root_and_identity() {
    let Some(dir) = sigstore_fixtures("containers-image") else { return };
    let root = pki_root(&dir);
    let v = verdict(&dir, "dir-img-cosign-pki-valid", &pki_policy(&root, "qiwan@redhat.com"));
    assert!(v.accepted, "{}", v.reason);
    assert_eq!(v.matched[0].identity.as_ref().unwrap().0, "qiwan@redhat.com");
    let v = verdict(&dir, "dir-img-cosign-pki-valid", &pki_policy(&root, "someone@example.com"));
    assert!(!v.accepted && v.reason.contains("signed by \"qiwan@redhat.com\""), "{}", v.reason);
    // The public-good root does not vouch for this PKI.
    let public = std::fs::read_to_string(sigstore_fixtures("cosign").unwrap().join("trusted_root_pgi.json")).unwrap();
    let v = verdict(&dir, "dir-img-cosign-pki-valid", &pki_policy(&public, "qiwan@redhat.com"));
    assert!(!v.accepted && v.reason.contains("does not chain to the trusted root"), "{}", v.reason);
}
