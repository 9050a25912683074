//! The verify stage against a real registry: cosign signatures made in test
//! code (ECDSA P-256/P-384, Ed25519) pushed beside their images; only what
//! the policy accepts reaches the target, the rest is refused with a reason
//! and exit 1, and an up-to-date image costs no extra request.

use std::path::Path;

use regsync_tests::bin::{once_with, plain_creds, run_in};
use regsync_tests::fixtures::{AMD64, ARM64, Layout};
use regsync_tests::oci::{Descriptor, LayoutReader, RegistryHttp};
use regsync_tests::proxy::FaultProxy;
use regsync_tests::registry::Registry;
use regsync_tests::signing::{Signer, sign};

/// The source repository `app`: `signed` (by `a`), `unsigned`, `wrongkey`
/// (by `b`), `otherdigest` (by `a`, but vouching for `signed`'s digest),
/// `bsigned` (by `c`), `multi` (an index signed by `a`) and `multiraw` (an
/// index nobody signed). The digests by tag.
fn source(
    dir: &Path,
    reg: &Registry,
    a: &Signer,
    b: &Signer,
    c: &Signer,
) -> std::collections::BTreeMap<String, Descriptor> {
    let mut l = Layout::create(dir.join("layout"));
    let mut images = std::collections::BTreeMap::new();
    for (i, tag) in ["signed", "unsigned", "wrongkey", "otherdigest", "bsigned"].iter().enumerate() {
        let d = l.image(AMD64, &[("f", format!("{tag}{i}").as_bytes())]);
        l.tag(tag, &d);
        images.insert(tag.to_string(), d);
    }
    sign(&mut l, &images["signed"], &images["signed"].digest, &[a]);
    sign(&mut l, &images["wrongkey"], &images["wrongkey"].digest, &[b]);
    sign(&mut l, &images["otherdigest"], &images["signed"].digest, &[a]);
    sign(&mut l, &images["bsigned"], &images["bsigned"].digest, &[c]);
    for (tag, signed) in [("multi", true), ("multiraw", false)] {
        let children = [l.image(AMD64, &[("m", tag.as_bytes())]), l.image(ARM64, &[("n", tag.as_bytes())])];
        let index = l.index(&children, None);
        l.tag(tag, &index);
        if signed {
            sign(&mut l, &index, &index.digest, &[a]);
        }
        images.insert(tag.to_string(), index);
    }
    publish(&l, &reg.api());
    images
}

struct Keys {
    a: Signer,
    b: Signer,
    c: Signer,
}

fn keys(dir: &Path) -> Keys {
    let keys = Keys { a: Signer::p256(), b: Signer::ed25519(), c: Signer::p384() };
    keys.a.write_public(&dir.join("a.pub"));
    keys.b.write_public(&dir.join("b.pub"));
    keys.c.write_public(&dir.join("c.pub"));
    keys
}

fn tags(reg: &Registry, repo: &str) -> Vec<String> {
    let mut t = reg.api().tags(repo);
    t.sort();
    t
}

fn digest_of(reg: &Registry, repo: &str, tag: &str) -> Option<String> {
    reg.api().manifest(repo, tag).map(|(_, _, digest)| digest)
}

fn config(src: &str, dst: &str, verify: &str, extra: &str) -> String {
    format!(
        "{creds}sync:\n  - source: {src}/app\n    target: {dst}/app\n    type: repository\n    tags:\n      allow: [\"^[a-z]+$\"]\n{extra}    verify:\n{verify}",
        creds = plain_creds(&[src, dst]),
    )
}

const KEY_A: &str = "      signatures:\n        entries:\n          - name: team\n            keys: [a.pub]\n            tlog: ignore\n";

/// A keyless entry for `dev@example.com` of the test Sigstore (`root.json`).
const KEYLESS_DEV: &str = "          - name: upstream\n            keyless:\n              subject: dev@example.com\n              issuer: https://issuer.test\n            sct: ignore\n            trustedRoot: root.json\n";

/// One small image per tag in `l`, tagged; their descriptors by tag.
fn tagged_images<'t>(l: &mut Layout, tags: &[&'t str]) -> std::collections::BTreeMap<&'t str, Descriptor> {
    let mut images = std::collections::BTreeMap::new();
    for tag in tags {
        let d = l.image(AMD64, &[("f", tag.as_bytes())]);
        l.tag(tag, &d);
        images.insert(*tag, d);
    }
    images
}

/// Writes `l` and pushes it into the repository `app` through `api`.
fn publish(l: &Layout, api: &RegistryHttp) {
    l.save();
    api.push_layout(&LayoutReader::open(l.dir()), "app").unwrap();
}

/// Asserts the report has `tag` refused, its reason containing `why`.
fn refused(a: &std::collections::BTreeMap<String, (String, String)>, tag: &str, why: &str) {
    assert_eq!(a[tag].0, "refused", "{tag}: {:?}", a[tag]);
    assert!(a[tag].1.contains(why), "{tag}: {:?}", a[tag]);
}

#[test]
fn only_images_the_policy_accepts_are_copied_and_the_rest_refused_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(dir.path());
    let (src, dst) = (Registry::start(), Registry::start());
    let images = source(dir.path(), &src, &k.a, &k.b, &k.c);
    let yaml = config(&src.host, &dst.host, KEY_A, "");
    let run = once_with(dir.path(), &yaml, &["--format", "json"]);
    assert_eq!(run.code, 1, "refusals fail the run\n{}", run.stderr);
    assert_eq!(tags(&dst, "app"), ["multi", "signed"], "{}", run.stderr);
    assert_eq!(digest_of(&dst, "app", "signed").unwrap(), images["signed"].digest);
    assert_eq!(digest_of(&dst, "app", "multi").unwrap(), images["multi"].digest);
    let a = run.actions();
    assert_eq!(a["signed"].0, "copied");
    for (tag, why) in [
        ("unsigned", "no signatures found for sha256:"),
        ("multiraw", "no signatures found"),
        ("wrongkey", "team: no signature by its keys"),
        ("bsigned", "team: no signature by its keys"),
        ("otherdigest", &format!("vouches for {}, not this image", images["signed"].digest)),
    ] {
        refused(&a, tag, why);
    }
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["counts"]["refused"], 5, "{}", run.stdout);
    assert!(run.stderr.contains("Image refused by the signature policy"), "{}", run.stderr);
    assert!(run.stderr.contains("entry=team") && run.stderr.contains("Signature verified"), "{}", run.stderr);
    assert!(run.stderr.contains("stock regsync ignores verify"), "the start-up warning: {}", run.stderr);
    // Nothing of a refused image was written, not even a blob of it.
    let target_blobs = |d: &Descriptor| dst.api().manifest("app", &d.digest).is_some();
    assert!(!target_blobs(&images["unsigned"]) && !target_blobs(&images["otherdigest"]));

    // The text summary names the refusals too.
    let text = once_with(dir.path(), &yaml, &[]);
    assert_eq!(text.code, 1);
    assert!(text.stdout.contains("5 failed (5 refused by the signature policy)"), "{}", text.stdout);
}

#[test]
fn warn_mode_copies_what_it_would_refuse_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(dir.path());
    let (src, dst) = (Registry::start(), Registry::start());
    let images = source(dir.path(), &src, &k.a, &k.b, &k.c);
    let verify = format!("      mode: warn\n{KEY_A}");
    let run = once_with(dir.path(), &config(&src.host, &dst.host, &verify, ""), &["--format", "json"]).expect_ok();
    assert_eq!(digest_of(&dst, "app", "unsigned").unwrap(), images["unsigned"].digest);
    let a = run.actions();
    assert_eq!(a["unsigned"].0, "copied");
    assert!(
        a["unsigned"].1.contains("copied unverified (verify mode warn): no signatures found"),
        "{:?}",
        a["unsigned"]
    );
    assert!(!a["signed"].1.contains("unverified"), "{:?}", a["signed"]);
    assert!(run.stderr.contains("copying anyway (mode: warn)"), "{}", run.stderr);
}

#[test]
fn count_says_how_many_entries_must_be_satisfied() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(dir.path());
    let (src, dst) = (Registry::start(), Registry::start());
    source(dir.path(), &src, &k.a, &k.b, &k.c);
    let two = "          - name: team\n            keys: [a.pub]\n            tlog: ignore\n          - name: upstream\n            keys: [b.pub, c.pub]\n            tlog: ignore\n";
    let any = format!("      signatures:\n        count: 1\n        entries:\n{two}");
    let run = once_with(dir.path(), &config(&src.host, &dst.host, &any, ""), &["--format", "json"]);
    let a = run.actions();
    for tag in ["signed", "wrongkey", "bsigned", "multi"] {
        assert_eq!(a[tag].0, "copied", "{tag} has one of the two: {:?}", a[tag]);
    }
    assert_eq!(a["unsigned"].0, "refused");

    let dst2 = Registry::start();
    let all = format!("      signatures:\n        entries:\n{two}");
    let run = once_with(dir.path(), &config(&src.host, &dst2.host, &all, ""), &["--format", "json"]);
    let a = run.actions();
    assert_eq!(a["signed"].0, "refused", "both entries are needed by default");
    assert!(a["signed"].1.contains("1 of 2 required signature entries satisfied"), "{:?}", a["signed"]);
    assert!(tags(&dst2, "app").is_empty());
}

#[test]
fn a_signed_index_covers_the_platform_child_it_lists_and_check_reports_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(dir.path());
    let (src, dst) = (Registry::start(), Registry::start());
    source(dir.path(), &src, &k.a, &k.b, &k.c);
    let step = |tag: &str| {
        format!(
            "  - source: {s}/app:{tag}\n    target: {t}/app:{tag}\n    type: image\n    platform: linux/arm64\n    verify:\n{KEY_A}",
            s = src.host,
            t = dst.host
        )
    };
    let yaml = format!("{}sync:\n{}{}", plain_creds(&[&src.host, &dst.host]), step("multi"), step("multiraw"));
    std::fs::write(dir.path().join("regsync.yml"), &yaml).unwrap();
    let check = run_in(dir.path(), &["check", "-c", "regsync.yml"], None);
    assert_eq!(check.code, 1, "{}", check.stderr);
    assert!(check.stdout.contains(&format!("refused: {}/app:multiraw", src.host)), "{}", check.stdout);
    assert!(check.stdout.contains(&format!("stale: {}/app:multi", src.host)), "{}", check.stdout);
    assert!(tags(&dst, "app").is_empty(), "check writes nothing");

    let run = once_with(dir.path(), &yaml, &[]);
    assert_eq!(run.code, 1);
    assert_eq!(tags(&dst, "app"), ["multi"], "{}", run.stderr);
    let (_, index, _) = src.api().manifest("app", "multi").unwrap();
    let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
    let arm64 =
        index["manifests"].as_array().unwrap().iter().find(|m| m["platform"]["architecture"] == "arm64").unwrap();
    assert_eq!(digest_of(&dst, "app", "multi").unwrap(), arm64["digest"].as_str().unwrap(), "the platform's child");
}

#[test]
fn an_up_to_date_image_is_not_verified_again() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(dir.path());
    let (src, dst) = (Registry::start(), Registry::start());
    source(dir.path(), &src, &k.a, &k.b, &k.c);
    let proxy = FaultProxy::start(&src.url);
    let only_signed = "    tags:\n      allow: [\"^(signed|multi)$\"]\n";
    let yaml = |verify: bool| {
        let mut y = format!(
            "{}sync:\n  - source: {p}/app\n    target: {d}/app\n    type: repository\n{only_signed}",
            plain_creds(&[&proxy.host, &dst.host]),
            p = proxy.host,
            d = dst.host
        );
        if verify {
            y += &format!("    verify:\n{KEY_A}");
        }
        y
    };
    once_with(dir.path(), &yaml(true), &[]).expect_ok();
    assert!(proxy.count("GET", ".sig") >= 2, "the first run read the signatures");
    proxy.clear_log();
    once_with(dir.path(), &yaml(true), &[]).expect_ok();
    let with_policy = proxy.log().len();
    assert_eq!(proxy.count("GET", ".sig"), 0, "{:#?}", proxy.log());
    proxy.clear_log();
    once_with(dir.path(), &yaml(false), &[]).expect_ok();
    assert_eq!(with_policy, proxy.log().len(), "a no-op run costs the same with a policy as without");
}

#[test]
fn a_policy_that_cannot_be_applied_stops_the_load_with_file_line_and_step() {
    let dir = tempfile::tempdir().unwrap();
    keys(dir.path());
    std::fs::write(dir.path().join("junk.pub"), "not a key").unwrap();
    let cases = [
        ("      mode: strict\n", "verify.mode: unknown mode \"strict\""),
        ("      signatures:\n        entries:\n          - name: x\n", "an entry needs keys or keyless"),
        (
            "      signatures:\n        entries:\n          - name: x\n            keys: [missing.pub]\n            tlog: ignore\n",
            "cannot read",
        ),
        (
            "      signatures:\n        entries:\n          - name: x\n            keys: [junk.pub]\n            tlog: ignore\n",
            "no PUBLIC KEY block",
        ),
        (
            "      signatures:\n        entries:\n          - name: x\n            keys: [a.pub]\n",
            "tlog: require checks the Rekor entry against a trustedRoot",
        ),
        (
            "      signatures:\n        entries:\n          - name: x\n            keys: [a.pub]\n            tlog: maybe\n",
            "unknown tlog \"maybe\"",
        ),
        (
            "      signatures:\n        entries:\n          - name: x\n            keyless:\n              issuer: https://issuer\n              subjectRegExp: \"(\"\n",
            "invalid regular expression",
        ),
        (
            &format!(
                "{KEY_A}      attestations:\n        - predicateType: https://slsa.dev/provenance/v1\n          signedBy: [nobody]\n"
            ),
            "\"nobody\" is not the name of a signature entry",
        ),
        (
            &format!("{KEY_A}      attestation:\n        - predicateType: https://slsa.dev/provenance/v1\n"),
            "verify.attestation: unknown key in a signature policy",
        ),
    ];
    for (verify, expected) in cases {
        let yaml = format!(
            "sync:\n  - source: ocidir://src:v1\n    target: ocidir://dst:v1\n    type: image\n    verify:\n{verify}"
        );
        let run = once_with(dir.path(), &yaml, &[]);
        assert_ne!(run.code, 0, "{verify}");
        assert!(run.stderr.contains(expected), "{verify}\n{}", run.stderr);
        assert!(run.stderr.contains("regsync.yml:"), "names the file and line: {}", run.stderr);
        assert!(run.stderr.contains("sync[0] (source \"ocidir://src:v1\") verify."), "names the step: {}", run.stderr);
    }
}

#[test]
fn signatures_are_copied_along_with_the_image_they_sign() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(dir.path());
    let (src, dst) = (Registry::start(), Registry::start());
    let images = source(dir.path(), &src, &k.a, &k.b, &k.c);
    let yaml = format!(
        "{}sync:\n  - source: {s}/app:signed\n    target: {d}/app:signed\n    type: image\n    digestTags: true\n    verify:\n{KEY_A}",
        plain_creds(&[&src.host, &dst.host]),
        s = src.host,
        d = dst.host
    );
    once_with(dir.path(), &yaml, &[]).expect_ok();
    let (alg, hex) = images["signed"].digest.split_once(':').unwrap();
    let sig = format!("{alg}-{hex}.sig");
    assert_eq!(digest_of(&dst, "app", &sig), digest_of(&src, "app", &sig), "the signature came along");
}

#[test]
fn keyless_signatures_and_attached_bundles_are_checked_against_a_private_sigstore() {
    use regsync_tests::signing::{Sigstore, attach_bundle, sign_keyless};
    let dir = tempfile::tempdir().unwrap();
    let sigstore = Sigstore::new();
    std::fs::write(dir.path().join("root.json"), sigstore.trusted_root()).unwrap();
    let (src, dst) = (Registry::start(), Registry::start());
    let dev = sigstore.leaf("dev@example.com", "https://issuer.test");
    let intruder = sigstore.leaf("intruder@example.com", "https://issuer.test");
    let elsewhere = sigstore.leaf("dev@example.com", "https://other-issuer.test");
    let mut l = Layout::create(dir.path().join("layout"));
    let images = tagged_images(&mut l, &["dev", "intruder", "elsewhere", "forged", "bundled", "unsigned"]);
    sign_keyless(&mut l, &images["dev"], &sigstore, &dev, false);
    sign_keyless(&mut l, &images["intruder"], &sigstore, &intruder, false);
    sign_keyless(&mut l, &images["elsewhere"], &sigstore, &elsewhere, false);
    sign_keyless(&mut l, &images["forged"], &sigstore, &dev, true);
    let hex = images["bundled"].digest.trim_start_matches("sha256:").to_string();
    let manifest = std::fs::read(l.dir().join("blobs/sha256").join(hex)).unwrap();
    // The fallback index misreports the referrer's type; its manifest says what it is.
    attach_bundle(&mut l, &images["bundled"], &manifest, &sigstore, &dev, "application/octet-stream");
    publish(&l, &src.api());

    let verify = "      signatures:\n        entries:\n          - name: upstream\n            keyless:\n              subjectRegExp: \"dev@example\\\\.com\"\n              issuer: https://issuer.test\n            sct: ignore\n            trustedRoot: root.json\n";
    let run = once_with(dir.path(), &config(&src.host, &dst.host, verify, ""), &["--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(tags(&dst, "app"), ["bundled", "dev"], "{}", run.stderr);
    assert_eq!(digest_of(&dst, "app", "dev").unwrap(), images["dev"].digest);
    let a = run.actions();
    for (tag, why) in [
        ("intruder", "signed by \"intruder@example.com\", not /dev@example\\.com/"),
        ("elsewhere", "vouched for by \"https://other-issuer.test\""),
        ("forged", "upstream:"),
        ("unsigned", "no signatures found"),
    ] {
        refused(&a, tag, why);
    }
    assert!(run.stderr.contains("identity=dev@example.com"), "{}", run.stderr);
    assert!(run.stderr.contains("issuer=https://issuer.test"), "{}", run.stderr);
    assert!(run.stderr.contains("rekor.logIndex=42"), "{}", run.stderr);
}

#[test]
fn hostile_signatures_are_refusals_with_a_reason_never_a_crash_or_a_flood() {
    use regsync_tests::hostile::{Hostile, Scene, made_up_image};
    use serde_json::{Value, json};
    let dir = tempfile::tempdir().unwrap();
    keys(dir.path());
    let upstream = Registry::start();
    let h = Hostile::start(&upstream.url);
    h.scene("app", Scene::Memory);
    let dst = Registry::start();
    let config = h.put_blob(b"{}");
    let signatures = |image: &Value, layers: Vec<Value>| {
        let hex = image["digest"].as_str().unwrap().trim_start_matches("sha256:");
        let doc = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": layers,
        });
        h.put_manifest("app", Some(&format!("sha256-{hex}.sig")), &doc);
    };
    let layer = |digest: &str, size: usize, sig: &str| {
        json!({"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": digest, "size": size,
               "annotations": {"dev.cosignproject.cosign/signature": sig}})
    };
    let big = made_up_image(&h, "app", Some("big"), "big");
    signatures(&big, vec![layer(&h.put_blob(b"x"), 10 << 20, "MEUC")]);
    let liar = made_up_image(&h, "app", Some("liar"), "liar");
    signatures(&liar, vec![layer(&h.put_blob(&vec![b'x'; 1 << 20]), 100, "MEUC")]);
    let garbled = made_up_image(&h, "app", Some("garbled"), "garbled");
    let p = regsync_tests::signing::payload(garbled["digest"].as_str().unwrap());
    signatures(&garbled, vec![layer(&h.put_blob(&p), p.len(), "!!! not base64 !!!")]);
    let many = made_up_image(&h, "app", Some("many"), "many");
    let p = regsync_tests::signing::payload(many["digest"].as_str().unwrap());
    let payload = h.put_blob(&p);
    signatures(&many, (0..500).map(|_| layer(&payload, p.len(), "MEUCIQ==")).collect());

    let mut yaml = format!("{}sync:\n", plain_creds(&[&h.host, &dst.host]));
    for tag in ["big", "liar", "garbled", "many"] {
        yaml += &format!(
            "  - source: {s}/app:{tag}\n    target: {t}/app:{tag}\n    type: image\n    verify:\n{KEY_A}",
            s = h.host,
            t = dst.host
        );
    }
    let run = once_with(dir.path(), &yaml, &["--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let a = run.actions();
    for (tag, why) in [
        ("big", "a signature payload of 10485760 bytes is larger than 256 KiB"),
        ("liar", "is larger than its descriptor says"),
        ("garbled", "a signature is not base64"),
        ("many", "team: no signature by its keys"),
    ] {
        refused(&a, tag, why);
    }
    assert!(tags(&dst, "app").is_empty());
    let reads = h.log().iter().filter(|s| s.method == "GET" && s.path.contains(&payload)).count();
    assert!(reads <= 64, "at most 64 signatures are read for one image: {reads}");
}

#[test]
fn a_server_reports_refusals_in_metrics_and_applies_a_changed_policy_from_the_next_run() {
    use regsync_tests::bin::{ServerProcess, free_port, http_get, wait_for};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let k = keys(dir.path());
    let (src, dst) = (Registry::start(), Registry::start());
    let images = source(dir.path(), &src, &k.a, &k.b, &k.c);
    let interval = "    interval: 2s\n";
    std::fs::write(dir.path().join("regsync.yml"), config(&src.host, &dst.host, KEY_A, interval)).unwrap();
    let port = free_port();
    let server = ServerProcess::start(dir.path(), &["-c", "regsync.yml", "--listen", &format!("127.0.0.1:{port}")]);
    let ready = || http_get(port, "/readyz").is_some_and(|(s, _)| s == 200);
    assert!(wait_for(Duration::from_secs(30), ready), "{}", server.log());
    assert_eq!(tags(&dst, "app"), ["multi", "signed"], "{}", server.log());
    let (_, metrics) = http_get(port, "/metrics").unwrap();
    let refused = format!(
        "regsync_images_total{{source=\"{s}/app\",target=\"{t}/app\",action=\"refused\"}}",
        s = src.host,
        t = dst.host
    );
    assert!(metrics.lines().any(|l| l.starts_with(&refused)), "{metrics}");

    // Trusting `b` as well: the next run copies what it signed.
    let two = "      signatures:\n        count: 1\n        entries:\n          - name: team\n            keys: [a.pub]\n            tlog: ignore\n          - name: other\n            keys: [b.pub]\n            tlog: ignore\n";
    let tmp = dir.path().join("regsync.tmp");
    std::fs::write(&tmp, config(&src.host, &dst.host, two, interval)).unwrap();
    std::fs::rename(&tmp, dir.path().join("regsync.yml")).unwrap();
    let copied = || digest_of(&dst, "app", "wrongkey") == Some(images["wrongkey"].digest.clone());
    assert!(wait_for(Duration::from_secs(20), copied), "{}", server.log());
    assert!(digest_of(&dst, "app", "unsigned").is_none(), "still refused");

    // A stricter policy applies to the next copy: a digest accepted before
    // is not waved through into a new target on the old verdict.
    let only_b = "      signatures:\n        entries:\n          - name: other\n            keys: [b.pub]\n            tlog: ignore\n";
    let stricter = config(&src.host, &dst.host, only_b, interval)
        .replace(&format!("target: {}/app", dst.host), &format!("target: {}/fresh", dst.host));
    std::fs::write(&tmp, stricter).unwrap();
    std::fs::rename(&tmp, dir.path().join("regsync.yml")).unwrap();
    let wrongkey_copied = || digest_of(&dst, "fresh", "wrongkey").is_some();
    assert!(wait_for(Duration::from_secs(20), wrongkey_copied), "{}", server.log());
    assert!(digest_of(&dst, "fresh", "signed").is_none(), "signed only by a, refused now: {}", server.log());

    // A policy that cannot be applied is rejected at reload; the running one stays.
    let broken = "      signatures:\n        entries:\n          - name: team\n            keys: [missing.pub]\n            tlog: ignore\n";
    std::fs::write(&tmp, config(&src.host, &dst.host, broken, interval)).unwrap();
    std::fs::rename(&tmp, dir.path().join("regsync.yml")).unwrap();
    let rejected =
        || http_get(port, "/metrics").is_some_and(|(_, m)| m.contains("regsync_reloads_total{result=\"rejected\"} 1"));
    assert!(wait_for(Duration::from_secs(20), rejected), "{}", server.log());
    assert!(server.log().contains("missing.pub"), "the rejection names the key file: {}", server.log());
    assert_eq!(http_get(port, "/healthz").unwrap().0, 200);
    assert!(digest_of(&dst, "app", "unsigned").is_none(), "the old policy still refuses");
}

#[test]
fn attestations_must_be_attached_and_signed_by_the_named_entry() {
    use regsync_tests::signing::{SIGN_PREDICATE, Sigstore, attach_statement, sign_keyless};
    const SLSA: &str = "https://slsa.dev/provenance/v1";
    let dir = tempfile::tempdir().unwrap();
    let sigstore = Sigstore::new();
    std::fs::write(dir.path().join("root.json"), sigstore.trusted_root()).unwrap();
    let (src, dst) = (Registry::start(), Registry::start());
    let dev = sigstore.leaf("dev@example.com", "https://issuer.test");
    let intruder = sigstore.leaf("intruder@example.com", "https://issuer.test");
    let mut l = Layout::create(dir.path().join("layout"));
    let images = tagged_images(&mut l, &["attested", "unattested", "wrongsigner", "cosignthree", "othertype"]);
    sign_keyless(&mut l, &images["attested"], &sigstore, &dev, false);
    attach_statement(&mut l, &images["attested"], &sigstore, &dev, SLSA, &mut vec![]);
    sign_keyless(&mut l, &images["unattested"], &sigstore, &dev, false);
    sign_keyless(&mut l, &images["wrongsigner"], &sigstore, &dev, false);
    attach_statement(&mut l, &images["wrongsigner"], &sigstore, &intruder, SLSA, &mut vec![]);
    // cosign 3: the signature is a statement too, beside the provenance.
    let mut listed = vec![];
    attach_statement(&mut l, &images["cosignthree"], &sigstore, &dev, SIGN_PREDICATE, &mut listed);
    attach_statement(&mut l, &images["cosignthree"], &sigstore, &dev, SLSA, &mut listed);
    sign_keyless(&mut l, &images["othertype"], &sigstore, &dev, false);
    attach_statement(&mut l, &images["othertype"], &sigstore, &dev, "https://spdx.dev/Document", &mut vec![]);
    publish(&l, &src.api());

    let verify = format!(
        "      signatures:\n        entries:\n{KEYLESS_DEV}      attestations:\n        - predicateType: {SLSA}\n          signedBy: [upstream]\n"
    );
    let run = once_with(dir.path(), &config(&src.host, &dst.host, &verify, ""), &["--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(tags(&dst, "app"), ["attested", "cosignthree"], "{}", run.stderr);
    let a = run.actions();
    for tag in ["unattested", "wrongsigner", "othertype"] {
        assert_eq!(a[tag].0, "refused", "{tag}: {:?}", a[tag]);
        assert!(a[tag].1.contains(&format!("no attestation {SLSA} signed by upstream")), "{tag}: {:?}", a[tag]);
    }
}

#[test]
fn bundles_signed_with_a_key_count_for_key_entries_through_the_referrers_api() {
    use regsync_tests::signing::{SIGN_PREDICATE, Sigstore, attach_key_statement};
    let dir = tempfile::tempdir().unwrap();
    let k = keys(dir.path());
    let sigstore = Sigstore::new();
    std::fs::write(dir.path().join("root.json"), sigstore.trusted_root()).unwrap();
    let src = Registry::start();
    // The source answers the referrers API (a proxy of ours adds it to distribution).
    let proxy = FaultProxy::start(&src.url);
    proxy.emulate_referrers_api(10);
    let dst = Registry::start();
    let mut l = Layout::create(dir.path().join("layout"));
    let images = tagged_images(&mut l, &["keybundle", "otherkey", "attestonly"]);
    attach_key_statement(&mut l, &images["keybundle"], &sigstore, &k.a, SIGN_PREDICATE, &mut vec![]);
    attach_key_statement(&mut l, &images["otherkey"], &sigstore, &k.b, SIGN_PREDICATE, &mut vec![]);
    let slsa = "https://slsa.dev/provenance/v1";
    attach_key_statement(&mut l, &images["attestonly"], &sigstore, &k.a, slsa, &mut vec![]);
    let through = RegistryHttp::new(&format!("http://{}", proxy.host), reqwest::blocking::Client::new());
    publish(&l, &through);
    proxy.clear_log();

    let logged = "      signatures:\n        entries:\n          - name: team\n            keys: [a.pub]\n            trustedRoot: root.json\n";
    let run = once_with(dir.path(), &config(&proxy.host, &dst.host, logged, ""), &["--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(tags(&dst, "app"), ["keybundle"], "{}", run.stderr);
    let a = run.actions();
    assert_eq!(a["otherkey"].0, "refused", "{:?}", a["otherkey"]);
    assert_eq!(a["attestonly"].0, "refused", "an attestation is not a signature: {:?}", a["attestonly"]);
    assert!(proxy.count("GET", "/referrers/") >= 3, "listed through the API: {:#?}", proxy.log());
}

#[test]
fn a_trusted_root_past_its_validity_is_a_warning_at_load() {
    let dir = tempfile::tempdir().unwrap();
    keys(dir.path());
    let mut root: serde_json::Value =
        serde_json::from_str(&regsync_tests::signing::Sigstore::new().trusted_root()).unwrap();
    root["tlogs"][0]["publicKey"]["validFor"]["end"] = serde_json::json!("2021-01-01T00:00:00Z");
    std::fs::write(dir.path().join("old.json"), root.to_string()).unwrap();
    let verify = "      signatures:\n        entries:\n          - name: x\n            keys: [a.pub]\n            trustedRoot: old.json\n";
    let yaml = format!(
        "sync:\n  - source: ocidir://src:v1\n    target: ocidir://dst:v1\n    type: image\n    verify:\n{verify}"
    );
    let run = once_with(dir.path(), &yaml, &[]);
    assert!(run.stderr.contains("level=WARN"), "{}", run.stderr);
    assert!(run.stderr.contains("is past its validity"), "{}", run.stderr);
    assert!(run.stderr.contains("verify.signatures.entries[0].trustedRoot"), "{}", run.stderr);
}

#[test]
fn cosign_2_attestations_in_att_tags_count_signed_by_a_key_or_keyless() {
    use regsync_tests::signing::{Attester, Sigstore, attest_legacy, sign_keyless};
    const SLSA: &str = "https://slsa.dev/provenance/v1";
    let dir = tempfile::tempdir().unwrap();
    let k = keys(dir.path());
    let sigstore = Sigstore::new();
    std::fs::write(dir.path().join("root.json"), sigstore.trusted_root()).unwrap();
    let dev = sigstore.leaf("dev@example.com", "https://issuer.test");
    let (src, dst) = (Registry::start(), Registry::start());
    let mut l = Layout::create(dir.path().join("layout"));
    let images = tagged_images(&mut l, &["keyatt", "keylessatt", "wrongkeyatt", "noatt"]);
    for d in images.values() {
        sign(&mut l, d, &d.digest, &[&k.a]);
    }
    attest_legacy(&mut l, &images["keyatt"], Attester::Key(&k.a), SLSA);
    attest_legacy(&mut l, &images["wrongkeyatt"], Attester::Key(&k.b), SLSA);
    sign_keyless(&mut l, &images["keylessatt"], &sigstore, &dev, false);
    attest_legacy(&mut l, &images["keylessatt"], Attester::Keyless(&sigstore, &dev), SLSA);
    publish(&l, &src.api());

    let verify =
        format!("{KEY_A}{KEYLESS_DEV}        count: 1\n      attestations:\n        - predicateType: {SLSA}\n");
    let run = once_with(dir.path(), &config(&src.host, &dst.host, &verify, ""), &["--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(tags(&dst, "app"), ["keyatt", "keylessatt"], "{}", run.stderr);
    let a = run.actions();
    for tag in ["wrongkeyatt", "noatt"] {
        assert_eq!(a[tag].0, "refused", "{tag}: {:?}", a[tag]);
        assert!(a[tag].1.contains(&format!("no attestation {SLSA} signed by any entry")), "{tag}: {:?}", a[tag]);
    }
}

#[test]
fn check_does_not_pull_signatures_from_a_rate_limited_source() {
    use regsync_tests::proxy::{Fault, Rule};
    let dir = tempfile::tempdir().unwrap();
    let k = keys(dir.path());
    let (src, dst) = (Registry::start(), Registry::start());
    source(dir.path(), &src, &k.a, &k.b, &k.c);
    let proxy = FaultProxy::start(&src.url);
    proxy.add(Rule::new(
        Some("HEAD"),
        "/manifests/signed",
        Fault::AddHeader("RateLimit-Remaining".into(), "0".into()),
        5,
    ));
    let yaml = format!(
        "{}sync:\n  - source: {p}/app:signed\n    target: {d}/app:signed\n    type: image\n    ratelimit: {{min: 10, retry: 5m}}\n    verify:\n{KEY_A}",
        plain_creds(&[&proxy.host, &dst.host]),
        p = proxy.host,
        d = dst.host
    );
    std::fs::write(dir.path().join("regsync.yml"), &yaml).unwrap();
    let check = run_in(dir.path(), &["check", "-c", "regsync.yml"], None);
    assert_eq!(check.code, 0, "check never waits: {}", check.stderr);
    assert!(check.stdout.contains("signatures not checked: the source is rate limited"), "{}", check.stdout);
    assert_eq!(proxy.count("GET", "/manifests/"), 0, "no pull: {:#?}", proxy.log());
}

#[test]
fn a_tag_named_like_a_signature_is_judged_by_the_image_it_names_and_a_moved_tag_by_its_new_digest() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(dir.path());
    let (src, dst) = (Registry::start(), Registry::start());
    let mut l = Layout::create(dir.path().join("layout"));
    let signed = l.image(AMD64, &[("f", b"signed")]);
    l.tag("signed", &signed);
    sign(&mut l, &signed, &signed.digest, &[&k.a]);
    // Anything can be pushed under a signature's name: a runnable image here.
    let bogus = l.image(AMD64, &[("evil", b"payload")]);
    l.tag(&format!("sha256-{}.sig", "0".repeat(64)), &bogus);
    // Signed, then the tag moved to an unsigned image.
    let before = l.image(AMD64, &[("f", b"before")]);
    sign(&mut l, &before, &before.digest, &[&k.a]);
    let after = l.image(AMD64, &[("f", b"after")]);
    l.tag("moved", &after);
    publish(&l, &src.api());
    let yaml = format!(
        "{}sync:\n  - source: {s}/app\n    target: {d}/app\n    type: repository\n    verify:\n{KEY_A}",
        plain_creds(&[&src.host, &dst.host]),
        s = src.host,
        d = dst.host
    );
    let run = once_with(dir.path(), &yaml, &["--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let signature = format!("sha256-{}.sig", signed.digest.trim_start_matches("sha256:"));
    let before_signature = format!("sha256-{}.sig", before.digest.trim_start_matches("sha256:"));
    let mut expected = vec![before_signature, signature, "signed".to_string()];
    expected.sort();
    assert_eq!(tags(&dst, "app"), expected, "{}", run.stderr);
    let a = run.actions();
    let bogus_tag = format!("sha256-{}.sig", "0".repeat(64));
    assert_eq!(a[&bogus_tag].0, "refused", "{:?}", a[&bogus_tag]);
    assert_eq!(a["moved"].0, "refused");
    assert!(a["moved"].1.contains(&format!("no signatures found for {}", after.digest)), "{:?}", a["moved"]);
}

#[test]
fn rsa_keys_and_a_platforms_filter_over_a_signed_index() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = Signer::rsa();
    rsa.write_public(&dir.path().join("rsa.pub"));
    let (src, dst) = (Registry::start(), Registry::start());
    let mut l = Layout::create(dir.path().join("layout"));
    let mut indexes = std::collections::BTreeMap::new();
    for (tag, signed) in [("signedindex", true), ("rawindex", false)] {
        let children = [l.image(AMD64, &[("m", tag.as_bytes())]), l.image(ARM64, &[("n", tag.as_bytes())])];
        let index = l.index(&children, None);
        l.tag(tag, &index);
        if signed {
            sign(&mut l, &index, &index.digest, &[&rsa]);
        }
        indexes.insert(tag, index);
    }
    publish(&l, &src.api());
    let verify = "      signatures:\n        entries:\n          - name: rsa\n            keys: [rsa.pub]\n            tlog: ignore\n";
    let run = once_with(
        dir.path(),
        &config(&src.host, &dst.host, verify, "    platforms: [linux/arm64]\n"),
        &["--format", "json"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(tags(&dst, "app"), ["signedindex"], "{}", run.stderr);
    // The pushed index lists only the chosen platform, under the verified source index.
    let (_, bytes, _) = dst.api().manifest("app", "signedindex").unwrap();
    let pushed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(pushed["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(run.actions()["rawindex"].0, "refused");
}
