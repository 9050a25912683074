//! Hostile and broken registries: whatever a registry sends, a run ends by
//! itself in bounded time and memory, copies the healthy images, refuses the
//! rest by name without writing any of them, and sends no credentials to
//! another host. The source is our hostile registry ([`regsync_tests::hostile`])
//! in front of a real registry; the target is a real registry.

use std::time::Duration;

use serde_json::json;

use regsync_tests::bin::{Measured, run_measured};
use regsync_tests::fixtures::{self, AMD64, noise};
use regsync_tests::hostile::{Elsewhere, Hostile, Reply, Scene, made_up_image};
use regsync_tests::oci::LayoutReader;
use regsync_tests::registry::Registry;

const USER: &str = "mirror";
const PASS: &str = "s3cret-pass";

/// Pushes a one-layer image of `layer_bytes` to `repo:tag` of `r`; its digest.
fn push_image(r: &Registry, dir: &std::path::Path, repo: &str, tag: &str, seed: u64, layer_bytes: usize) -> String {
    let mut l = fixtures::Layout::create(dir.join(format!("{}-{tag}", repo.replace('/', "-"))));
    let image = l.image(AMD64, &[("data", &noise(seed, layer_bytes))]);
    l.tag(tag, &image);
    l.save();
    let layout = LayoutReader::open(l.dir());
    r.api().push_from_layout(&layout, repo, &image, Some(tag)).unwrap();
    image.digest
}

/// An index nested `depth` deep around a small image, made up in `h` as `repo:tag`.
fn deep_index(h: &Hostile, repo: &str, tag: &str, depth: usize) {
    let mut inner = made_up_image(h, repo, None, "deep");
    for level in 0..depth {
        let doc =
            json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [inner]});
        inner = h.put_manifest(repo, (level + 1 == depth).then_some(tag), &doc);
    }
}

/// An image whose referrers listing loops: it lists a signature, and the
/// signature's listing names the image back (and itself).
fn looping_referrers(h: &Hostile, repo: &str, tag: &str) -> String {
    let image = made_up_image(h, repo, Some(tag), "loop");
    let empty = h.put_blob(b"{}");
    let signature = h.put_manifest(
        repo,
        None,
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.example.signature",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}],
            "subject": image,
        }),
    );
    let mut listed = signature.clone();
    listed["artifactType"] = json!("application/vnd.example.signature");
    let image_digest = image["digest"].as_str().unwrap().to_string();
    h.set_referrers(&image_digest, vec![listed.clone()]);
    h.set_referrers(signature["digest"].as_str().unwrap(), vec![image, listed]);
    image_digest
}

/// An image with `n` referrers listed (none of them real).
fn wide_referrers(h: &Hostile, repo: &str, tag: &str, n: usize) {
    let image = made_up_image(h, repo, Some(tag), "wide");
    let listed = (0..n)
        .map(|i| {
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": format!("sha256:{:064x}", i + 1), "size": 100, "artifactType": "x/y"})
        })
        .collect();
    h.set_referrers(image["digest"].as_str().unwrap(), listed);
}

/// Serves the upstream registry's blobs at `/<repo>/<digest>` (where the
/// hostile registry redirects blob reads), as a storage service would.
fn blob_store(upstream: String) -> impl Fn(&str) -> Reply + Send + Sync + 'static {
    move |path: &str| {
        let Some((repo, digest)) = path.trim_start_matches('/').rsplit_once('/') else {
            return (404, vec![], vec![]);
        };
        match reqwest::blocking::get(format!("{upstream}/v2/{repo}/blobs/{digest}")).and_then(|r| r.bytes()) {
            Ok(b) => (200, vec![("Content-Type".into(), "application/octet-stream".into())], b.to_vec()),
            Err(_) => (502, vec![], vec![]),
        }
    }
}

fn config(hostile: &str, target: &str, limits: &str, steps: &[(&str, &str, &str)]) -> String {
    let mut y = format!(
        "version: 1\ncreds:\n  - {{registry: \"{hostile}\", tls: disabled, user: {USER}, pass: {PASS}}}\n  - {{registry: \"{target}\", tls: disabled}}\ndefaults:\n  parallel: 2\n  skipDockerConfig: true\n  limits: {{{limits}}}\nsync:\n"
    );
    for (repo, kind, extra) in steps {
        y += &format!("  - {{source: \"{hostile}/{repo}\", target: \"{target}/{repo}\", type: {kind}{extra}}}\n");
    }
    y
}

fn write_config(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("regsync.yml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn one_run_against_a_hostile_registry_ends_by_itself_copies_the_healthy_and_names_the_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, target) = (Registry::start(), Registry::start());
    let good: Vec<(String, String)> = (1..=2)
        .map(|i| (format!("v{i}"), push_image(&upstream, dir.path(), "good/app", &format!("v{i}"), i, 300_000)))
        .collect();
    push_image(&upstream, dir.path(), "hostile/stall", "v1", 7, 400_000);
    let redirected = push_image(&upstream, dir.path(), "hostile/redirect", "v1", 8, 200_000);

    let h = Hostile::start(&upstream.url);
    h.require_basic(USER, PASS);
    let elsewhere = Elsewhere::start(blob_store(upstream.url.clone()));
    h.scene("hostile/bigtags", Scene::EndlessTags { bytes: 300 << 20 });
    h.scene("hostile/huge", Scene::HugeManifest { bytes: 100 << 20 });
    h.scene("hostile/stall", Scene::StallBlobs { after: 1024 });
    h.scene("hostile/html", Scene::Html);
    h.scene("hostile/redirect", Scene::RedirectBlobs { to: elsewhere.url.clone() });
    for repo in ["hostile/deep", "hostile/loop", "hostile/wide"] {
        h.scene(repo, Scene::Memory);
    }
    deep_index(&h, "hostile/deep", "v1", 200);
    let looped = looping_referrers(&h, "hostile/loop", "v1");
    wide_referrers(&h, "hostile/wide", "v1", 5000);

    let text = config(
        &h.host,
        &target.host,
        "idleTimeout: 2s",
        &[
            ("good/app", "repository", ""),
            ("hostile/bigtags", "repository", ""),
            ("hostile/huge:v1", "image", ""),
            ("hostile/stall:v1", "image", ""),
            ("hostile/html:v1", "image", ""),
            ("hostile/redirect:v1", "image", ""),
            ("hostile/deep:v1", "image", ""),
            ("hostile/loop:v1", "image", ", referrers: true"),
            ("hostile/wide:v1", "image", ", referrers: true"),
        ],
    );
    let cfg = write_config(dir.path(), &text);
    let Measured { run, max_rss_kib, elapsed, killed } =
        run_measured(dir.path(), &["once", "-c", &cfg], Duration::from_secs(300));
    let out = format!("{}\n{}", run.stdout, run.stderr);
    assert!(!killed, "the run did not end by itself in 300 s:\n{out}");
    assert_eq!(run.code, 1, "{out}");
    assert!(elapsed < Duration::from_secs(120), "took {elapsed:?}:\n{out}");
    assert!(max_rss_kib < 64 << 10, "peak RSS {max_rss_kib} KiB, over 64 MiB:\n{out}");
    eprintln!("hostile run: {elapsed:?}, peak RSS {} MiB", max_rss_kib >> 10);

    // The healthy images are copied, byte for byte.
    for (tag, digest) in &good {
        assert_eq!(target.api().digest_of("good/app", tag).as_ref(), Some(digest), "good/app:{tag}\n{out}");
        assert_eq!(target.api().verify_tag("good/app", tag), Vec::<String>::new());
    }
    assert_eq!(target.api().digest_of("hostile/redirect", "v1"), Some(redirected), "{out}");
    assert_eq!(target.api().digest_of("hostile/loop", "v1"), Some(looped), "a looping referrers graph ends:\n{out}");

    // Every refused image is named with what was too large (or wrong) and the limit, and nothing of it is written.
    let host = &h.host;
    let refused = [
        (
            "hostile/bigtags",
            format!("the tag list of {host}/hostile/bigtags is larger than limits.listPageBytes (8388608 bytes)"),
        ),
        (
            "hostile/huge",
            format!(
                "manifest {host}/hostile/huge:v1 is larger than limits.manifestBytes (8388608 bytes): 104857600 bytes announced"
            ),
        ),
        ("hostile/stall", "no data for 2s (limits.idleTimeout)".to_string()),
        ("hostile/html", "not a manifest (text/html)".to_string()),
        ("hostile/deep", "the image's graph is deeper than 16 levels (limits.depth)".to_string()),
        ("hostile/wide", "more than 1000 referrers (limits.referrers)".to_string()),
    ];
    for (repo, why) in &refused {
        let line = run.stderr.lines().find(|l| l.contains(why.as_str()));
        let line = line.unwrap_or_else(|| panic!("no error naming {repo}: {why}\n{out}"));
        assert!(line.contains(repo), "{line}");
        assert!(target.api().tags(repo).is_empty(), "{repo} was written to the target");
    }
    assert!(run.stdout.contains(&format!("{} failed", refused.len())), "{}", run.stdout);

    // Credentials went to the registry and nowhere else.
    assert!(h.log().iter().any(|s| s.authorization), "the run logged in");
    let away = elsewhere.seen();
    assert!(!away.is_empty(), "the redirect was followed");
    assert!(away.iter().all(|s| !s.authorization), "credentials sent to another host: {away:?}");
    assert!(!out.contains(PASS), "the password reached a log line");
}
