//! Registries in the wild, imitated by the proxy's quirk profiles
//! ([`regsync_tests::quirks::Quirk`]) in front of the real test registry:
//! each profile copies with the exact result, or is refused with a clear
//! error and nothing written. Runs are `regsync once`, as users run it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use regsync_tests::bin::{Run, ServerProcess, once_with, run_in, wait_for};
use regsync_tests::fixtures::{self, AMD64, noise};
use regsync_tests::oci::{LayoutReader, fallback_tag};
use regsync_tests::proxy::{FaultProxy, proxied};
use regsync_tests::quirks::{Quirk, Storage};
use regsync_tests::registry::{Registry, RegistryOptions, TestPki};
use regsync_tests::token::{SERVICE, TokenServer};

const USER: &str = "mirror";
const PASS: &str = "qu1rk-pass";

/// A layout with one single-layer image per `(tag, seed, layer bytes)`.
fn layout(images: &[(&str, u64, usize)]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut l = fixtures::Layout::create(dir.path());
    for (tag, seed, size) in images {
        let img = l.image(AMD64, &[("data.bin", &noise(*seed, *size))]);
        l.tag(tag, &img);
    }
    l.save();
    let path = dir.path().display().to_string();
    (dir, path)
}

/// The digest of `tag` in a layout.
fn layout_digest(dir: &str, tag: &str) -> String {
    LayoutReader::open(dir).tags()[tag].digest.clone()
}

/// Runs `regsync once` with this config; `creds` are YAML list entries.
fn once(creds: &[String], steps: &[String]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut y = String::from("version: 1\ncreds:\n");
    for c in creds {
        y += &format!("  - {c}\n");
    }
    y += "defaults:\n  parallel: 2\n  skipDockerConfig: true\nsync:\n";
    for s in steps {
        y += &format!("  - {s}\n");
    }
    once_with(dir.path(), &y, &[])
}

fn plain(host: &str, extra: &str) -> String {
    format!("{{registry: \"{host}\", tls: disabled{extra}}}")
}

fn login(host: &str, extra: &str) -> String {
    format!("{{registry: \"{host}\", tls: disabled, user: {USER}, pass: {PASS}{extra}}}")
}

fn image_step(source: &str, target: &str) -> String {
    format!("{{source: \"{source}\", target: \"{target}\", type: image}}")
}

fn ok(run: &Run) {
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
}

/// The run exited 1 and its log says every one of `said`.
fn failed_with(run: &Run, said: &[&str]) {
    assert_eq!(run.code, 1, "{}", run.stderr);
    for text in said {
        assert!(run.stderr.contains(text), "{text:?} not in:\n{}", run.stderr);
    }
}

/// One image of `layer` bytes (noise from `seed`) copied by `regsync once`
/// from a layout into `repo:v1` through a proxy imitating `quirk`, with
/// these host settings (`blobMax`, `blobChunk`).
struct Upload {
    reg: Registry,
    proxy: FaultProxy,
    _layout: tempfile::TempDir,
    src: String,
    run: Run,
}

fn upload_through(quirk: Quirk, seed: u64, layer: usize, host: &str, repo: &str) -> Upload {
    let (reg, proxy) = proxied(RegistryOptions::default());
    proxy.quirk(quirk);
    let (_layout, src) = layout(&[("v1", seed, layer)]);
    let run = once(
        &[plain(&proxy.host, host)],
        &[image_step(&format!("ocidir://{src}:v1"), &format!("{}/{repo}:v1", proxy.host))],
    );
    Upload { reg, proxy, _layout, src, run }
}

impl Upload {
    /// The run succeeded and `repo:v1` holds the layout's image, complete.
    fn landed(&self, repo: &str) {
        ok(&self.run);
        assert_eq!(self.reg.api().digest_of(repo, "v1"), Some(layout_digest(&self.src, "v1")));
        assert!(self.reg.api().verify_tag(repo, "v1").is_empty());
    }
}

/// PATCH requests the proxy saw for uploads, with their answers.
fn patches(proxy: &FaultProxy) -> Vec<(u16, usize, Option<String>)> {
    proxy
        .log()
        .iter()
        .filter(|l| l.method == "PATCH" && l.path.contains("/blobs/uploads/"))
        .map(|l| (l.status, l.body_len, l.content_range.clone()))
        .collect()
}

#[test]
fn ecr_chunks_answered_201_are_taken() {
    // blobMax below the layer size: chunks of 16 KiB.
    let u = upload_through(Quirk::PatchAnswered201, 1, 40_000, ", blobMax: 10000, blobChunk: 16384", "ecr/app");
    u.landed("ecr/app");
    let p = patches(&u.proxy);
    assert!(p.len() >= 2 && p.iter().all(|(s, _, _)| *s == 201), "chunks answered 201: {p:?}");
    // Every chunk, the first included, says where it goes.
    assert!(p.iter().all(|(_, _, cr)| cr.is_some()), "{p:?}");
}

#[test]
fn gar_refuses_chunks_and_the_blob_goes_whole() {
    let u = upload_through(Quirk::NoChunkedUploads, 2, 40_000, ", blobMax: 10000, blobChunk: 16384", "gar/app");
    u.landed("gar/app");
    let log = u.proxy.log();
    let layer_puts: Vec<usize> = log
        .iter()
        .filter(|l| l.method == "PUT" && l.path.contains("/blobs/uploads/") && l.body_len > 30_000)
        .map(|l| l.body_len)
        .collect();
    // The whole layer, read again from its start, in one PUT after one refused chunk.
    assert_eq!(layer_puts.len(), 1, "{log:?}");
    assert_eq!(patches(&u.proxy).iter().filter(|(s, _, _)| *s == 405).count(), 1);
}

#[test]
fn artifactory_refuses_a_whole_blob_and_chunks_follow() {
    let u = upload_through(Quirk::NoMonolithicPut, 3, 40_000, ", blobChunk: 16384", "jfrog/app");
    u.landed("jfrog/app");
    let refused = u.proxy.log().iter().filter(|l| l.method == "PUT" && l.status == 405).count();
    assert!(refused >= 1, "whole blobs were refused");
    let sent: usize = patches(&u.proxy).iter().filter(|(s, _, _)| *s == 202).map(|(_, n, _)| n).sum();
    assert!(sent >= 40_000, "the layer went in chunks: {sent} bytes");
}

#[test]
fn oci_chunk_min_length_is_honoured() {
    let u = upload_through(Quirk::ChunkMinLength(20_000), 4, 70_000, ", blobChunk: 4096", "min/app");
    u.landed("min/app");
    let p = patches(&u.proxy);
    assert!(p.len() >= 2, "{p:?}");
    // Sessions are separate per blob; within one, all chunks but the last are
    // at least the minimum, so no chunk other than a blob's last is smaller.
    let small = p.iter().filter(|(_, n, _)| *n < 20_000).count();
    let blobs = u.proxy.log().iter().filter(|l| l.method == "PUT" && l.path.contains("/blobs/uploads/")).count();
    assert!(small <= blobs, "{small} small chunks for {blobs} blobs: {p:?}");
}

#[test]
fn ecr_range_that_stops_advancing_fails_the_upload_and_writes_nothing() {
    let u = upload_through(Quirk::RangeStuck, 5, 60_000, ", blobMax: 10000, blobChunk: 16384", "stuck/app");
    failed_with(&u.run, &["stalled: the registry stopped taking data at byte 16384"]);
    assert!(u.reg.api().tags("stuck/app").is_empty(), "no tag for an image whose blob did not land");
    // One chunk taken, then a bounded number of tries.
    assert!(patches(&u.proxy).len() <= 4, "{:?}", patches(&u.proxy));
}

#[test]
fn a_416_resumes_from_the_upload_status() {
    let u = upload_through(Quirk::PatchAnswered416Once, 6, 60_000, ", blobMax: 10000, blobChunk: 16384", "resume/app");
    u.landed("resume/app");
    let log = u.proxy.log();
    assert!(log.iter().any(|l| l.method == "PATCH" && l.status == 416), "the lie was told");
    assert!(log.iter().any(|l| l.method == "GET" && l.path.contains("/blobs/uploads/")), "the status was read");
    // The stored chunk was not sent again: chunk ranges never overlap.
    let mut ranges: Vec<(u64, u64)> = log
        .iter()
        .filter(|l| l.method == "PATCH" && l.path.contains("/blobs/uploads/"))
        .filter_map(|l| {
            l.content_range.as_deref()?.split_once('-').map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap()))
        })
        .collect();
    ranges.sort();
    assert!(ranges.windows(2).all(|w| w[0].1 < w[1].0), "{ranges:?}");
}

/// A registry with token auth behind the proxy, seeded with `repo:v1`.
fn token_registry(seed_repo: &str) -> (TokenServer, Registry, FaultProxy, tempfile::TempDir, String) {
    let issuer = TokenServer::start(&[(USER, PASS)]);
    let cfg = tempfile::tempdir().unwrap();
    let reg = Registry::start_with(RegistryOptions {
        extra_yaml: issuer.registry_yaml(cfg.path()),
        ..RegistryOptions::default().relative_urls()
    });
    let proxy = FaultProxy::start(&reg.url);
    let (d, src) = layout(&[("v1", 7, 3_000)]);
    let seeded = once(
        &[login(&reg.host, "")],
        &[image_step(&format!("ocidir://{src}:v1"), &format!("{}/{seed_repo}:v1", reg.host))],
    );
    ok(&seeded);
    let digest = layout_digest(&src, "v1");
    drop(d);
    (issuer, reg, proxy, cfg, digest)
}

#[test]
fn docker_hub_missing_repository_is_one_clear_error_without_a_token_loop() {
    let (issuer, _reg, proxy, _cfg, digest) = token_registry("library/present");
    proxy.quirk(Quirk::MissingRepoDenied { realm: issuer.realm.clone(), service: SERVICE.into() });
    let target = Registry::start();
    let seeding = issuer.issued();
    let run = once(
        &[login(&proxy.host, ""), plain(&target.host, "")],
        &[
            image_step(&format!("{}/library/present:v1", proxy.host), &format!("{}/present:v1", target.host)),
            image_step(&format!("{}/library/absent:v1", proxy.host), &format!("{}/absent:v1", target.host)),
        ],
    );
    failed_with(&run, &["access denied or no such repository (insufficient_scope)", "library/absent"]);
    assert_eq!(target.api().digest_of("present", "v1"), Some(digest));
    assert!(target.api().tags("absent").is_empty());
    let asked = proxy.log().iter().filter(|l| l.path.contains("/library/absent/")).count();
    assert!(asked <= 3, "no token loop or backoff storm: {asked} requests for the missing repository");
    // A token per scope set asked for (3 when run alone), one more when the
    // two repositories are challenged at the same moment: never a loop.
    let issued = issuer.issued() - seeding;
    assert!(issued <= 4, "{issued} tokens issued");
}

#[test]
fn bearer_challenge_without_scope_or_service_still_logs_in() {
    let (_issuer, _reg, proxy, _cfg, digest) = token_registry("team/app");
    proxy.quirk(Quirk::BearerWithoutScopeOrService);
    let target = Registry::start();
    let run = once(
        &[login(&proxy.host, ""), plain(&target.host, "")],
        &[image_step(&format!("{}/team/app:v1", proxy.host), &format!("{}/app:v1", target.host))],
    );
    ok(&run);
    assert_eq!(target.api().digest_of("app", "v1"), Some(digest));
}

#[test]
fn relative_realm_and_access_token_only() {
    let (issuer, _reg, proxy, _cfg, digest) = token_registry("team/app");
    proxy.quirk(Quirk::RelativeRealm { token_url: issuer.realm.clone() });
    proxy.quirk(Quirk::AccessTokenOnly);
    let target = Registry::start();
    let run = once(
        &[login(&proxy.host, ""), plain(&target.host, "")],
        &[image_step(&format!("{}/team/app:v1", proxy.host), &format!("{}/app:v1", target.host))],
    );
    ok(&run);
    assert_eq!(target.api().digest_of("app", "v1"), Some(digest));
    assert!(
        proxy.count("POST", "/token") + proxy.count("GET", "/token") >= 1,
        "tokens came through the relative realm"
    );
}

#[test]
fn basic_challenge_without_realm_after_an_unusable_one() {
    let (reg, proxy) = proxied(RegistryOptions::default().user(USER, PASS));
    proxy.quirk(Quirk::BasicWithoutRealm);
    let (_d, src) = layout(&[("v1", 8, 3_000)]);
    let run = once(
        &[login(&proxy.host, "")],
        &[image_step(&format!("ocidir://{src}:v1"), &format!("{}/basic/app:v1", proxy.host))],
    );
    ok(&run);
    assert_eq!(reg.api().with_basic_auth(USER, PASS).digest_of("basic/app", "v1"), Some(layout_digest(&src, "v1")));
}

#[test]
fn a_token_realm_that_downgrades_https_to_http_is_refused() {
    let issuer = TokenServer::start(&[(USER, PASS)]);
    let cfg = tempfile::tempdir().unwrap();
    let pki = Arc::new(TestPki::generate());
    let reg = Registry::start_with(RegistryOptions {
        extra_yaml: issuer.registry_yaml(cfg.path()),
        ..RegistryOptions::default().tls(pki.clone())
    });
    let (_d, src) = layout(&[("v1", 9, 3_000)]);
    let cert = pki.ca_pem.replace('\n', "\\n");
    let run = once(
        &[format!("{{registry: \"{}\", user: {USER}, pass: {PASS}, regcert: \"{cert}\"}}", reg.host)],
        &[image_step(&format!("ocidir://{src}:v1"), &format!("{}/tls/app:v1", reg.host))],
    );
    failed_with(&run, &["token realm refused", "the realm is not https"]);
    assert_eq!(issuer.issued(), 0, "the password never went over http");
    assert!(!run.stderr.contains(PASS));
}

#[test]
fn blobs_from_object_storage_that_refuses_authorization() {
    let (reg, proxy) = proxied(RegistryOptions::default().user(USER, PASS));
    let storage = Storage::start(&proxy, &reg.url);
    proxy.quirk(Quirk::BlobsFromStorage { storage: storage.url.clone() });
    let (_d, src) = layout(&[("v1", 10, 50_000)]);
    reg.api().with_basic_auth(USER, PASS).push_layout(&LayoutReader::open(&src), "s3/app").unwrap();
    let target = Registry::start();
    let run = once(
        &[login(&proxy.host, ""), plain(&target.host, "")],
        &[image_step(&format!("{}/s3/app:v1", proxy.host), &format!("{}/app:v1", target.host))],
    );
    ok(&run);
    assert_eq!(target.api().digest_of("app", "v1"), Some(layout_digest(&src, "v1")));
    assert!(target.api().verify_tag("app", "v1").is_empty());
    assert!(storage.requests() >= 2, "config and layer came from storage");
    assert_eq!(storage.with_authorization(), 0, "no registry credentials at the storage");
}

#[test]
fn opaque_page_cursors_pass_through_untouched_for_tags_and_catalog() {
    let (reg, proxy) = proxied(RegistryOptions::default());
    proxy.quirk(Quirk::OpaquePages(2));
    let tags: Vec<(String, u64, usize)> = (0..7).map(|i| (format!("t{i}"), 20 + i, 500)).collect();
    let refs: Vec<(&str, u64, usize)> = tags.iter().map(|(t, s, n)| (t.as_str(), *s, *n)).collect();
    let (_d, src) = layout(&refs);
    for repo in ["pages/a", "pages/b", "pages/c"] {
        reg.api().push_layout(&LayoutReader::open(&src), repo).unwrap();
    }
    let target = Registry::start();
    let run = once(
        &[plain(&proxy.host, ""), plain(&target.host, "")],
        &[
            format!("{{source: \"{}/pages/a\", target: \"{}/one/a\", type: repository}}", proxy.host, target.host),
            format!("{{source: \"{}\", target: \"{}\", type: registry}}", proxy.host, target.host),
        ],
    );
    ok(&run);
    let mut want: Vec<String> = tags.iter().map(|(t, _, _)| t.clone()).collect();
    want.sort();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(target.api().tags("one/a")), want);
    for repo in ["pages/a", "pages/b", "pages/c"] {
        assert_eq!(sorted(target.api().tags(repo)), want, "{repo} through the catalog pages");
    }
    let log = proxy.log();
    let cursors = log.iter().filter(|l| l.path.contains("last=") && l.path.contains("%3D")).count();
    assert!(cursors >= 4, "cursors came back as sent: {log:?}");
    assert!(log.iter().all(|l| l.status != 400), "no cursor was altered, no n above 1000");
}

#[test]
fn listing_pages_never_ask_for_more_than_1000() {
    use regsync::client::registry::RegistryOptions as ClientOptions;
    let (reg, proxy) = proxied(RegistryOptions::default());
    proxy.quirk(Quirk::OpaquePages(1000));
    let (_d, src) = layout(&[("v1", 24, 500), ("v2", 25, 500)]);
    reg.api().push_layout(&LayoutReader::open(&src), "ecr/app").unwrap();
    // A library caller asking for pages of 5000 gets pages of 1000 at most (ECR's maximum).
    let c = crate::client::client_with(
        vec![crate::client::http_host(&proxy.host)],
        ClientOptions { docker_certs: false, page_size: Some(5000), ..ClientOptions::default() },
    );
    let tags = crate::client::rt().block_on(c.tag_list(&crate::client::r(&format!("{}/ecr/app", proxy.host)))).unwrap();
    assert_eq!(tags.len(), 2);
    assert!(proxy.log().iter().any(|l| l.path.contains("n=1000")), "{:?}", proxy.log());
    assert!(proxy.log().iter().all(|l| l.status != 400));
}

#[test]
fn retry_after_as_an_http_date_is_waited_for_and_a_long_one_fails_fast() {
    let (reg, proxy) = proxied(RegistryOptions::default());
    let (_d, src) = layout(&[("v1", 11, 3_000)]);
    reg.api().push_layout(&LayoutReader::open(&src), "rl/app").unwrap();
    proxy.quirk(Quirk::RetryAfterDate { seconds: 2, times: 1 });
    let target = Registry::start();
    let run = once(
        &[plain(&proxy.host, ""), plain(&target.host, "")],
        &[image_step(&format!("{}/rl/app:v1", proxy.host), &format!("{}/app:v1", target.host))],
    );
    ok(&run);
    assert_eq!(target.api().digest_of("app", "v1"), Some(layout_digest(&src, "v1")));
    let log = proxy.log();
    let limited = log.iter().find(|l| l.status == 429).expect("a 429 was sent");
    let next = log.iter().find(|l| l.at > limited.at && l.path.contains("/manifests/")).expect("asked again");
    // An HTTP date has one-second resolution: at least a second was waited.
    assert!(next.at - limited.at >= Duration::from_millis(900), "{:?}", next.at - limited.at);

    // A registry asking for an hour: the run does not sit it out.
    let (reg, proxy) = proxied(RegistryOptions::default());
    reg.api().push_layout(&LayoutReader::open(&src), "rl/app").unwrap();
    proxy.quirk(Quirk::RetryAfterDate { seconds: 3600, times: 100 });
    let run = once(
        &[plain(&proxy.host, ""), plain(&target.host, "")],
        &[image_step(&format!("{}/rl/app:v1", proxy.host), &format!("{}/later:v1", target.host))],
    );
    failed_with(&run, &["429"]);
    assert!(target.api().tags("later").is_empty());
    assert!(proxy.log().iter().filter(|l| l.status == 429).count() <= 2, "no retries into an hour's wait");
}

#[test]
fn docker_hub_rate_limit_headers_with_windows_are_read() {
    let (reg, proxy) = proxied(RegistryOptions::default());
    let (_d, src) = layout(&[("v1", 12, 3_000)]);
    reg.api().push_layout(&LayoutReader::open(&src), "hub/app").unwrap();
    let target = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let yaml = |target_repo: &str| {
        format!(
            "version: 1\ncreds:\n  - {}\n  - {}\ndefaults:\n  skipDockerConfig: true\n  ratelimit: {{min: 50, retry: 5m}}\nsync:\n  - {}\n",
            plain(&proxy.host, ""),
            plain(&target.host, ""),
            image_step(&format!("{}/hub/app:v1", proxy.host), &format!("{}/{target_repo}:v1", target.host))
        )
    };
    // No headers (an unlimited account): copied at once.
    std::fs::write(dir.path().join("unlimited.yml"), yaml("unlimited")).unwrap();
    ok(&run_in(dir.path(), &["once", "-c", "unlimited.yml"], None));
    assert_eq!(target.api().digest_of("unlimited", "v1"), Some(layout_digest(&src, "v1")));
    // `40;w=21600` is 40 pulls left, under the minimum of 50: the copy waits.
    proxy.quirk(Quirk::RateLimitHeaders { remaining: 40 });
    std::fs::write(dir.path().join("limited.yml"), yaml("limited")).unwrap();
    let mut p = ServerProcess::start_once(dir.path(), &["-c", "limited.yml"]);
    assert!(
        wait_for(Duration::from_secs(30), || p.log().contains("Delaying for rate limit")),
        "the remaining count was read:\n{}",
        p.log()
    );
    assert!(p.log().contains("source-remain=40 source-limit=100 step-min=50"), "{}", p.log());
    p.signal("TERM");
    p.wait_exit(Duration::from_secs(10));
    assert!(target.api().tags("limited").is_empty());
}

/// A layout with an image and a signature-like referrer of it.
fn signed_layout() -> (tempfile::TempDir, String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut l = fixtures::Layout::create(dir.path());
    let img = l.image(AMD64, &[("app.bin", &noise(13, 2_000))]);
    let sig = l.artifact("application/vnd.example.signature", Some(&img), &[("application/octet-stream", b"sig")], &[]);
    l.tag("v1", &img);
    l.referrers_tag(&img, std::slice::from_ref(&sig));
    l.save();
    let path = dir.path().display().to_string();
    (dir, path, img.digest, sig.digest)
}

#[test]
fn ghcr_referrers_api_404_means_the_fallback_tag() {
    let (reg, proxy) = proxied(RegistryOptions::default());
    proxy.quirk(Quirk::ReferrersNotFound);
    let (_d, src, img, sig) = signed_layout();
    let step = |n: &str| {
        format!(
            "{{source: \"ocidir://{src}:v1\", target: \"{}/ghcr/app:{n}\", type: image, referrers: true}}",
            proxy.host
        )
    };
    ok(&once(&[plain(&proxy.host, "")], &[step("v1")]));
    let index = reg.api().manifest("ghcr/app", &fallback_tag(&img)).expect("the fallback tag was written");
    let doc: serde_json::Value = serde_json::from_slice(&index.1).unwrap();
    assert_eq!(doc["manifests"][0]["digest"], json!(sig));
    // The second run reads the fallback tag, finds the referrer, writes nothing.
    proxy.clear_log();
    ok(&once(&[plain(&proxy.host, "")], &[step("v1")]));
    assert_eq!(proxy.log().iter().filter(|l| l.method == "PUT").count(), 0, "{:?}", proxy.log());
}

#[test]
fn zot_oci_subject_answer_means_no_fallback_tag() {
    let (reg, proxy) = proxied(RegistryOptions::default());
    proxy.quirk(Quirk::ReferrersApi { page: 10 });
    let (_d, src, img, sig) = signed_layout();
    let step = format!(
        "{{source: \"ocidir://{src}:v1\", target: \"{}/zot/app:v1\", type: image, referrers: true}}",
        proxy.host
    );
    ok(&once(&[plain(&proxy.host, "")], &[step]));
    assert!(reg.api().manifest("zot/app", &sig).is_some(), "the referrer landed");
    assert!(reg.api().manifest("zot/app", &fallback_tag(&img)).is_none(), "no fallback tag");
}

#[test]
fn ecr_repositories_must_exist_first() {
    let (reg, proxy) = proxied(RegistryOptions::default());
    proxy.quirk(Quirk::NoRepositoryCreation { existing: vec!["made/app".into()] });
    let (_d, src) = layout(&[("v1", 14, 3_000)]);
    let run = once(
        &[plain(&proxy.host, "")],
        &[
            image_step(&format!("ocidir://{src}:v1"), &format!("{}/made/app:v1", proxy.host)),
            image_step(&format!("ocidir://{src}:v1"), &format!("{}/never/app:v1", proxy.host)),
        ],
    );
    failed_with(&run, &["NAME_UNKNOWN", "The repository with name 'never/app' does not exist", "create it first"]);
    assert_eq!(reg.api().digest_of("made/app", "v1"), Some(layout_digest(&src, "v1")));
    assert!(reg.api().tags("never/app").is_empty());
}

#[test]
fn ecr_immutable_tags_are_refused_once_and_equal_digests_never_pushed() {
    let (reg, proxy) = proxied(RegistryOptions::default());
    let (_d, old) = layout(&[("v1", 15, 3_000), ("v2", 16, 3_000)]);
    reg.api().push_layout(&LayoutReader::open(&old), "imm/app").unwrap();
    proxy.quirk(Quirk::ImmutableTags);
    // v1 changed at the source, v2 did not.
    let (_e, new) = layout(&[("v1", 17, 3_000), ("v2", 16, 3_000)]);
    let run = once(
        &[plain(&proxy.host, "")],
        &[
            image_step(&format!("ocidir://{new}:v1"), &format!("{}/imm/app:v1", proxy.host)),
            image_step(&format!("ocidir://{new}:v2"), &format!("{}/imm/app:v2", proxy.host)),
        ],
    );
    failed_with(&run, &["TAG_INVALID", "cannot be overwritten because the repository is immutable"]);
    assert_eq!(reg.api().digest_of("imm/app", "v1"), Some(layout_digest(&old, "v1")), "unchanged");
    assert_eq!(proxy.count("PUT", "/manifests/v1"), 1, "a refusal is not retried");
    assert_eq!(proxy.count("PUT", "/manifests/v2"), 0, "an equal digest is never pushed");
}

/// A layout whose `docker` tag is a Docker schema 2 image, and `oci` an OCI one.
fn docker_and_oci_layout() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut l = fixtures::Layout::create(dir.path());
    let layer = l.blob(
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        &fixtures::gzip(&fixtures::tar("a", &noise(18, 1000))),
    );
    let config = l.json_blob(
        "application/vnd.docker.container.image.v1+json",
        &json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": config.to_json(),
        "layers": [layer.to_json()],
    });
    let docker = l.json_blob("application/vnd.docker.distribution.manifest.v2+json", &manifest);
    l.tag("docker", &docker);
    let oci = l.image(AMD64, &[("b", &noise(19, 1000))]);
    l.tag("oci", &oci);
    l.save();
    let path = dir.path().display().to_string();
    (dir, path)
}

#[test]
fn zot_refusing_docker_media_types_is_a_clear_error_never_a_conversion() {
    let (reg, proxy) = proxied(RegistryOptions::default());
    proxy.quirk(Quirk::NoDockerMediaTypes);
    let (_d, src) = docker_and_oci_layout();
    let run = once(
        &[plain(&proxy.host, "")],
        &[
            image_step(&format!("ocidir://{src}:docker"), &format!("{}/zot/app:docker", proxy.host)),
            image_step(&format!("ocidir://{src}:oci"), &format!("{}/zot/app:oci", proxy.host)),
        ],
    );
    failed_with(&run, &["415", "unsupported manifest media type"]);
    assert_eq!(reg.api().digest_of("zot/app", "oci"), Some(layout_digest(&src, "oci")));
    assert!(!reg.api().tags("zot/app").contains(&"docker".to_string()), "not converted, not pushed");
}

#[test]
fn head_that_lies_is_answered_by_disable_head_and_hashing() {
    let (reg, proxy) = proxied(RegistryOptions::default());
    let (_d, src) = layout(&[("v1", 20, 3_000)]);
    reg.api().push_layout(&LayoutReader::open(&src), "nexus/app").unwrap();
    let target = Registry::start();
    let step = |to: &str| image_step(&format!("{}/nexus/app:v1", proxy.host), &format!("{}/{to}:v1", target.host));
    proxy.quirk(Quirk::HeadNotFound);
    let trusting = [plain(&proxy.host, ""), plain(&target.host, "")];
    let disabled = [plain(&proxy.host, ", apiOpts: {disableHead: \"true\"}"), plain(&target.host, "")];
    // A first copy reads the source with a GET: right either way.
    ok(&once(&trusting, &[step("app")]));
    assert_eq!(target.api().digest_of("app", "v1"), Some(layout_digest(&src, "v1")));
    // A re-sync compares digests with a HEAD: trusted, its 404 is a missing image.
    let run = once(&trusting, &[step("app")]);
    failed_with(&run, &["manifest not found at"]);
    // disableHead: the GET finds it, nothing to copy, no HEAD asked.
    proxy.clear_log();
    let run = once(&disabled, &[step("app")]);
    ok(&run);
    assert!(run.stdout.contains("1 up to date"), "{}", run.stdout);
    assert_eq!(proxy.count("HEAD", "/manifests/"), 0);
    assert_eq!(target.api().digest_of("app", "v1"), Some(layout_digest(&src, "v1")));

    // A HEAD without Docker-Content-Digest: the GET's body is hashed.
    let (reg2, proxy2) = proxied(RegistryOptions::default());
    reg2.api().push_layout(&LayoutReader::open(&src), "ecr/app").unwrap();
    proxy2.quirk(Quirk::HeadWithoutDigest);
    let run = once(
        &[plain(&proxy2.host, ""), plain(&target.host, "")],
        &[image_step(&format!("{}/ecr/app:v1", proxy2.host), &format!("{}/nodigest:v1", target.host))],
    );
    ok(&run);
    assert_eq!(target.api().digest_of("nodigest", "v1"), Some(layout_digest(&src, "v1")));
}

#[test]
fn odd_but_harmless_answers_are_tolerated() {
    let (reg, proxy) = proxied(RegistryOptions::default());
    let (_d, src) = layout(&[("a", 21, 3_000), ("b", 22, 3_000)]);
    reg.api().push_layout(&LayoutReader::open(&src), "odd/src").unwrap();
    proxy.quirk(Quirk::OddButHarmless);
    let run = once(
        &[plain(&proxy.host, "")],
        &[
            format!("{{source: \"{0}/odd/src\", target: \"{0}/odd/dst\", type: repository}}", proxy.host),
            image_step(&format!("ocidir://{src}:a"), &format!("{}/odd/sent:a", proxy.host)),
        ],
    );
    ok(&run);
    let mut tags = reg.api().tags("odd/dst");
    tags.sort();
    assert_eq!(tags, vec!["a".to_string(), "b".to_string()], "the empty name and the repeat were left out");
    assert_eq!(reg.api().digest_of("odd/dst", "a"), Some(layout_digest(&src, "a")));
    assert!(reg.api().verify_tag("odd/dst", "b").is_empty());
    assert!(reg.api().verify_tag("odd/sent", "a").is_empty());
    let log = proxy.log();
    assert!(log.iter().any(|l| l.method == "PUT" && l.status == 200), "manifests answered 200");
    assert!(log.iter().any(|l| l.method == "PUT" && l.status == 204), "blobs answered 204");
}

#[test]
fn docker_hub_by_any_of_its_names_is_one_registry() {
    // Docker Hub's three names, for creds: every spelling of the image goes
    // to the host its creds name (here a local registry, nothing leaves).
    let (reg, proxy) = proxied(RegistryOptions::default().user(USER, PASS));
    let (_d, src) = layout(&[("v1", 23, 3_000)]);
    reg.api().with_basic_auth(USER, PASS).push_layout(&LayoutReader::open(&src), "library/alpine").unwrap();
    let want = Some(layout_digest(&src, "v1"));
    let target = Registry::start();
    for (n, creds_name) in ["index.docker.io", "registry-1.docker.io", "docker.io"].iter().enumerate() {
        let creds = format!(
            "{{registry: \"{creds_name}\", hostname: \"{}\", tls: disabled, user: {USER}, pass: {PASS}}}",
            proxy.host
        );
        let steps: Vec<String> =
            ["alpine:v1", "docker.io/alpine:v1", "index.docker.io/library/alpine:v1", "registry-1.docker.io/alpine:v1"]
                .iter()
                .enumerate()
                .map(|(i, s)| image_step(s, &format!("{}/hub{n}/{i}:v1", target.host)))
                .collect();
        let run = once(&[creds, plain(&target.host, "")], &steps);
        ok(&run);
        for i in 0..4 {
            assert_eq!(target.api().digest_of(&format!("hub{n}/{i}"), "v1"), want, "{creds_name}, image {i}");
        }
    }
    assert!(proxy.log().iter().all(|l| !l.path.contains("/v2/alpine/")), "library/ was added every time");

    // Mirrors set on any name serve Docker Hub reads.
    let mirror = Registry::start();
    mirror.api().push_layout(&LayoutReader::open(&src), "library/alpine").unwrap();
    proxy.clear_log();
    let run = once(
        &[
            format!(
                "{{registry: \"index.docker.io\", hostname: \"{}\", tls: disabled, user: {USER}, pass: {PASS}, mirrors: [\"{}\"]}}",
                proxy.host, mirror.host
            ),
            plain(&mirror.host, ""),
            plain(&target.host, ""),
        ],
        &[image_step("alpine:v1", &format!("{}/mirrored:v1", target.host))],
    );
    ok(&run);
    assert_eq!(target.api().digest_of("mirrored", "v1"), want);
    assert!(proxy.log().iter().all(|l| !l.path.contains("/blobs/")), "blobs came from the mirror: {:?}", proxy.log());
}
