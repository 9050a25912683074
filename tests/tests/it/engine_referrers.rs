//! Referrers as regsync leaves them, with the fewest requests: fallback-index
//! upkeep for every manifest pushed with a `subject` (children included,
//! referrers on or off, registries and layouts, COPY-10), layouts read
//! through their fallback tag, the referrers API (through our proxy, which
//! adds it in front of the real registry: `Link` pages, `OCI-Subject`), and
//! the no-op budget: a run that finds everything in place writes nothing and
//! pulls no manifest.

use std::collections::BTreeMap;

use regsync::pipeline::{Mode, Outcome, PipelineOptions, StepReport};
use regsync_tests::fixtures::{self, AMD64, ARM64};
use regsync_tests::oci::{LayoutReader, RegistryHttp, fallback_tag};
use regsync_tests::proxy::FaultProxy;
use regsync_tests::registry::Registry;
use serde_json::json;

use crate::engine_work::{creds, run};

fn ok(reports: &[StepReport]) {
    let errors: Vec<String> = reports.iter().flat_map(|r| r.errors.iter().map(ToString::to_string)).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// The digests a fallback index lists.
fn listed(index: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(index).unwrap();
    v["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap().to_string()).collect()
}

fn registry_listing(reg: &Registry, repo: &str, subject: &str) -> Option<Vec<String>> {
    reg.api().manifest(repo, &fallback_tag(subject)).map(|(_, bytes, _)| listed(&bytes))
}

fn layout_listing(dir: &std::path::Path, subject: &str) -> Option<Vec<String>> {
    let l = LayoutReader::open(dir);
    let entry = l.tags().get(&fallback_tag(subject)).cloned()?;
    Some(listed(&l.blob(&entry.digest).unwrap()))
}

/// An index whose second child is an attestation of the first (its subject
/// is a sibling), as build tools push them.
fn attested_index(dir: &std::path::Path) -> (regsync_tests::oci::Descriptor, regsync_tests::oci::Descriptor) {
    let mut l = fixtures::Layout::create(dir);
    let amd = l.image(AMD64, &[("app", b"attested amd64")]);
    let mut att = l.artifact(
        "application/vnd.in-toto+json",
        Some(&amd),
        &[("application/vnd.in-toto+json", b"{\"predicate\":1}")],
        &[],
    );
    att.platform = Some(json!({"architecture": "unknown", "os": "unknown"}));
    let index = l.index(&[amd.clone(), att.clone()], None);
    l.tag("v1", &index);
    l.save();
    (amd, att)
}

#[test]
fn a_child_with_a_subject_gets_its_fallback_index_even_with_referrers_off_copy_10() {
    let (src, dst) = (Registry::start(), Registry::start());
    let dir = tempfile::tempdir().unwrap();
    let (amd, att) = attested_index(&dir.path().join("layout"));
    src.api().push_layout(&LayoutReader::open(dir.path().join("layout")), "app").unwrap();
    let out = dir.path().join("out");
    let yaml = format!(
        "{}sync:\n  - {{source: {s}/app:v1, target: {d}/app:v1, type: image}}\n  - {{source: {s}/app:v1, target: \"ocidir://{o}:v1\", type: image}}\n",
        creds(&[&src.host, &dst.host]),
        s = src.host,
        d = dst.host,
        o = out.display()
    );
    let reports = run(&yaml, PipelineOptions::default(), Mode::Copy);
    ok(&reports);
    // What `regctl artifact list` reads on a registry without the referrers API, and in a layout.
    assert_eq!(registry_listing(&dst, "app", &amd.digest), Some(vec![att.digest.clone()]));
    assert_eq!(layout_listing(&out, &amd.digest), Some(vec![att.digest.clone()]));
    assert_eq!(dst.api().verify_tag("app", "v1"), Vec::<String>::new());
    assert_eq!(LayoutReader::open(&out).verify(), Vec::<String>::new());
    // With referrers on as well, the same single entry (nothing listed twice).
    let yaml = format!(
        "{}sync:\n  - {{source: {s}/app:v1, target: {d}/app2:v1, type: image, referrers: true}}\n",
        creds(&[&src.host, &dst.host]),
        s = src.host,
        d = dst.host
    );
    ok(&run(&yaml, PipelineOptions::default(), Mode::Copy));
    assert_eq!(registry_listing(&dst, "app2", &amd.digest), Some(vec![att.digest.clone()]));
    assert_eq!(dst.api().verify_tag("app2", "v1"), Vec::<String>::new());
}

#[test]
fn layouts_keep_fallback_tags_and_are_read_only_through_them() {
    let dir = tempfile::tempdir().unwrap();
    let shapes = fixtures::shapes_layout(&dir.path().join("src"));
    let (src, out) = (dir.path().join("src"), dir.path().join("out"));
    let yaml = format!(
        "defaults:\n  skipDockerConfig: true\nsync:\n  - {{source: \"ocidir://{}:multi\", target: \"ocidir://{}:multi\", type: image, referrers: true}}\n",
        src.display(),
        out.display()
    );
    ok(&run(&yaml, PipelineOptions::default(), Mode::Copy));
    let mut want = vec![shapes.sbom.digest.clone(), shapes.signature.digest.clone()];
    want.sort();
    let mut got = layout_listing(&out, &shapes.multi.digest).expect("the target layout has the fallback tag");
    got.sort();
    assert_eq!(got, want);
    assert_eq!(LayoutReader::open(&out).verify(), Vec::<String>::new());
    let index_before = std::fs::read(out.join("index.json")).unwrap();
    let again = run(&yaml, PipelineOptions::default(), Mode::Copy);
    assert_eq!(again[0].images[0].outcome, Outcome::UpToDate, "{:?}", again[0].images[0]);
    assert_eq!(std::fs::read(out.join("index.json")).unwrap(), index_before, "a no-op run writes nothing");

    // A layout whose referrer is listed in index.json but has no fallback tag:
    // regclient does not scan the layout, and neither do we.
    let mut l = fixtures::Layout::create(dir.path().join("untagged"));
    let image = l.image(AMD64, &[("x", b"x")]);
    l.tag("v1", &image);
    let sig = l.artifact("application/example.signature", Some(&image), &[("application/octet-stream", b"s")], &[]);
    l.keep(&sig);
    l.save();
    let out2 = dir.path().join("out2");
    let yaml = format!(
        "sync:\n  - {{source: \"ocidir://{}:v1\", target: \"ocidir://{}:v1\", type: image, referrers: true}}\n",
        dir.path().join("untagged").display(),
        out2.display()
    );
    ok(&run(&yaml, PipelineOptions::default(), Mode::Copy));
    assert!(LayoutReader::open(&out2).blob(&sig.digest).is_none(), "not listed through a fallback tag: not a referrer");
    assert!(layout_listing(&out2, &image.digest).is_none());
}

/// An image with referrers on its index and on one child, pushed through a
/// proxy that offers the referrers API, so the source lists them through it.
fn api_source(dir: &std::path::Path) -> (Registry, FaultProxy, BTreeMap<&'static str, String>) {
    let src = Registry::start();
    let proxy = FaultProxy::start(&src.url);
    proxy.emulate_referrers_api(1);
    let mut l = fixtures::Layout::create(dir);
    let amd = l.image(AMD64, &[("a", b"api amd64")]);
    let arm = l.image(ARM64, &[("a", b"api arm64")]);
    let index = l.index(&[amd.clone(), arm], None);
    l.tag("v1", &index);
    let sbom = l.artifact("application/example.sbom", Some(&index), &[("application/json", b"{\"sbom\":1}")], &[]);
    let sig = l.artifact("application/example.signature", Some(&index), &[("application/octet-stream", b"s")], &[]);
    let per_platform = l.artifact("application/example.arms", Some(&amd), &[("application/json", b"{}")], &[]);
    for referrer in [&sbom, &sig, &per_platform] {
        l.keep(referrer);
    }
    l.save();
    let through_proxy = RegistryHttp::new(&format!("http://{}", proxy.host), reqwest::blocking::Client::new());
    through_proxy.push_layout(&LayoutReader::open(dir), "app").unwrap();
    let digests = BTreeMap::from([
        ("index", index.digest),
        ("amd", amd.digest),
        ("sbom", sbom.digest),
        ("sig", sig.digest),
        ("arms", per_platform.digest),
    ]);
    (src, proxy, digests)
}

#[test]
fn the_referrers_api_is_listed_page_by_page_and_fallback_tags_are_not_probed() {
    let dir = tempfile::tempdir().unwrap();
    let (_src, src_proxy, d) = api_source(&dir.path().join("layout"));
    assert!(src_proxy.count("PUT", "/manifests/") > 0);
    src_proxy.clear_log();
    let dst = Registry::start();
    let yaml = format!(
        "{}sync:\n  - {{source: {s}/app:v1, target: {t}/app:v1, type: image, referrers: true}}\n",
        creds(&[&src_proxy.host, &dst.host]),
        s = src_proxy.host,
        t = dst.host
    );
    ok(&run(&yaml, PipelineOptions::default(), Mode::Copy));
    for what in ["index", "sbom", "sig", "arms"] {
        assert!(dst.api().manifest("app", &d[what]).is_some(), "{what} copied");
    }
    // The target has no API: its fallback indexes list them.
    let mut top = registry_listing(&dst, "app", &d["index"]).unwrap();
    top.sort();
    let mut want = vec![d["sbom"].clone(), d["sig"].clone()];
    want.sort();
    assert_eq!(top, want);
    assert_eq!(registry_listing(&dst, "app", &d["amd"]), Some(vec![d["arms"].clone()]));
    // Two referrers of the index, one per page: two requests for its list.
    let pages = src_proxy.log().iter().filter(|l| l.path.contains(&format!("/referrers/{}", d["index"]))).count();
    assert_eq!(pages, 2, "{:#?}", src_proxy.log());
    assert_eq!(src_proxy.count("GET", "/manifests/sha256-"), 0, "no fallback tag is probed on an API source");
    assert_eq!(src_proxy.count("HEAD", "/manifests/sha256-"), 0);
}

#[test]
fn a_target_with_the_referrers_api_gets_no_fallback_tags_and_a_rerun_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let shapes = fixtures::shapes_layout(&dir.path().join("src"));
    let src = Registry::start();
    src.api().push_layout(&LayoutReader::open(dir.path().join("src")), "app").unwrap();
    let dst = Registry::start();
    let dst_proxy = FaultProxy::start(&dst.url);
    dst_proxy.emulate_referrers_api(10);
    let yaml = format!(
        "{}sync:\n  - {{source: {s}/app:multi, target: {t}/app:multi, type: image, referrers: true}}\n",
        creds(&[&src.host, &dst_proxy.host]),
        s = src.host,
        t = dst_proxy.host
    );
    ok(&run(&yaml, PipelineOptions::default(), Mode::Copy));
    assert!(dst.api().manifest("app", &shapes.sbom.digest).is_some());
    assert!(dst.api().manifest("app", &shapes.signature.digest).is_some());
    let fallback_tags: Vec<String> = dst.api().tags("app").into_iter().filter(|t| t.starts_with("sha256-")).collect();
    assert!(fallback_tags.is_empty(), "OCI-Subject answered: no fallback index needed, got {fallback_tags:?}");
    dst_proxy.clear_log();
    let again = run(&yaml, PipelineOptions::default(), Mode::Copy);
    ok(&again);
    assert_eq!(again[0].images[0].outcome, Outcome::UpToDate);
    let writes: Vec<String> = dst_proxy
        .log()
        .iter()
        .filter(|l| !matches!(l.method.as_str(), "GET" | "HEAD"))
        .map(|l| format!("{} {}", l.method, l.path))
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");
    assert_eq!(dst_proxy.count("GET", &format!("/referrers/{}", shapes.multi.digest)), 1);
}

/// The budget of issue 9: a no-op run with referrers and digest tags on costs
/// at most 1.2 requests per source tag on each side, writes nothing and
/// pulls no manifest; the cold run before it probes no fallback tag that the
/// tag list shows absent.
#[test]
fn a_no_op_run_with_referrers_and_digest_tags_stays_within_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (Registry::start(), Registry::start());
    let (src_proxy, dst_proxy) = (FaultProxy::start(&src.url), FaultProxy::start(&dst.url));
    let repos = ["r0", "r1", "r2", "r3"];
    let mut tags = 0;
    let mut steps = String::new();
    for (i, repo) in repos.iter().enumerate() {
        fixtures::signed_repository(&dir.path().join(repo), i as u64 + 1, 10);
        let layout = LayoutReader::open(dir.path().join(repo));
        src.api().push_layout(&layout, repo).unwrap();
        tags += layout.tags().len();
        steps += &format!(
            "  - {{source: {s}/{repo}, target: {d}/{repo}, type: repository, referrers: true, digestTags: true}}\n",
            s = src_proxy.host,
            d = dst_proxy.host
        );
    }
    let yaml = format!("{}sync:\n{steps}", creds(&[&src_proxy.host, &dst_proxy.host]));
    ok(&run(&yaml, PipelineOptions::default(), Mode::Copy));
    for repo in repos {
        let want = src.api().tag_digests(repo);
        assert_eq!(dst.api().tag_digests(repo), want, "{repo}: the target matches the source");
        for tag in want.keys() {
            assert_eq!(dst.api().verify_tag(repo, tag), Vec::<String>::new(), "{repo}:{tag}");
        }
    }
    let probes: Vec<String> = src_proxy
        .log()
        .iter()
        .filter(|l| l.path.contains("/manifests/sha256-") && l.status == 404)
        .map(|l| format!("{} {}", l.method, l.path))
        .collect();
    assert!(probes.is_empty(), "cold: no probe of a tag the list shows absent: {probes:#?}");

    src_proxy.clear_log();
    dst_proxy.clear_log();
    let reports = run(&yaml, PipelineOptions::default(), Mode::Copy);
    ok(&reports);
    let not_current: Vec<String> = reports
        .iter()
        .flat_map(|r| &r.images)
        .filter(|i| i.outcome != Outcome::UpToDate)
        .map(|i| format!("{} {:?} {}", i.source, i.outcome, i.reason))
        .collect();
    assert!(not_current.is_empty(), "{not_current:#?}");
    let (src_log, dst_log) = (src_proxy.log(), dst_proxy.log());
    eprintln!("no-op: {tags} tags, source {} requests, target {} requests", src_log.len(), dst_log.len());
    for l in src_log.iter().filter(|l| l.method != "HEAD") {
        eprintln!("  source {} {} {}", l.method, l.path, l.status);
    }
    assert_eq!(src_proxy.count("GET", "/tags/list"), repos.len(), "one tag list per repository and run");
    let budget = (tags as f64 * 1.2).floor() as usize;
    let describe = |log: &[regsync_tests::proxy::Logged]| {
        log.iter().map(|l| format!("{} {} {}", l.method, l.path, l.status)).collect::<Vec<_>>()
    };
    assert!(src_log.len() <= budget, "source: {} > {budget}: {:#?}", src_log.len(), describe(&src_log));
    assert!(dst_log.len() <= budget, "target: {} > {budget}: {:#?}", dst_log.len(), describe(&dst_log));
    let writes: Vec<&regsync_tests::proxy::Logged> =
        dst_log.iter().filter(|l| !matches!(l.method.as_str(), "GET" | "HEAD")).collect();
    assert!(writes.is_empty(), "no-op writes: {writes:#?}");
    let pulls = src_log.iter().filter(|l| l.method == "GET" && l.path.contains("/manifests/")).count();
    assert_eq!(pulls, 0, "no manifest GET on the source: {:#?}", describe(&src_log));

    // And check agrees: nothing stale, nothing to refresh.
    let checked = run(&yaml, PipelineOptions::default(), Mode::Check);
    assert!(checked.iter().flat_map(|r| &r.images).all(|i| i.outcome == Outcome::UpToDate));
}

/// A referrer added upstream after the last run is found and copied by a
/// refresh that touches nothing else: only the changed fallback index is
/// pulled, only the new referrer and the fallback index are written.
#[test]
fn a_new_upstream_referrer_is_the_only_thing_a_refresh_copies() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (Registry::start(), Registry::start());
    let dst_proxy = FaultProxy::start(&dst.url);
    fixtures::signed_repository(&dir.path().join("r"), 7, 6);
    let layout = LayoutReader::open(dir.path().join("r"));
    src.api().push_layout(&layout, "app").unwrap();
    let yaml = format!(
        "{}sync:\n  - {{source: {s}/app, target: {d}/app, type: repository, referrers: true, tags: {{allow: [\"t.*\"]}}}}\n",
        creds(&[&src.host, &dst_proxy.host]),
        s = src.host,
        d = dst_proxy.host
    );
    ok(&run(&yaml, PipelineOptions::default(), Mode::Copy));
    // Sign t3 upstream (no referrers before).
    let t3 = layout.tags()["t3"].clone();
    let mut l = fixtures::Layout::create(dir.path().join("new"));
    let sig = l.artifact("application/vnd.example.signature", Some(&t3), &[("application/octet-stream", b"late")], &[]);
    l.referrers_tag(&t3, std::slice::from_ref(&sig));
    l.save();
    src.api().push_layout(&LayoutReader::open(dir.path().join("new")), "app").unwrap();
    dst_proxy.clear_log();
    let reports = run(&yaml, PipelineOptions::default(), Mode::Copy);
    ok(&reports);
    let refreshed: Vec<&str> =
        reports[0].images.iter().filter(|i| i.outcome != Outcome::UpToDate).map(|i| i.target.as_str()).collect();
    assert_eq!(refreshed.len(), 1, "only t3: {refreshed:?}");
    assert!(refreshed[0].ends_with(":t3"));
    assert_eq!(registry_listing(&dst, "app", &t3.digest), Some(vec![sig.digest.clone()]));
    let writes: Vec<String> = dst_proxy
        .log()
        .iter()
        .filter(|l| !matches!(l.method.as_str(), "GET" | "HEAD"))
        .map(|l| format!("{} {}", l.method, l.path.split('?').next().unwrap_or("")))
        .collect();
    // The signature's config and layer, the signature, its fallback index.
    assert!(writes.iter().all(|w| !w.contains("/manifests/t")), "no image tag re-pushed: {writes:#?}");
    assert_eq!(writes.iter().filter(|w| w.starts_with("PUT") && w.contains("/manifests/")).count(), 2, "{writes:#?}");
}

/// `platforms` pushes a filtered index (another digest): the image's
/// referrers are still the source index's, and a rerun that looks below the
/// top reads the target's filtered index, not the source's.
#[test]
fn platforms_keep_the_source_index_referrers_and_rerun_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let shapes = fixtures::shapes_layout(&dir.path().join("src"));
    let (src, dst) = (Registry::start(), Registry::start());
    src.api().push_layout(&LayoutReader::open(dir.path().join("src")), "app").unwrap();
    let yaml = format!(
        "{}sync:\n  - {{source: {s}/app:multi, target: {d}/app:multi, type: image, referrers: true, digestTags: true, platforms: [linux/amd64]}}\n",
        creds(&[&src.host, &dst.host]),
        s = src.host,
        d = dst.host
    );
    ok(&run(&yaml, PipelineOptions::default(), Mode::Copy));
    let mut listed_on_target =
        registry_listing(&dst, "app", &shapes.multi.digest).expect("fallback tag of the source index");
    listed_on_target.sort();
    let mut want = vec![shapes.sbom.digest.clone(), shapes.signature.digest.clone()];
    want.sort();
    assert_eq!(listed_on_target, want);
    assert_ne!(dst.api().digest_of("app", "multi"), Some(shapes.multi.digest.clone()), "the index was filtered");
    let again = run(&yaml, PipelineOptions::default(), Mode::Copy);
    ok(&again);
    assert_eq!(again[0].images[0].outcome, Outcome::UpToDate, "{:?}", again[0].images[0]);
}
