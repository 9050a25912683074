//! Doing less work than regsync, counted at the registries through our proxy:
//! each blob crosses the wire once per run, other repositories of the target
//! mount it, a no-op run costs one HEAD per tag per side, and rate limits are
//! waited out (RL-1 … RL-3).

use std::time::{Duration, Instant};

use regsync::client::Client;
use regsync::config;
use regsync::pipeline::{Mode, Pipeline, PipelineOptions, StepReport};
use regsync::template::Templates;
use regsync_tests::fixtures::noise;
use regsync_tests::fixtures::{self, AMD64, ARM64};
use regsync_tests::oci::LayoutReader;
use regsync_tests::proxy::{Fault, FaultProxy, Rule};
use regsync_tests::registry::{Registry, RegistryOptions};

use crate::client::rt;

/// Six two-platform images sharing one large base layer, in two repositories.
fn shared_base_source() -> (Registry, tempfile::TempDir, String) {
    let src = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let mut l = fixtures::Layout::create(dir.path());
    let base = noise(7, 200_000);
    for i in 0..6 {
        let top = noise(100 + i, 3_000);
        let amd = l.image(AMD64, &[("base", &base), ("top", &top)]);
        let arm = l.image(ARM64, &[("base", &base), ("top", &top)]);
        let idx = l.index(&[amd, arm], None);
        l.tag(&format!("t{i}"), &idx);
    }
    l.save();
    let layout = LayoutReader::open(dir.path());
    for (tag, d) in layout.tags() {
        for repo in ["app", "app2"] {
            src.api().push_from_layout(&layout, repo, &d, Some(&tag)).unwrap();
        }
    }
    let first = &layout.tags()["t0"];
    let index: serde_json::Value = serde_json::from_slice(&layout.blob(&first.digest).unwrap()).unwrap();
    let amd = index["manifests"][0]["digest"].as_str().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&layout.blob(amd).unwrap()).unwrap();
    let base_digest = doc["layers"][0]["digest"].as_str().unwrap().to_string();
    (src, dir, base_digest)
}

pub(crate) fn run(yaml: &str, options: PipelineOptions, action: Mode) -> Vec<StepReport> {
    let loaded = config::load_str(yaml, "work.yml", &Templates::default()).unwrap_or_else(|e| panic!("{e}"));
    rt().block_on(async {
        let client = Client::from_config(&loaded.config, "regsync-test".into()).await;
        Pipeline::new(&loaded.config, client, options).run(&loaded.config.sync, action).await
    })
}

pub(crate) fn creds(hosts: &[&str]) -> String {
    let mut y = String::from("creds:\n");
    for h in hosts {
        y += &format!("  - registry: {h}\n    tls: disabled\n");
    }
    y + "defaults:\n  parallel: 4\n  skipDockerConfig: true\n"
}

#[test]
fn each_blob_is_sent_once_and_other_repositories_mount_it() {
    let (src, _dir, base) = shared_base_source();
    let dst = Registry::start_with(RegistryOptions::default().relative_urls());
    let proxy = FaultProxy::start(&dst.url);
    let yaml = format!(
        "{}sync:\n  - {{source: {s}/app, target: {p}/app, type: repository}}\n  - {{source: {s}/app2, target: {p}/app2, type: repository}}\n",
        creds(&[&src.host, &proxy.host]),
        s = src.host,
        p = proxy.host
    );
    let reports = run(&yaml, PipelineOptions::default(), Mode::Copy);
    assert!(reports.iter().all(StepReport::ok), "{:?}", reports.iter().map(|r| &r.errors).collect::<Vec<_>>());
    let uploads_of_base =
        // Query values arrive percent-encoded (`sha256%3A…`), as Go's url.Values sends them.
        proxy.log().iter().filter(|l| l.method == "PUT" && l.path.contains(&format!("digest={}", base.replace(':', "%3A")))).count();
    assert_eq!(uploads_of_base, 1, "the shared base layer crossed the wire once");
    let mounts = proxy.log().iter().filter(|l| l.method == "POST" && l.path.contains("mount=")).count();
    assert!(mounts >= 1, "the second repository mounted it");
    let sent: u64 = reports.iter().map(|r| r.totals().blobs_copied).sum();
    let put_count =
        proxy.log().iter().filter(|l| l.method == "PUT" && l.path.contains("/blobs/uploads/")).count() as u64;
    assert_eq!(sent, put_count, "the report counts what was sent");
    for repo in ["app", "app2"] {
        for i in 0..6 {
            assert_eq!(dst.api().verify_tag(repo, &format!("t{i}")), Vec::<String>::new());
        }
    }
}

#[test]
fn a_no_op_run_costs_one_head_per_tag_per_side() {
    let (src, _dir, _) = shared_base_source();
    let dst = Registry::start_with(RegistryOptions::default().relative_urls());
    let (src_proxy, dst_proxy) = (FaultProxy::start(&src.url), FaultProxy::start(&dst.url));
    let yaml = format!(
        "{}sync:\n  - {{source: {s}/app, target: {d}/app, type: repository}}\n",
        creds(&[&src_proxy.host, &dst_proxy.host]),
        s = src_proxy.host,
        d = dst_proxy.host
    );
    run(&yaml, PipelineOptions::default(), Mode::Copy);
    src_proxy.clear_log();
    dst_proxy.clear_log();
    let reports = run(&yaml, PipelineOptions::default(), Mode::Copy);
    assert_eq!(reports[0].images.len(), 6);
    let describe = |p: &FaultProxy| p.log().iter().map(|l| format!("{} {}", l.method, l.path)).collect::<Vec<_>>();
    assert_eq!(src_proxy.count("HEAD", "/manifests/"), 6, "{:#?}", describe(&src_proxy));
    assert_eq!(src_proxy.log().len(), 7, "one tag list and six HEADs: {:#?}", describe(&src_proxy));
    assert_eq!(dst_proxy.log().len(), 6, "six HEADs on the target: {:#?}", describe(&dst_proxy));
}

#[test]
fn rate_limits_are_waited_out_rl_2_rl_3() {
    let (src, _dir, _) = shared_base_source();
    let dst = Registry::start();
    let proxy = FaultProxy::start(&src.url);
    // The first two lookups report 2 pulls left; afterwards the header is gone (plenty left).
    proxy.add(Rule::new(None, "/manifests/t0", Fault::AddHeader("RateLimit-Remaining".into(), "2;w=21600".into()), 2));
    let yaml = format!(
        "{}sync:\n  - source: {p}/app:t0\n    target: {d}/app:t0\n    type: image\n    ratelimit: {{min: 10, retry: 5m}}\n",
        creds(&[&proxy.host, &dst.host]),
        p = proxy.host,
        d = dst.host
    );
    let options = PipelineOptions { rate_limit_retry: Some(Duration::from_millis(400)), ..PipelineOptions::default() };
    let started = Instant::now();
    let reports = run(&yaml, options, Mode::Copy);
    assert!(reports[0].ok(), "{:?}", reports[0].errors);
    assert!(started.elapsed() >= Duration::from_millis(400), "waited for the limit: {:#?}", proxy.log());
    let manifests: Vec<String> = proxy
        .log()
        .iter()
        .filter(|l| l.path.contains("/manifests/"))
        .map(|l| format!("{} {}", l.method, if l.path.ends_with("/t0") { "t0" } else { "digest" }))
        .collect();
    // RL-2: the first look is a HEAD, then a low re-check, a wait, a good one;
    // the pull (a GET, what counts against the limit) only after the check.
    assert_eq!(manifests[..3], ["HEAD t0", "HEAD t0", "HEAD t0"], "{manifests:#?}");
    assert!(manifests.len() > 3 && manifests[3..].iter().all(|m| m == "GET digest"), "{manifests:#?}");
    assert!(dst.api().digest_of("app", "t0").is_some());
    // check mode never waits (IMG-8).
    proxy.clear_log();
    proxy.add(Rule::new(Some("HEAD"), "/manifests/t0", Fault::AddHeader("RateLimit-Remaining".into(), "0".into()), 5));
    let reports = run(&yaml, PipelineOptions::default(), Mode::Check);
    assert!(reports[0].ok());
    assert_eq!(proxy.count("HEAD", "/manifests/t0"), 1);
}
