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

/// Measures a run's peak memory from a small process (see `tests/src/bin/rss-of.rs`).
const RSS_OF: &str = env!("CARGO_BIN_EXE_rss-of");
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
        run_measured(RSS_OF, dir.path(), &["once", "-c", &cfg], Duration::from_secs(300));
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

/// Sends SIGTERM to `pid`.
fn sigterm(pid: u32) {
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
}

/// Starts `regsync ARGS` in `dir`, waits until `ready` holds, sends SIGTERM,
/// and returns the run and how long it took to end after the signal.
fn stop_when(dir: &std::path::Path, args: &[&str], ready: impl Fn() -> bool) -> (regsync_tests::bin::Run, Duration) {
    let child = std::process::Command::new(regsync_tests::bin::regsync_bin())
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(regsync_tests::bin::wait_for(Duration::from_secs(60), &ready), "the run never got there");
    std::thread::sleep(Duration::from_millis(300));
    sigterm(child.id());
    let signalled = std::time::Instant::now();
    let run = regsync_tests::bin::Run::from(child.wait_with_output().unwrap());
    (run, signalled.elapsed())
}

#[test]
fn once_and_check_stop_within_seconds_of_sigterm_whatever_they_are_doing() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, target) = (Registry::start(), Registry::start());
    push_image(&upstream, dir.path(), "hostile/stall", "v1", 7, 400_000);
    let h = Hostile::start(&upstream.url);
    h.scene("hostile/stall", Scene::StallBlobs { after: 1024 });
    h.scene("hostile/bigtags", Scene::EndlessTags { bytes: 100 << 20 });
    let stalled_blob = || h.log().iter().any(|s| s.path.contains("/hostile/stall/blobs/") && s.method == "GET");
    let listing = || h.log().iter().any(|s| s.path.contains("/hostile/bigtags/tags/list"));

    // A body that stalls, with an idle timeout far away: only the signal ends it.
    let text = config(&h.host, &target.host, "idleTimeout: 10m", &[("hostile/stall:v1", "image", "")]);
    let cfg = write_config(dir.path(), &text);
    let (run, took) = stop_when(dir.path(), &["once", "-c", &cfg], stalled_blob);
    assert!(took < Duration::from_secs(5), "once took {took:?} to stop\n{}", run.stderr);
    eprintln!("once stopped in {took:?}");
    assert_eq!(run.code, 0, "cancelled and nothing else failed (SIG-3)\n{}", run.stderr);
    assert!(target.api().tags("hostile/stall").is_empty());

    // A tag list of millions of names, with the limits raised so it is read and parsed.
    let text = config(
        &h.host,
        &target.host,
        "listPageBytes: 209715200, tags: 100000000",
        &[("hostile/bigtags", "repository", "")],
    );
    let cfg = write_config(dir.path(), &text);
    let (run, took) = stop_when(dir.path(), &["check", "-c", &cfg], || {
        // Late enough that the list is being parsed, not read.
        listing() && {
            std::thread::sleep(Duration::from_millis(1500));
            true
        }
    });
    assert!(took < Duration::from_secs(5), "check took {took:?} to stop\n{}", run.stderr);
    // SIG-3: 0 when only the cancellation stopped it; 1 when the deadline had to
    // (a parse held the run, and the log says so) or when an image had failed before.
    let deadline = run.stderr.contains("did not stop in time after the signal");
    let failed = run.stderr.contains("level=ERROR");
    assert_eq!(run.code, if deadline || failed { 1 } else { 0 }, "{}", run.stderr);
    eprintln!("check stopped in {took:?} ({})", if deadline { "deadline" } else { "cancelled" });
}

#[test]
fn idle_waits_fail_like_resets_and_a_slow_moving_transfer_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, target) = (Registry::start(), Registry::start());
    let slow = push_image(&upstream, dir.path(), "hostile/trickle", "v1", 9, 60_000);
    let h = Hostile::start(&upstream.url);
    // About 6 s for the layer, never 2 s without a byte.
    h.scene("hostile/trickle", Scene::Trickle { chunk: 5_000, every: Duration::from_millis(500) });
    h.scene("hostile/silent", Scene::Silent);
    let text = config(
        &h.host,
        &target.host,
        "idleTimeout: 2s",
        &[("hostile/trickle:v1", "image", ""), ("hostile/silent:v1", "image", "")],
    );
    let cfg = write_config(dir.path(), &text);
    let m = run_measured(RSS_OF, dir.path(), &["once", "-c", &cfg], Duration::from_secs(120));
    let out = format!("{}\n{}", m.run.stdout, m.run.stderr);
    assert!(!m.killed, "{out}");
    assert_eq!(m.run.code, 1, "{out}");
    assert_eq!(target.api().digest_of("hostile/trickle", "v1"), Some(slow), "slow but moving is fine:\n{out}");
    let silent = m
        .run
        .stderr
        .lines()
        .find(|l| l.contains("hostile/silent") && l.contains("no data for 2s (limits.idleTimeout)"));
    assert!(silent.is_some(), "a registry that never answers fails the image:\n{out}");
    // Asked again like a reset (HTTP-4), then given up: 1 + 5 retries.
    let asked = h.log().iter().filter(|s| s.path.contains("/hostile/silent/manifests/")).count();
    assert_eq!(asked, 6, "{out}");
    assert!(m.elapsed < Duration::from_secs(60), "{:?}", m.elapsed);
}

#[test]
fn token_and_error_bodies_are_read_only_as_far_as_needed() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, target) = (Registry::start(), Registry::start());
    let h = Hostile::start(&upstream.url);
    h.scene("hostile/huge-error", Scene::HugeError { bytes: 200 << 20 });
    let text = config(&h.host, &target.host, "idleTimeout: 5s", &[("hostile/huge-error:v1", "image", "")]);
    let cfg = write_config(dir.path(), &text);
    let m = run_measured(RSS_OF, dir.path(), &["once", "-c", &cfg], Duration::from_secs(120));
    let out = format!("{}\n{}", m.run.stdout, m.run.stderr);
    assert_eq!(m.run.code, 1, "{out}");
    // Only the start of the body was read: too little to parse, so its text is the message.
    let failed = m.run.stderr.lines().find(|l| l.contains("hostile/huge-error") && l.contains("[http 404]"));
    assert!(failed.is_some_and(|l| l.contains(r#"not found: {\"errors\""#)), "{out}");
    assert!(m.max_rss_kib < 64 << 10, "an error body of 200 MiB cost {} KiB:\n{out}", m.max_rss_kib);

    // A realm that answers with a 20 MiB "token".
    let realm =
        Elsewhere::start(|_| (200, vec![("Content-Type".into(), "application/json".into())], vec![b' '; 20 << 20]));
    let h = Hostile::start(&upstream.url);
    h.require_bearer(&format!("{}/token", realm.url));
    let text = config(&h.host, &target.host, "idleTimeout: 5s", &[("any/repo:v1", "image", "")]);
    let cfg = write_config(dir.path(), &text);
    let m = run_measured(RSS_OF, dir.path(), &["once", "-c", &cfg], Duration::from_secs(120));
    let out = format!("{}\n{}", m.run.stdout, m.run.stderr);
    assert_eq!(m.run.code, 1, "{out}");
    assert!(
        m.run
            .stderr
            .contains("token response is larger than the token size limit (262144 bytes): 20971520 bytes announced"),
        "{out}"
    );
    assert!(m.max_rss_kib < 64 << 10, "{} KiB", m.max_rss_kib);
    assert!(!realm.seen().is_empty());
}

/// What the host a real registry redirects blob reads to does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    /// Serves the registry's storage files.
    Serve,
    /// Redirects each request to itself.
    Loop,
    /// Redirects each request one hop further, without end.
    Hops,
}

/// A storage service for a real registry's `redirect` middleware: serves
/// `<storage>/<path>`, or loops, as `mode` says.
fn storage_service(
    storage: std::sync::Arc<std::sync::Mutex<std::path::PathBuf>>,
    mode: std::sync::Arc<std::sync::Mutex<Store>>,
) -> Elsewhere {
    let own: std::sync::Arc<std::sync::OnceLock<String>> = std::sync::Arc::default();
    let me = own.clone();
    let e = Elsewhere::start(move |path: &str| {
        let base = me.get().cloned().unwrap_or_default();
        match *mode.lock().unwrap() {
            Store::Serve => {
                let file = storage.lock().unwrap().join(path.split('?').next().unwrap_or("").trim_start_matches('/'));
                match std::fs::read(file) {
                    Ok(b) => (200, vec![], b),
                    Err(_) => (404, vec![], vec![]),
                }
            }
            Store::Loop => (307, vec![("Location".into(), format!("{base}{path}"))], vec![]),
            Store::Hops => (307, vec![("Location".into(), format!("{base}{path}/x"))], vec![]),
        }
    });
    own.set(e.url.clone()).unwrap();
    e
}

fn redirecting_registry(options: regsync_tests::registry::RegistryOptions, to: &str) -> Registry {
    let mut options = options;
    options.extra_yaml =
        format!("middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: {to}/\n");
    Registry::start_with(options)
}

#[test]
fn blob_redirects_keep_credentials_home_never_downgrade_and_end() {
    use regsync_tests::registry::{RegistryOptions, TestPki};
    let dir = tempfile::tempdir().unwrap();
    let target = Registry::start();
    let storage: std::sync::Arc<std::sync::Mutex<std::path::PathBuf>> = std::sync::Arc::default();
    let mode = std::sync::Arc::new(std::sync::Mutex::new(Store::Serve));
    let store = storage_service(storage.clone(), mode.clone());

    // A real registry with basic auth whose blob reads redirect to the storage service.
    let source = redirecting_registry(RegistryOptions::default().user(USER, PASS), &store.url);
    *storage.lock().unwrap() = source.storage_dir();
    let digest = push_image(&source, dir.path(), "app", "v1", 3, 300_000);
    let yaml = |src: &Registry, ca: Option<&str>, to: &str| {
        let tls = match ca {
            Some(pem) => format!("regcert: {}", serde_json::to_string(pem).unwrap()),
            None => "tls: disabled".into(),
        };
        format!(
            "creds:\n  - {{registry: \"{s}\", {tls}, user: {USER}, pass: {PASS}}}\n  - {{registry: \"{t}\", tls: disabled}}\ndefaults: {{skipDockerConfig: true}}\nsync:\n  - {{source: \"{s}/app:v1\", target: \"{t}/{to}:v1\", type: image}}\n",
            s = src.host,
            t = target.host
        )
    };
    let cfg = write_config(dir.path(), &yaml(&source, None, "app"));
    let before = store.seen().len();
    let run = regsync_tests::bin::run_in(dir.path(), &["once", "-c", &cfg], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(target.api().digest_of("app", "v1"), Some(digest));
    let ours = &store.seen()[before..];
    assert!(ours.iter().any(|s| s.method == "GET"), "blob reads were redirected: {ours:?}");
    assert!(ours.iter().all(|s| !s.authorization), "credentials went to the storage host: {ours:?}");

    // Loops and endless hops end with a clear error.
    for (how, why) in [(Store::Loop, "redirect loop back to"), (Store::Hops, "more than 10 redirects")] {
        *mode.lock().unwrap() = how;
        let cfg = write_config(dir.path(), &yaml(&source, None, "other"));
        let run = regsync_tests::bin::run_in(dir.path(), &["once", "-c", &cfg], None);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stderr.contains(why), "{why}:\n{}", run.stderr);
        assert!(target.api().tags("other").is_empty());
    }

    // Over https, a redirect to plain http is refused before anything is sent there.
    *mode.lock().unwrap() = Store::Serve;
    let pki = std::sync::Arc::new(TestPki::generate());
    let secure = redirecting_registry(RegistryOptions::default().user(USER, PASS).tls(pki.clone()), &store.url);
    *storage.lock().unwrap() = secure.storage_dir();
    push_image(&secure, dir.path(), "app", "v1", 4, 100_000);
    let cfg = write_config(dir.path(), &yaml(&secure, Some(&pki.ca_pem), "secure"));
    let before = store.seen().len();
    let run = regsync_tests::bin::run_in(dir.path(), &["once", "-c", &cfg], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("redirect from https to plain http"), "{}", run.stderr);
    assert_eq!(store.seen().len(), before, "nothing was sent over plain http");
    assert!(target.api().tags("secure").is_empty());
}

#[test]
fn listings_are_capped_across_pages_and_honest_pages_pass() {
    use regsync_tests::proxy::{Fault, FaultProxy, Rule};
    let dir = tempfile::tempdir().unwrap();
    let (source, target) = (Registry::start(), Registry::start());
    for i in 0..7 {
        push_image(&source, dir.path(), "many", &format!("t{i}"), 20 + i, 2_000);
    }
    for repo in ["r1", "r2", "r3"] {
        push_image(&source, dir.path(), repo, "v1", 40, 2_000);
    }
    let proxy = FaultProxy::start(&source.url);
    proxy.add(Rule::new(Some("GET"), "/tags/list", Fault::PaginateTags(2), 1000));
    let step = |limits: &str, kind: &str, src: &str, dst: &str| {
        format!(
            "creds:\n  - {{registry: \"{p}\", tls: disabled}}\n  - {{registry: \"{t}\", tls: disabled}}\ndefaults:\n  skipDockerConfig: true\n  limits: {{{limits}}}\nsync:\n  - {{source: \"{p}/{src}\", target: \"{t}/{dst}\", type: {kind}}}\n",
            p = proxy.host,
            t = target.host
        )
    };
    // Seven tags in pages of two: a limit of five stops at the third page.
    let cfg = write_config(dir.path(), &step("tags: 5", "repository", "many", "capped"));
    let run = regsync_tests::bin::run_in(dir.path(), &["once", "-c", &cfg], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let why = format!("the tag list of {}/many has more than 5 tags (limits.tags)", proxy.host);
    assert!(run.stderr.contains(&why), "{why}\n{}", run.stderr);
    assert!(target.api().tags("capped").is_empty(), "nothing of a refused listing is synced");
    // Within the limit, every page is followed.
    let cfg = write_config(dir.path(), &step("tags: 7", "repository", "many", "all"));
    let run = regsync_tests::bin::run_in(dir.path(), &["once", "-c", &cfg], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(target.api().tags("all").len(), 7);
    // The catalog has its own limit.
    let registry_step = format!(
        "creds:\n  - {{registry: \"{s}\", tls: disabled}}\n  - {{registry: \"{t}\", tls: disabled}}\ndefaults:\n  skipDockerConfig: true\n  limits: {{repositories: 2}}\nsync:\n  - {{source: \"{s}\", target: \"{t}/mirror\", type: registry}}\n",
        s = source.host,
        t = target.host
    );
    let cfg = write_config(dir.path(), &registry_step);
    let run = regsync_tests::bin::run_in(dir.path(), &["once", "-c", &cfg], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let why = format!("the catalog of {} has more than 2 repositories (limits.repositories)", source.host);
    assert!(run.stderr.contains(&why), "{why}\n{}", run.stderr);
}

#[test]
fn manifests_just_under_the_limit_everywhere_stay_within_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, target) = (Registry::start(), Registry::start());
    let h = Hostile::start(&upstream.url);
    // Twelve images whose manifests are each 3.5 MiB (within our limit and the
    // target registry's 4 MiB), all planned at once.
    let mut steps = Vec::new();
    for i in 0..12 {
        let repo = format!("hostile/fat{i}");
        h.scene(&repo, Scene::Memory);
        let image = made_up_image(&h, &repo, None, &format!("fat{i}"));
        let (config, layers) = {
            let doc: serde_json::Value = serde_json::from_slice(&h.manifest_bytes(&image)).unwrap();
            (doc["config"].clone(), doc["layers"].clone())
        };
        let padding = "x".repeat(7 << 19);
        h.put_manifest(
            &repo,
            Some("v1"),
            &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config, "layers": layers, "annotations": {"padding": padding}}),
        );
        steps.push(format!("{repo}:v1"));
    }
    let steps: Vec<(&str, &str, &str)> = steps.iter().map(|s| (s.as_str(), "image", "")).collect();
    let cfg = write_config(dir.path(), &config(&h.host, &target.host, "idleTimeout: 10s", &steps));
    let m = run_measured(RSS_OF, dir.path(), &["once", "-c", &cfg], Duration::from_secs(120));
    let out = format!("{}\n{}", m.run.stdout, m.run.stderr);
    assert_eq!(m.run.code, 0, "{out}");
    for (repo, _, _) in &steps {
        let (repo, tag) = repo.split_once(':').unwrap();
        assert_eq!(target.api().verify_tag(repo, tag), Vec::<String>::new(), "{repo}");
    }
    let gets = h.log().iter().filter(|s| s.method == "GET" && s.path.contains("/manifests/v1")).count();
    assert!(gets >= 12, "every manifest was read");
    assert!(m.max_rss_kib < 64 << 10, "twelve 3.5 MiB manifests at once cost {} KiB:\n{out}", m.max_rss_kib);
    eprintln!("fat manifests: peak RSS {} MiB", m.max_rss_kib >> 10);
}
