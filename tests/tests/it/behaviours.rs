//! Behaviours implemented with the engine and server but shown here, each on
//! the real binary against real registries: BAK-3, server `schedule` (cron),
//! SRV-1, PAR-4, `repoAuth`, HOST-6, `apiOpts.disableHead`, `blobLimit`,
//! `forceRecursive`, `includeExternal` and the `mediaTypes` skip.

use std::path::Path;
use std::time::Duration;

use regsync_tests::bin::{Run, ServerProcess, once_with, plain_creds, wait_for};
use regsync_tests::fixtures::{self, AMD64, ARM64, noise};
use regsync_tests::oci::LayoutReader;
use regsync_tests::proxy::{Fault, FaultProxy, Rule};
use regsync_tests::registry::{Registry, RegistryOptions};
use regsync_tests::token::TokenServer;

/// Plain-HTTP creds for these hosts, then the rest of the config.
fn config(hosts: &[&str], rest: &str) -> String {
    plain_creds(hosts) + "defaults:\n  skipDockerConfig: true\n" + rest
}

fn ok(dir: &Path, yaml: &str, extra: &[&str]) -> Run {
    once_with(dir, yaml, extra).expect_ok()
}

/// A layout with `one` and `two` (different single images) and `multi` (an index).
fn small_layout(dir: &Path) -> LayoutReader {
    let mut l = fixtures::Layout::create(dir);
    let one = l.image(AMD64, &[("f", b"one")]);
    l.tag("one", &one);
    let two = l.image(AMD64, &[("f", b"two")]);
    l.tag("two", &two);
    let amd = l.image(AMD64, &[("f", &noise(5, 1_500_000))]);
    let arm = l.image(ARM64, &[("f", b"multi arm64")]);
    let multi = l.index(&[amd, arm], None);
    l.tag("multi", &multi);
    l.save();
    LayoutReader::open(dir)
}

fn seeded() -> (Registry, tempfile::TempDir, LayoutReader) {
    let src = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let layout = small_layout(&dir.path().join("layout"));
    src.api().push_layout(&layout, "app").unwrap();
    (src, dir, layout)
}

#[test]
fn a_failed_backup_only_warns_and_the_sync_goes_on_bak_3() {
    let (src, dir, layout) = seeded();
    let dst = Registry::start();
    let proxy = FaultProxy::start(&dst.url);
    // The target holds `two` where the source has `one`.
    dst.api().push_from_layout(&layout, "app", &layout.tags()["two"], Some("v1")).unwrap();
    proxy.add(Rule::new(Some("PUT"), "/manifests/v1-old", Fault::Status { code: 403, retry_after: None }, 10));
    let yaml = config(
        &[&src.host, &proxy.host],
        &format!(
            "sync:\n  - {{source: {s}/app:one, target: {p}/app:v1, type: image, backup: \"{{{{.Ref.Tag}}}}-old\"}}\n",
            s = src.host,
            p = proxy.host
        ),
    );
    let r = ok(dir.path(), &yaml, &[]);
    assert!(r.stderr.contains("level=WARN msg=\"Failed to backup existing image\""), "{}", r.stderr);
    assert_eq!(dst.api().digest_of("app", "v1"), Some(layout.tags()["one"].digest.clone()), "the sync went on");
    assert!(dst.api().digest_of("app", "v1-old").is_none());
}

#[test]
fn a_cron_schedule_runs_the_step_at_its_minute() {
    let (src, dir, layout) = seeded();
    let dst = Registry::start();
    // The target's v1 is stale: the first pass (missing only) leaves it, the cron run fixes it.
    dst.api().push_from_layout(&layout, "app", &layout.tags()["two"], Some("one")).unwrap();
    // The binary is built first: its build can take longer than a minute.
    regsync_tests::bin::regsync_bin();
    let next = next_minute();
    let yaml = config(
        &[&src.host, &dst.host],
        &format!(
            "sync:\n  - {{source: {s}/app, target: {d}/app, type: repository, tags: {{allow: [one, two]}}, schedule: \"{next} * * * *\"}}\n",
            s = src.host,
            d = dst.host
        ),
    );
    std::fs::write(dir.path().join("regsync.yml"), yaml).unwrap();
    let server = ServerProcess::start(dir.path(), &["-c", "regsync.yml"]);
    let one = layout.tags()["one"].digest.clone();
    assert!(wait_for(Duration::from_secs(20), || dst.api().digest_of("app", "two").is_some()), "{}", server.log());
    assert_ne!(dst.api().digest_of("app", "one"), Some(one.clone()), "the first pass copies only missing tags");
    assert!(
        wait_for(Duration::from_secs(75), || dst.api().digest_of("app", "one") == Some(one.clone())),
        "the run at minute {next}: {}",
        server.log()
    );
    assert!(server.log().contains(&format!("sched=\"{next} * * * *\"")), "{}", server.log());
}

/// A minute of the hour at least 15 s ahead (UTC: the tests' processes have no TZ).
fn next_minute() -> u64 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    ((secs + 15) / 60 + 1) % 60
}

#[test]
fn a_step_without_schedule_or_interval_gets_no_first_pass_srv_1() {
    let (src, dir, _layout) = seeded();
    let dst = Registry::start();
    let yaml = config(
        &[&src.host, &dst.host],
        &format!(
            "sync:\n  - {{source: {s}/app:one, target: {d}/scheduled:one, type: image, interval: 1h}}\n  - {{source: {s}/app:two, target: {d}/unscheduled:two, type: image}}\n",
            s = src.host,
            d = dst.host
        ),
    );
    std::fs::write(dir.path().join("regsync.yml"), yaml).unwrap();
    let server = ServerProcess::start(dir.path(), &["-c", "regsync.yml"]);
    assert!(
        wait_for(Duration::from_secs(20), || dst.api().digest_of("scheduled", "one").is_some()),
        "{}",
        server.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(dst.api().digest_of("unscheduled", "two").is_none(), "no first pass without a schedule");
    assert!(server.log().contains("No schedule or interval found, ignoring"), "{}", server.log());
}

#[test]
fn an_overlapping_scheduled_run_is_skipped_par_4() {
    let (src, dir, _layout) = seeded();
    let dst = Registry::start();
    let proxy = FaultProxy::start(&src.url);
    // Every blob read of the big layer takes 2.5 s: a run outlasts the 1 s interval.
    proxy.add(Rule::new(Some("GET"), "/blobs/", Fault::Delay(Duration::from_millis(2500)), 1000));
    let yaml = config(
        &[&proxy.host, &dst.host],
        &format!(
            "sync:\n  - {{source: {p}/app, target: {d}/app, type: repository, tags: {{allow: [multi]}}, interval: 1s}}\n",
            p = proxy.host,
            d = dst.host
        ),
    );
    std::fs::write(dir.path().join("regsync.yml"), yaml).unwrap();
    // The first pass copies the image; afterwards a new upstream digest keeps every run slow.
    let server = ServerProcess::start(dir.path(), &["-c", "regsync.yml"]);
    assert!(wait_for(Duration::from_secs(30), || dst.api().digest_of("app", "multi").is_some()), "{}", server.log());
    let mut big = fixtures::Layout::create(dir.path().join("big"));
    let slow = big.image(AMD64, &[("f", &noise(77, 2_000_000))]);
    big.tag("multi", &slow);
    big.save();
    src.api().push_layout(&LayoutReader::open(dir.path().join("big")), "app").unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || server
            .log()
            .contains("Skipping scheduled run, the previous run is still going")),
        "{}",
        server.log()
    );
    assert!(wait_for(Duration::from_secs(20), || dst.api().digest_of("app", "multi") == Some(slow.digest.clone())));
    assert_eq!(dst.api().verify_tag("app", "multi"), Vec::<String>::new());
}

#[test]
fn repo_auth_keeps_one_token_per_repository() {
    let issuer = TokenServer::start(&[("bob", "pw")]);
    let cfg = tempfile::tempdir().unwrap();
    let reg = Registry::start_with(RegistryOptions {
        extra_yaml: issuer.registry_yaml(cfg.path()),
        ..RegistryOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    fixtures::example_layout(&dir.path().join("layout"));
    let yaml = |repo_auth: bool, prefix: &str| {
        format!(
            "creds:\n  - {{registry: \"{h}\", tls: disabled, user: bob, pass: pw, repoAuth: {repo_auth}}}\ndefaults:\n  skipDockerConfig: true\nsync:\n  - {{source: \"ocidir://layout:v1\", target: \"{h}/{prefix}/a:v1\", type: image}}\n  - {{source: \"ocidir://layout:v1\", target: \"{h}/{prefix}/b:v1\", type: image}}\n",
            h = reg.host
        )
    };
    let scopes_with_two_repos = |from: usize| {
        issuer.scopes.lock().unwrap()[from..]
            .iter()
            .filter(|s| s.iter().filter(|x| x.starts_with("repository:")).count() > 1)
            .count()
    };
    // One step after the other, so the second token request is made knowing the first scope.
    ok(dir.path(), &yaml(false, "shared"), &["--abort-on-error"]);
    assert!(scopes_with_two_repos(0) > 0, "one token per host gathers scopes: {:?}", issuer.scopes.lock().unwrap());
    let before = issuer.scopes.lock().unwrap().len();
    // The second step mounts the layers from the first repository: its token
    // must carry pull on that one too, without gathering every other scope.
    ok(dir.path(), &yaml(true, "split"), &["--abort-on-error"]);
    let after = issuer.scopes.lock().unwrap().len();
    assert!(after > before, "tokens were issued");
    // Every token asked for split/b carries split/b's scopes and, for the
    // mounts, pull on split/a: nothing gathered from other repositories.
    let scopes = issuer.scopes.lock().unwrap()[before..].to_vec();
    let for_b: Vec<&Vec<String>> =
        scopes.iter().filter(|s| s.iter().any(|x| x.starts_with("repository:split/b:"))).collect();
    assert!(!for_b.is_empty());
    for s in &for_b {
        assert!(
            s.iter().all(|x| x.starts_with("repository:split/b:") || x == "repository:split/a:pull"),
            "repoAuth: {scopes:?}"
        );
    }
}

#[test]
fn config_creds_win_over_the_docker_config_host_6() {
    let reg = Registry::start_with(RegistryOptions::default().user("dora", "right"));
    let dir = tempfile::tempdir().unwrap();
    fixtures::example_layout(&dir.path().join("layout"));
    let docker = dir.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    use base64::Engine as _;
    let wrong = base64::engine::general_purpose::STANDARD.encode("dora:wrong");
    std::fs::write(docker.join("config.json"), format!(r#"{{"auths":{{"{}":{{"auth":"{wrong}"}}}}}}"#, reg.host))
        .unwrap();
    let yaml = format!(
        "creds:\n  - {{registry: \"{h}\", tls: disabled, user: dora, pass: right}}\nsync:\n  - {{source: \"ocidir://layout:v1\", target: \"{h}/app:v1\", type: image}}\n",
        h = reg.host
    );
    std::fs::write(dir.path().join("regsync.yml"), &yaml).unwrap();
    let out = std::process::Command::new(regsync_tests::bin::regsync_bin())
        .args(["once", "-c", "regsync.yml"])
        .current_dir(dir.path())
        .env("DOCKER_CONFIG", &docker)
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(reg.api().with_basic_auth("dora", "right").digest_of("app", "v1").is_some());
}

#[test]
fn disable_head_reads_with_get_on_both_sides_http_9() {
    let (src, dir, _layout) = seeded();
    let dst = Registry::start();
    let (sp, dp) = (FaultProxy::start(&src.url), FaultProxy::start(&dst.url));
    let yaml = format!(
        "creds:\n  - {{registry: \"{s}\", tls: disabled, apiOpts: {{disableHead: \"true\"}}}}\n  - {{registry: \"{d}\", tls: disabled, apiOpts: {{disableHead: \"true\"}}}}\ndefaults:\n  skipDockerConfig: true\nsync:\n  - {{source: {s}/app, target: {d}/app, type: repository}}\n",
        s = sp.host,
        d = dp.host
    );
    ok(dir.path(), &yaml, &[]);
    assert_eq!(dst.api().tag_digests("app"), src.api().tag_digests("app"));
    let again = ok(dir.path(), &yaml, &[]);
    assert!(again.stdout.contains("0 copied, 3 up to date"), "a GET answers what HEAD would: {}", again.stdout);
    for p in [&sp, &dp] {
        assert_eq!(p.count("HEAD", "/manifests/"), 0, "{:#?}", p.log());
    }
}

#[test]
fn blob_limit_caps_the_chunk_size_a_registry_asks_for_http_12() {
    let dir = tempfile::tempdir().unwrap();
    small_layout(&dir.path().join("layout"));
    let dst = Registry::start();
    let proxy = FaultProxy::start(&dst.url);
    // The registry asks for 2 MiB chunks.
    proxy.add(Rule::new(
        Some("POST"),
        "/blobs/uploads/",
        Fault::AddHeader("OCI-Chunk-Min-Length".into(), "2097152".into()),
        1000,
    ));
    let yaml = |limit: &str, repo: &str| {
        format!(
            "creds:\n  - {{registry: \"{p}\", tls: disabled, blobChunk: 65536}}\ndefaults:\n  skipDockerConfig: true\n{limit}sync:\n  - {{source: \"ocidir://layout:multi\", target: \"{p}/{repo}:multi\", type: image}}\n",
            p = proxy.host
        )
    };
    let biggest_patch =
        |proxy: &FaultProxy| proxy.log().iter().filter(|l| l.method == "PATCH").map(|l| l.body_len).max().unwrap_or(0);
    // The 1.5 MB layer fits in one chunk of the size the registry asks for…
    ok(dir.path(), &yaml("", "asked"), &[]);
    assert!(biggest_patch(&proxy) > 1_400_000, "{:#?}", proxy.log());
    proxy.clear_log();
    // …unless blobLimit caps it.
    ok(dir.path(), &yaml("  blobLimit: 262144\n", "capped"), &[]);
    assert_eq!(biggest_patch(&proxy), 262144, "{:#?}", proxy.log());
    assert_eq!(dst.api().verify_tag("capped", "multi"), Vec::<String>::new());
}

#[test]
fn force_recursive_repushes_manifests_but_never_resends_blobs_copy_12() {
    let (src, dir, _layout) = seeded();
    let dst = Registry::start();
    let proxy = FaultProxy::start(&dst.url);
    let yaml = config(
        &[&src.host, &proxy.host],
        &format!(
            "sync:\n  - {{source: {s}/app:multi, target: {p}/app:multi, type: image, forceRecursive: true}}\n",
            s = src.host,
            p = proxy.host
        ),
    );
    ok(dir.path(), &yaml, &[]);
    proxy.clear_log();
    let r = ok(dir.path(), &yaml, &[]);
    assert!(r.stderr.contains("msg=\"Image refreshing\"") && r.stderr.contains("forced=true"), "{}", r.stderr);
    assert_eq!(proxy.count("PUT", "/manifests/"), 3, "the index and both children again: {:#?}", proxy.log());
    assert_eq!(proxy.count("PUT", "/blobs/uploads/") + proxy.count("POST", "/blobs/uploads/"), 0, "no blob resent");
    assert!(proxy.count("HEAD", "/blobs/") >= 4, "every blob checked");
}

#[test]
fn external_layers_are_copied_only_with_include_external() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = fixtures::Layout::create(dir.path().join("layout"));
    let foreign = l.blob("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", b"foreign layer bytes");
    let config = l.json_blob(fixtures::MT_CONFIG, &serde_json::json!({"architecture": "amd64", "os": "windows"}));
    let mut layer = foreign.to_json();
    layer["urls"] = serde_json::json!(["https://example.invalid/layer"]);
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": fixtures::MT_MANIFEST, "config": config.to_json(), "layers": [layer],
    });
    let image = l.json_blob(fixtures::MT_MANIFEST, &manifest);
    l.tag("win", &image);
    l.save();
    for (flag, repo, copied) in [("", "without", false), (", includeExternal: true", "with", true)] {
        let yaml = format!(
            "sync:\n  - {{source: \"ocidir://layout:win\", target: \"ocidir://{repo}:win\", type: image{flag}}}\n"
        );
        ok(dir.path(), &yaml, &[]);
        let out = LayoutReader::open(dir.path().join(repo));
        assert_eq!(out.tags()["win"].digest, image.digest);
        assert_eq!(out.blob(&foreign.digest).is_some(), copied, "{repo}");
        assert!(out.blob(&config.digest).is_some());
    }
}

#[test]
fn a_media_type_outside_media_types_is_skipped_img_5() {
    let (src, dir, _layout) = seeded();
    let dst = Registry::start();
    let yaml = config(
        &[&src.host, &dst.host],
        &format!(
            "sync:\n  - {{source: {s}/app:multi, target: {d}/app:multi, type: image, mediaTypes: [application/vnd.oci.image.manifest.v1+json]}}\n",
            s = src.host,
            d = dst.host
        ),
    );
    let r = ok(dir.path(), &yaml, &[]);
    assert!(r.stderr.contains("msg=\"Skipping unsupported media type\""), "{}", r.stderr);
    assert!(r.stderr.contains("mediaType=application/vnd.oci.image.index.v1+json"), "{}", r.stderr);
    assert!(r.stdout.contains("0 copied, 0 up to date, 1 skipped"), "{}", r.stdout);
    assert!(dst.api().digest_of("app", "multi").is_none());
}

/// IMG-5 on later runs: a tag that `mediaTypes` skips stays missing from the
/// target, and looking at it again must not GET (pull) its manifest each run.
#[test]
fn a_skipped_media_type_costs_no_pull_on_later_runs_img_5() {
    let (src, dir, _layout) = seeded();
    let dst = Registry::start();
    let proxy = FaultProxy::start(&src.url);
    let yaml = config(
        &[&proxy.host, &dst.host],
        &format!(
            "sync:\n  - {{source: {s}/app, target: {d}/app, type: repository, mediaTypes: [application/vnd.oci.image.manifest.v1+json]}}\n",
            s = proxy.host,
            d = dst.host
        ),
    );
    let r = ok(dir.path(), &yaml, &[]);
    assert!(r.stdout.contains("2 copied, 0 up to date, 1 skipped"), "{}", r.stdout);
    proxy.clear_log();
    let r = ok(dir.path(), &yaml, &[]);
    assert!(r.stdout.contains("0 copied, 2 up to date, 1 skipped"), "{}", r.stdout);
    assert_eq!(proxy.count("GET", "/manifests/"), 0, "{:#?}", proxy.log());
    assert_eq!(proxy.count("HEAD", "/manifests/multi"), 1, "{:#?}", proxy.log());
    assert!(dst.api().digest_of("app", "multi").is_none());
}

/// A pull-only token may not list tags. Referrers are then found by asking for
/// each fallback tag, and the refused tag list is asked once per run, not once
/// per image.
#[test]
fn a_refused_tag_list_is_asked_once_per_run() {
    let (src, dir, _layout) = seeded();
    let dst = Registry::start();
    let proxy = FaultProxy::start(&src.url);
    proxy.add(Rule::new(Some("GET"), "/tags/list", Fault::Status { code: 403, retry_after: None }, 1000));
    let steps: String = ["one", "two", "multi"]
        .iter()
        .map(|t| {
            format!(
                "  - {{source: {s}/app:{t}, target: {d}/app:{t}, type: image, referrers: true}}\n",
                s = proxy.host,
                d = dst.host
            )
        })
        .collect();
    let yaml = config(&[&proxy.host, &dst.host], &format!("sync:\n{steps}"));
    let r = ok(dir.path(), &yaml, &[]);
    assert!(r.stdout.contains("3 copied, 0 up to date, 0 skipped, 0 failed"), "{}", r.stdout);
    for t in ["one", "two", "multi"] {
        assert_eq!(dst.api().digest_of("app", t), src.api().digest_of("app", t), "{t}");
    }
    assert_eq!(proxy.count("GET", "/tags/list"), 1, "{:#?}", proxy.log());
}
