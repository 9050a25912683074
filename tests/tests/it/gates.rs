//! Gate plugins, built for real from `plugins/`: the Rust `max-age` and the
//! Python `require-sbom` examples against a real registry, and `test-gate`
//! for the host's side (facts, referrer reads, failing closed). Only what
//! every gate allows reaches the target; each denial carries the plugin's
//! reason; an up-to-date image costs no extra request.

use std::collections::BTreeMap;
use std::path::Path;

use regsync_tests::bin::{Run, once_with, plain_creds, run_in};
use regsync_tests::fixtures::{AMD64, ARM64, Layout};
use regsync_tests::oci::{Descriptor, LayoutReader};
use regsync_tests::plugins::{require_sbom_py, rust_plugin};
use regsync_tests::proxy::FaultProxy;
use regsync_tests::registry::Registry;
use serde_json::json;

const SPDX: &str = "application/spdx+json";
const CYCLONEDX: &str = "application/vnd.cyclonedx+json";

/// An RFC 3339 time `days` days ago.
fn days_ago(days: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days)).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn plugin(name: &str, path: &Path, extra: &str) -> String {
    format!("  - name: {name}\n    path: \"{}\"\n{extra}", path.display())
}

fn max_age() -> std::path::PathBuf {
    rust_plugin("max-age")
}

fn require_sbom() -> std::path::PathBuf {
    require_sbom_py()
}

fn test_gate() -> std::path::PathBuf {
    rust_plugin("test-gate")
}

/// Attaches an SBOM referrer of `media_type` holding `payload` to `image`.
fn attach_sbom(l: &mut Layout, image: &Descriptor, media_type: &str, payload: &[u8]) -> Descriptor {
    let sbom = l.artifact(media_type, Some(image), &[(media_type, payload)], &[("org.example.kind", "sbom")]);
    l.keep(&sbom);
    l.referrers_tag(image, std::slice::from_ref(&sbom));
    sbom
}

fn spdx_doc(name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"spdxVersion": "SPDX-2.3", "name": name, "packages": []})).unwrap()
}

fn cyclonedx_doc() -> Vec<u8> {
    serde_json::to_vec(&json!({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []})).unwrap()
}

fn tags(reg: &Registry, repo: &str) -> Vec<String> {
    let mut t = reg.api().tags(repo);
    t.retain(|t| !t.starts_with("sha256-"));
    t.sort();
    t
}

/// `fresh-sbom` (a day old, SPDX), `fresh` (a day old, no SBOM),
/// `old-sbom` (400 days, CycloneDX), `fake-sbom` (listed as SPDX, holding
/// something else) and `timeless` (no `created`, SPDX), in `app` of `reg`.
fn gated_source(dir: &Path, reg: &Registry) -> BTreeMap<&'static str, Descriptor> {
    let mut l = Layout::create(dir.join("layout"));
    let fresh = days_ago(1);
    let old = days_ago(400);
    let mut images = BTreeMap::new();
    for (tag, created) in [
        ("fresh-sbom", Some(fresh.as_str())),
        ("fresh", Some(fresh.as_str())),
        ("old-sbom", Some(old.as_str())),
        ("fake-sbom", Some(fresh.as_str())),
        ("timeless", None),
    ] {
        let d = l.image_made(AMD64, &[("f", tag.as_bytes())], created, &[]);
        l.tag(tag, &d);
        images.insert(tag, d);
    }
    attach_sbom(&mut l, &images["fresh-sbom"], SPDX, &spdx_doc("fresh"));
    attach_sbom(&mut l, &images["old-sbom"], CYCLONEDX, &cyclonedx_doc());
    attach_sbom(&mut l, &images["fake-sbom"], SPDX, b"{\"not\": \"an sbom\"}");
    attach_sbom(&mut l, &images["timeless"], SPDX, &spdx_doc("timeless"));
    l.save();
    reg.api().push_layout(&LayoutReader::open(l.dir()), "app").unwrap();
    images
}

fn two_gates_config(src: &str, dst: &str, allow: &str) -> String {
    format!(
        "{creds}plugins:\n{a}{b}sync:\n  - source: {src}/app\n    target: {dst}/app\n    type: repository\n    tags:\n      allow: [\"{allow}\"]\n    gates:\n      - name: max-age\n        config: {{days: \"30\"}}\n      - require-sbom\n",
        creds = plain_creds(&[src, dst]),
        a = plugin("max-age", &max_age(), "    config: {days: \"1000\"}\n"),
        b = plugin("require-sbom", &require_sbom(), "    timeout: 20s\n    memory: 256\n"),
    )
}

#[test]
fn a_repository_sync_copies_only_what_both_gates_allow_and_up_to_date_images_cost_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (Registry::start(), Registry::start());
    let images = gated_source(dir.path(), &src);
    let proxy = FaultProxy::start(&src.url);
    let yaml = two_gates_config(&proxy.host, &dst.host, "^[a-z-]+$");
    let run = once_with(dir.path(), &yaml, &["--format", "json"]);
    assert_eq!(run.code, 1, "denials fail the run\n{}", run.stderr);
    assert_eq!(tags(&dst, "app"), ["fresh-sbom"], "{}", run.stderr);
    let copied = dst.api().manifest("app", "fresh-sbom").unwrap().2;
    assert_eq!(copied, images["fresh-sbom"].digest);
    let a = run.actions();
    assert_eq!(a["fresh-sbom"].0, "copied");
    for (tag, why) in [
        ("fresh", "gate \"require-sbom\": no SPDX or CycloneDX SBOM among its referrers"),
        ("fake-sbom", "is neither SPDX nor CycloneDX"),
        // The use's `days: 30` replaces the plugin's own 1000.
        ("old-sbom", "gate \"max-age\": built 400 days ago"),
        ("old-sbom", "more than the 30 days allowed"),
        ("timeless", "gate \"max-age\": the image config has no created time"),
    ] {
        assert_eq!(a[tag].0, "denied", "{tag}: {:?}", a[tag]);
        assert!(a[tag].1.contains(why), "{tag}: {:?} lacks {why:?}", a[tag]);
    }
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["counts"]["denied"], 4);
    assert_eq!(doc["counts"]["failed"], 4);
    assert!(
        run.stderr.contains(r#"msg="Image denied by a gate""#) && run.stderr.contains("gate=require-sbom"),
        "{}",
        run.stderr
    );
    // The text summary names them too.
    let text = once_with(dir.path(), &yaml, &[]);
    assert_eq!(text.code, 1);
    assert!(text.stdout.contains("4 failed (4 denied by gates)"), "{}", text.stdout);

    // Up to date: no gate runs, and the run costs what it costs without gates.
    let only_allowed = two_gates_config(&proxy.host, &dst.host, "^fresh-sbom$");
    proxy.clear_log();
    once_with(dir.path(), &only_allowed, &[]).expect_ok();
    let with_gates = proxy.log().len();
    let without = only_allowed.split("    gates:\n").next().unwrap().to_string();
    proxy.clear_log();
    once_with(dir.path(), &without, &[]).expect_ok();
    assert_eq!(with_gates, proxy.log().len(), "a no-op run costs the same with gates as without");
}

/// A layout source with one image `app:v1` (two platforms, labels, a
/// referrer) and a copy of `regsync.yml` running `test-gate` with `behave`.
fn one_gate(
    dir: &Path,
    behave: &str,
    extra_plugin: &str,
    extra_step: &str,
) -> (Run, BTreeMap<&'static str, Descriptor>) {
    let mut l = Layout::create(dir.join("src"));
    let created = "2024-06-01T10:00:00Z";
    let amd = l.image_made(AMD64, &[("a", b"amd")], Some(created), &[("org.opencontainers.image.title", "demo")]);
    let arm = l.image_made(ARM64, &[("b", b"arm")], Some(created), &[("org.opencontainers.image.title", "demo")]);
    let index = l.index(&[amd.clone(), arm], None);
    l.tag("v1", &index);
    let sbom = attach_sbom(&mut l, &index, SPDX, &spdx_doc("v1"));
    let other = l.image(AMD64, &[("c", b"other")]);
    l.tag("other", &other);
    l.save();
    let yaml = format!(
        "plugins:\n{}sync:\n  - source: ocidir://src:v1\n    target: ocidir://dst:v1\n    type: image\n    gates:\n      - name: t\n        config: {{behave: {behave}}}\n{extra_step}",
        plugin("t", &test_gate(), extra_plugin)
    );
    let run = once_with(dir, &yaml, &["--format", "json"]);
    (run, BTreeMap::from([("index", index), ("amd", amd), ("sbom", sbom), ("other", other)]))
}

fn reason(run: &Run) -> String {
    run.actions().remove("v1").unwrap_or_else(|| panic!("no v1 in {}", run.stdout)).1
}

fn target_has_v1(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("dst/index.json")).is_ok_and(|i| i.contains("\"v1\""))
}

#[test]
fn a_gate_is_shown_the_facts_of_the_image_about_to_be_copied() {
    let dir = tempfile::tempdir().unwrap();
    let (run, d) = one_gate(dir.path(), "facts", "", "");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!target_has_v1(dir.path()), "a denied image is not written");
    let facts = reason(&run);
    for want in [
        "source=ocidir://src:v1".to_string(),
        "target=ocidir://dst:v1".to_string(),
        format!("digest={}", d["index"].digest),
        "media-type=application/vnd.oci.image.index.v1+json".to_string(),
        "platforms=linux/amd64,linux/arm64".to_string(),
        "labels=org.opencontainers.image.title=demo".to_string(),
        "created=2024-06-01T10:00:00Z".to_string(),
        format!("referrer={} {SPDX} org.example.kind=sbom", d["sbom"].digest),
    ] {
        assert!(facts.contains(&want), "{want:?} not in {facts}");
    }
    let size: u64 = facts.split(" | ").find_map(|f| f.strip_prefix("size=")).unwrap().parse().unwrap();
    assert!(size > d["index"].size + d["amd"].size, "manifests, configs and layers: {size}");

    // With `platform:`, the child being copied is what the gate sees.
    let dir = tempfile::tempdir().unwrap();
    let (run, d) = one_gate(dir.path(), "facts", "", "    platform: linux/amd64\n");
    let facts = reason(&run);
    assert!(facts.contains(&format!("digest={}", d["amd"].digest)), "{facts}");
    assert!(facts.contains("platforms=linux/amd64 |"), "{facts}");
}

#[test]
fn a_gate_reads_only_the_images_referrers_and_only_within_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let sbom_digest = {
        let (run, d) = one_gate(dir.path(), "facts", "", "");
        assert_eq!(run.code, 1);
        d["sbom"].digest.clone()
    };
    let layer0 = spdx_doc("v1");
    let cases = [
        (
            format!("{{behave: read, digest: \"{sbom_digest}\", layer: \"0\"}}"),
            format!("read {} bytes: {}", layer0.len(), String::from_utf8_lossy(&layer0)),
        ),
        (
            format!("{{behave: read, digest: \"{sbom_digest}\"}}"),
            "\"artifactType\":\"application/spdx+json\"".to_string(),
        ),
        (
            format!("{{behave: read, digest: \"{sbom_digest}\", layer: \"0\", max: \"10\"}}"),
            format!("read failed: layer 0 of {sbom_digest} is {} bytes, more than 10", layer0.len()),
        ),
        (
            format!("{{behave: read, digest: \"{sbom_digest}\", layer: \"5\"}}"),
            format!("read failed: {sbom_digest} has no layer 5"),
        ),
    ];
    for (settings, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (run, _) = one_gate(dir.path(), "read", "", "");
        drop(run);
        let yaml =
            std::fs::read_to_string(dir.path().join("regsync.yml")).unwrap().replace("{behave: read}", &settings);
        let run = once_with(dir.path(), &yaml, &["--format", "json"]);
        assert!(reason(&run).contains(&want), "{settings}: {} lacks {want:?}", reason(&run));
    }
    // Another image of the same repository is not the judged image's referrer.
    let dir = tempfile::tempdir().unwrap();
    let (_, d) = one_gate(dir.path(), "allow", "", "");
    let other = d["other"].digest.clone();
    let yaml = std::fs::read_to_string(dir.path().join("regsync.yml"))
        .unwrap()
        .replace("{behave: allow}", &format!("{{behave: read, digest: \"{other}\"}}"))
        .replace("ocidir://dst", "ocidir://dst2");
    let run = once_with(dir.path(), &yaml, &["--format", "json"]);
    assert!(
        reason(&run).contains(&format!("read failed: {other} is not a referrer of the image being judged")),
        "{}",
        reason(&run)
    );
}

#[test]
fn gates_fail_closed_when_they_trap_time_out_or_run_out_of_memory_and_warn_lets_through() {
    for (behave, extra, why) in [
        (
            "trap",
            "",
            "the gate failed: plugin \"t\" failed in decide: wasm trap: wasm `unreachable` instruction executed",
        ),
        ("loop", "    timeout: 300ms\n", "the gate failed: plugin \"t\" timed out after 300ms in decide"),
        (
            "alloc",
            "    memory: 16\n    timeout: 20s\n",
            "the gate failed: plugin \"t\" failed in decide: memory limit of 16 MiB reached",
        ),
        ("deny", "", "gate \"t\": test-gate says no to ocidir://src:v1"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (run, _) = one_gate(dir.path(), behave, extra, "");
        assert_eq!(run.code, 1, "{behave}: {}", run.stderr);
        assert_eq!(run.actions()["v1"].0, "denied", "{behave}");
        assert!(reason(&run).contains(why), "{behave}: {} lacks {why:?}", reason(&run));
        assert!(!target_has_v1(dir.path()), "{behave}: nothing written");
    }
    // `mode: warn`: the denial is logged and the image copied.
    let dir = tempfile::tempdir().unwrap();
    let (run, d) = one_gate(dir.path(), "deny", "", "");
    drop(run);
    let yaml = std::fs::read_to_string(dir.path().join("regsync.yml"))
        .unwrap()
        .replace("        config: {behave: deny}\n", "        config: {behave: deny}\n        mode: warn\n");
    let run = once_with(dir.path(), &yaml, &["--format", "json"]).expect_ok();
    assert_eq!(run.actions()["v1"].0, "copied");
    assert!(reason(&run).contains("denied by gate \"t\": test-gate says no"), "{}", reason(&run));
    assert!(run.stderr.contains(r#"msg="Gate denied the image, copying anyway (mode: warn)""#), "{}", run.stderr);
    let index = std::fs::read_to_string(dir.path().join("dst/index.json")).unwrap();
    assert!(index.contains(&d["index"].digest), "{index}");
}

#[test]
fn gate_config_mistakes_stop_the_load_with_file_line_and_step() {
    let dir = tempfile::tempdir().unwrap();
    Layout::create(dir.path().join("src")).save();
    let plugins =
        format!("plugins:\n{}{}", plugin("t", &test_gate(), ""), plugin("keep", &rust_plugin("keep-latest"), ""));
    let cases = [
        (
            "    gates: [nope]\n",
            "regsync.yml:10:13: sync[0] (source \"ocidir://src\") gates[0]: unknown plugin \"nope\": declare it under plugins:",
        ),
        ("    gates: [{name: t, mode: strict}]\n", "gates[0].mode: mode \"strict\": expected enforce or warn"),
        ("    gates: [{name: t, modes: warn}]\n", "gates[0].modes: unknown key in a gate (name, mode, config)"),
        ("    gates: [t, t]\n", "gate \"t\" is listed twice"),
        ("    gates: [keep]\n", "plugin \"keep\" is used as a gate but does not export regsync:plugin/gate@0.2.0"),
    ];
    for (gates, want) in cases {
        let yaml = format!(
            "{plugins}sync:\n  - source: ocidir://src\n    target: ocidir://dst\n    type: repository\n{gates}"
        );
        std::fs::write(dir.path().join("regsync.yml"), &yaml).unwrap();
        let run = run_in(dir.path(), &["check", "-c", "regsync.yml"], None);
        assert_eq!(run.code, 1, "{gates}: {}", run.stderr);
        assert!(run.stderr.contains(want), "{gates}: {want:?} not in\n{}", run.stderr);
    }
}

#[test]
fn plugin_call_runs_one_gate_decision_and_inspect_names_the_kind() {
    let dir = tempfile::tempdir().unwrap();
    let gate = max_age();
    let gate = gate.to_str().unwrap();
    let inspect = run_in(dir.path(), &["plugin", "inspect", gate], None).expect_ok();
    assert!(inspect.stdout.contains("kinds:     gate\n"), "{}", inspect.stdout);
    assert!(inspect.stdout.contains("world:     regsync:plugin/gate-plugin@0.2.0\n"), "{}", inspect.stdout);
    let old = r#"{"source": "r/a:1", "created": "2001-02-03T04:05:06Z"}"#;
    let call =
        run_in(dir.path(), &["plugin", "call", gate, "--set", "days=30", "gate", "--facts", old], None).expect_ok();
    assert!(call.stdout.starts_with("deny: built "), "{}", call.stdout);
    assert!(call.stdout.contains("days ago (2001-02-03T04:05:06Z), more than the 30 days allowed"), "{}", call.stdout);
    let new = format!(r#"{{"created": "{}"}}"#, days_ago(2));
    let call = run_in(dir.path(), &["plugin", "call", gate, "gate", "--facts", &new], None).expect_ok();
    assert_eq!(call.stdout, "allow\n");
    let bad = run_in(dir.path(), &["plugin", "call", gate, "gate", "--facts", r#"{"creatd": "x"}"#], None);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("facts JSON: unknown field `creatd`"), "{}", bad.stderr);

    // The Python gate, with the referrer it reads given as files.
    let sbom = require_sbom();
    let digest = "sha256:".to_string() + &"a".repeat(64);
    let facts = json!({"referrers": [{"digest": digest, "artifactType": SPDX}]}).to_string();
    let manifest = json!({"layers": [{"mediaType": SPDX, "digest": "sha256:0", "size": 1}]}).to_string();
    std::fs::write(dir.path().join("m.json"), manifest).unwrap();
    std::fs::write(dir.path().join("spdx.json"), spdx_doc("x")).unwrap();
    let args = |payload: &str| {
        vec![
            "plugin".to_string(),
            "call".into(),
            sbom.display().to_string(),
            "--timeout".into(),
            "20s".into(),
            "--memory".into(),
            "256".into(),
            "gate".into(),
            "--facts".into(),
            facts.clone(),
            "--referrer".into(),
            format!("{digest}=m.json"),
            "--referrer".into(),
            format!("{digest}/0={payload}"),
        ]
    };
    let run = |payload: &str| {
        let a = args(payload);
        run_in(dir.path(), &a.iter().map(String::as_str).collect::<Vec<_>>(), None).expect_ok()
    };
    assert_eq!(run("spdx.json").stdout, "allow\n");
    assert!(run("m.json").stdout.starts_with("deny: no SPDX or CycloneDX SBOM among its referrers ("), "not an SBOM");
}

/// The verify stage's accepted signatures reach the gate: entry, identity, issuer.
#[test]
fn a_gate_sees_which_signatures_the_policy_accepted() {
    use regsync_tests::signing::{Signer, sign};
    let dir = tempfile::tempdir().unwrap();
    let key = Signer::p256();
    key.write_public(&dir.path().join("a.pub"));
    let mut l = Layout::create(dir.path().join("src"));
    let image = l.image(AMD64, &[("s", b"signed")]);
    l.tag("v1", &image);
    sign(&mut l, &image, &image.digest, &[&key]);
    l.save();
    let yaml = format!(
        "plugins:\n{}sync:\n  - source: ocidir://src:v1\n    target: ocidir://dst:v1\n    type: image\n    verify:\n      signatures:\n        entries:\n          - name: team\n            keys: [a.pub]\n            tlog: ignore\n    gates:\n      - name: t\n        config: {{behave: facts}}\n",
        plugin("t", &test_gate(), "")
    );
    let run = once_with(dir.path(), &yaml, &["--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let facts = reason(&run);
    assert!(facts.contains("signer=team - -"), "{facts}");
    assert!(facts.contains(&format!("digest={}", image.digest)), "{facts}");
}
