//! Transport rules through our fault proxy in front of a real registry:
//! retries, Retry-After, resume with Range, digest checks, chunked uploads,
//! mirrors with priority and pathPrefix.

use std::time::{Duration, Instant};

use regsync::client::ErrorKind;
use regsync_tests::copy::copy_image;
use regsync_tests::fixtures::{self, AMD64};
use regsync_tests::oci::{LayoutReader, sha256_digest};
use regsync_tests::proxy::{Fault, FaultProxy, Rule};
use regsync_tests::registry::{Registry, RegistryOptions};

use crate::client::{client, http_host, r, rt};

/// A layout with one image whose layer is `size` bytes of noise.
fn big_image(size: usize) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut l = fixtures::Layout::create(dir.path());
    let img = l.image(AMD64, &[("noise.bin", &fixtures::noise(0x9e37_79b9_7f4a_7c15, size))]);
    l.tag("v1", &img);
    l.save();
    let doc: serde_json::Value =
        serde_json::from_slice(&LayoutReader::open(dir.path()).blob(&img.digest).unwrap()).unwrap();
    let layer = doc["layers"][0]["digest"].as_str().unwrap().to_string();
    let src = format!("ocidir://{}:v1", dir.path().display());
    (dir, src, layer)
}

fn proxied() -> (Registry, FaultProxy) {
    regsync_tests::proxy::proxied(RegistryOptions::default())
}

#[test]
fn rate_limited_requests_wait_for_retry_after_http_4() {
    let (reg, proxy) = proxied();
    let (_dir, src, _) = big_image(2000);
    rt().block_on(copy_image(&client(vec![http_host(&reg.host)]), &r(&src), &r(&format!("{}/app:v1", reg.host))))
        .unwrap();
    proxy.add(Rule::new(Some("GET"), "/manifests/v1", Fault::Status { code: 429, retry_after: Some(1) }, 1));
    let c = client(vec![http_host(&proxy.host)]);
    let started = Instant::now();
    let m = rt().block_on(c.manifest_get(&r(&format!("{}/app:v1", proxy.host)))).unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was honoured");
    assert_eq!(proxy.count("GET", "/manifests/v1"), 2);
    assert_eq!(Some(m.digest), reg.api().digest_of("app", "v1"));
}

#[test]
fn server_errors_are_retried_with_backoff_http_4() {
    let (reg, proxy) = proxied();
    let (_dir, src, layer) = big_image(5000);
    proxy.add(Rule::new(Some("HEAD"), "/blobs/", Fault::Status { code: 500, retry_after: None }, 1));
    proxy.add(Rule::new(Some("POST"), "/blobs/uploads/", Fault::Status { code: 502, retry_after: None }, 2));
    let c = client(vec![http_host(&proxy.host)]);
    rt().block_on(copy_image(&c, &r(&src), &r(&format!("{}/app:v1", proxy.host)))).unwrap();
    assert!(proxy.log().iter().filter(|l| l.status == 502).count() == 2);
    assert_eq!(reg.api().blob("app", &layer).map(|b| sha256_digest(&b)), Some(layer.clone()));
    // A 404 is an answer, not a failure: no retry.
    proxy.clear_log();
    let err = rt().block_on(c.manifest_get(&r(&format!("{}/app:absent", proxy.host)))).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(proxy.count("GET", "/manifests/absent"), 1);
}

#[test]
fn a_reset_blob_read_resumes_with_range() {
    let (reg, proxy) = proxied();
    let (_dir, src, layer) = big_image(300_000);
    let seeded = format!("{}/src:v1", reg.host);
    rt().block_on(copy_image(&client(vec![http_host(&reg.host)]), &r(&src), &r(&seeded))).unwrap();
    proxy.add(Rule::new(Some("GET"), &format!("/blobs/{layer}"), Fault::Reset { bytes: 100_000 }, 1));
    let out = tempfile::tempdir().unwrap();
    let c = client(vec![http_host(&proxy.host)]);
    rt().block_on(copy_image(
        &c,
        &r(&format!("{}/src:v1", proxy.host)),
        &r(&format!("ocidir://{}:v1", out.path().display())),
    ))
    .unwrap();
    let gets: Vec<_> = proxy.log().into_iter().filter(|l| l.method == "GET" && l.path.contains(&layer)).collect();
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[1].range.as_deref(), Some("bytes=100000-"), "the second read resumes where the first broke");
    assert_eq!(LayoutReader::open(out.path()).verify(), Vec::<String>::new());
}

#[test]
fn corrupt_bytes_are_rejected_and_never_stored() {
    let (reg, proxy) = proxied();
    let (_dir, src, layer) = big_image(50_000);
    rt().block_on(copy_image(&client(vec![http_host(&reg.host)]), &r(&src), &r(&format!("{}/src:v1", reg.host))))
        .unwrap();
    let c = client(vec![http_host(&proxy.host), http_host(&reg.host)]);
    // Into a layout: the temp file is discarded.
    proxy.add(Rule::new(Some("GET"), &format!("/blobs/{layer}"), Fault::Corrupt, 1));
    let out = tempfile::tempdir().unwrap();
    let result = rt().block_on(copy_image(
        &c,
        &r(&format!("{}/src:v1", proxy.host)),
        &r(&format!("ocidir://{}:v1", out.path().display())),
    ));
    let err = match result {
        Ok(ok) => panic!("{ok:?} {:#?}", proxy.log()),
        Err(e) => e,
    };
    assert_eq!(err.kind, ErrorKind::DigestMismatch, "{err}");
    let hex = layer.strip_prefix("sha256:").unwrap();
    assert!(!out.path().join("blobs/sha256").join(hex).exists());
    // Into another registry: the upload is aborted before it commits.
    let other = Registry::start();
    let c = client(vec![http_host(&proxy.host), http_host(&other.host)]);
    proxy.add(Rule::new(Some("GET"), &format!("/blobs/{layer}"), Fault::Corrupt, 1));
    let err = rt()
        .block_on(copy_image(&c, &r(&format!("{}/src:v1", proxy.host)), &r(&format!("{}/dst:v1", other.host))))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::DigestMismatch, "{err}");
    assert_eq!(other.api().blob("dst", &layer), None);
    assert_eq!(other.api().manifest("dst", "v1"), None, "no tag points at a missing blob");
    // A corrupt manifest is rejected too.
    proxy.add(Rule::new(Some("GET"), "/manifests/v1", Fault::Corrupt, 1));
    let err = rt().block_on(c.manifest_get(&r(&format!("{}/src:v1", proxy.host)))).unwrap_err();
    assert_eq!(err.kind, ErrorKind::DigestMismatch);
}

#[test]
fn chunked_uploads_when_asked_or_after_a_refused_put_copy_6() {
    let (reg, proxy) = proxied();
    let (_dir, src, layer) = big_image(200_000);
    // blobMax exceeded: chunks of blobChunk bytes.
    let mut small_max = http_host(&proxy.host);
    small_max.blob_max = 10_000;
    small_max.blob_chunk = 64 * 1024;
    rt().block_on(copy_image(&client(vec![small_max]), &r(&src), &r(&format!("{}/a:v1", proxy.host)))).unwrap();
    assert!(proxy.count("PATCH", "/a/blobs/uploads/") >= 3, "{:?}", proxy.log());
    assert_eq!(reg.api().verify_tag("a", "v1"), Vec::<String>::new());

    // A 413 to the single PUT: retried in chunks.
    proxy.clear_log();
    proxy.add(Rule::new(Some("PUT"), "/b/blobs/uploads/", Fault::RejectLargerThan(100_000), 1));
    rt().block_on(copy_image(&client(vec![http_host(&proxy.host)]), &r(&src), &r(&format!("{}/b:v1", proxy.host))))
        .unwrap();
    assert_eq!(proxy.log().iter().filter(|l| l.status == 413).count(), 1);
    assert!(proxy.count("PATCH", "/b/blobs/uploads/") >= 1);
    assert_eq!(reg.api().blob("b", &layer).map(|b| sha256_digest(&b)), Some(layer.clone()));

    // The registry asks for chunks with OCI-Chunk-Min-Length.
    proxy.clear_log();
    proxy.add(Rule::new(
        Some("POST"),
        "/c/blobs/uploads/",
        Fault::AddHeader("OCI-Chunk-Min-Length".into(), "65536".into()),
        10,
    ));
    rt().block_on(copy_image(&client(vec![http_host(&proxy.host)]), &r(&src), &r(&format!("{}/c:v1", proxy.host))))
        .unwrap();
    assert!(proxy.count("PATCH", "/c/blobs/uploads/") >= 2, "each blob in PATCH chunks");
    assert!(
        proxy
            .log()
            .iter()
            .filter(|l| l.method == "PUT" && l.path.contains("/c/blobs/uploads/"))
            .all(|l| l.body_len == 0),
        "the closing PUT carries no bytes"
    );
    assert_eq!(reg.api().verify_tag("c", "v1"), Vec::<String>::new());
    // Normal uploads are two requests per blob: POST and one PUT.
    proxy.clear_log();
    rt().block_on(copy_image(&client(vec![http_host(&proxy.host)]), &r(&src), &r(&format!("{}/d:v1", proxy.host))))
        .unwrap();
    assert_eq!(proxy.count("PATCH", "/d/"), 0);
    assert_eq!(proxy.count("PUT", "/d/blobs/uploads/"), proxy.count("POST", "/d/blobs/uploads/"));
}

#[test]
fn mirrors_are_read_by_priority_and_a_404_falls_through_http_2() {
    let (upstream, low, high) = (Registry::start(), Registry::start(), Registry::start());
    let dir = tempfile::tempdir().unwrap();
    let mut l = fixtures::Layout::create(dir.path());
    let a = l.image(AMD64, &[("who", b"upstream")]);
    let b = l.image(AMD64, &[("who", b"low mirror")]);
    let c_img = l.image(AMD64, &[("who", b"high mirror")]);
    l.tag("up", &a);
    l.tag("low", &b);
    l.tag("high", &c_img);
    l.save();
    let layout = LayoutReader::open(dir.path());
    upstream.api().push_from_layout(&layout, "lib/app", &a, Some("v1")).unwrap();
    upstream.api().push_from_layout(&layout, "lib/app", &a, Some("only-upstream")).unwrap();
    low.api().push_from_layout(&layout, "lib/app", &b, Some("v1")).unwrap();
    high.api().push_from_layout(&layout, "lib/app", &c_img, Some("v1")).unwrap();
    high.api().push_from_layout(&layout, "lib/app", &c_img, Some("only-high")).unwrap();

    let mut up = http_host(&upstream.host);
    up.mirrors = vec![low.host.clone(), high.host.clone()];
    let mut lo = http_host(&low.host);
    lo.priority = 1;
    let mut hi = http_host(&high.host);
    hi.priority = 5;
    let c = client(vec![up, lo, hi]);
    let host = upstream.host.clone();
    let get = |tag: &str| rt().block_on(c.manifest_get(&r(&format!("{host}/lib/app:{tag}")))).unwrap().digest;
    assert_eq!(get("v1"), c_img.digest, "highest priority first");
    assert_eq!(get("only-high"), c_img.digest);
    assert_eq!(get("only-upstream"), a.digest, "404 on both mirrors falls through to the registry");
}

#[test]
fn path_prefix_is_added_to_every_repository() {
    let reg = Registry::start();
    let (_dir, src, _) = big_image(1000);
    let mut h = http_host(&reg.host);
    h.path_prefix = "mirror/docker".into();
    rt().block_on(copy_image(&client(vec![h]), &r(&src), &r(&format!("{}/library/app:v1", reg.host)))).unwrap();
    assert!(reg.api().digest_of("mirror/docker/library/app", "v1").is_some());
    assert_eq!(reg.api().digest_of("library/app", "v1"), None);
}

#[test]
fn request_concurrency_and_pacing_per_host_http_6() {
    let (reg, proxy) = proxied();
    let (_dir, src, layer) = big_image(1000);
    rt().block_on(copy_image(&client(vec![http_host(&reg.host)]), &r(&src), &r(&format!("{}/app:v1", reg.host))))
        .unwrap();
    let mut one_at_a_time = http_host(&proxy.host);
    one_at_a_time.req_concurrent = 1;
    one_at_a_time.req_per_sec = 10.0;
    let c = client(vec![one_at_a_time]);
    let repo = r(&format!("{}/app", proxy.host));
    let started = Instant::now();
    rt().block_on(async {
        let heads: Vec<_> = (0..8)
            .map(|_| {
                let (c, repo, layer) = (c.clone(), repo.clone(), layer.clone());
                tokio::spawn(async move { c.blob_head(&repo, &layer).await.unwrap() })
            })
            .collect();
        for h in heads {
            assert!(h.await.unwrap().is_some());
        }
    });
    assert_eq!(proxy.max_in_flight(), 1, "reqConcurrent: 1");
    assert!(started.elapsed() >= Duration::from_millis(650), "8 requests at 10/s take at least 0.7s");
}

#[test]
fn rate_limit_headers_are_exposed_and_digest_lookups_cached_rl_1_http_10() {
    let (reg, proxy) = proxied();
    let (_dir, src, _) = big_image(1000);
    rt().block_on(copy_image(&client(vec![http_host(&reg.host)]), &r(&src), &r(&format!("{}/app:v1", reg.host))))
        .unwrap();
    proxy.add(Rule::new(
        Some("HEAD"),
        "/manifests/v1",
        Fault::AddHeader("RateLimit-Remaining".into(), "76;w=21600".into()),
        1,
    ));
    proxy.add(Rule::new(
        Some("HEAD"),
        "/manifests/v1",
        Fault::AddHeader("RateLimit-Limit".into(), "100;w=21600".into()),
        0,
    ));
    let options = regsync::client::registry::RegistryOptions {
        docker_certs: false,
        cache: Some((10, Duration::from_secs(60))),
        ..Default::default()
    };
    let c = crate::client::client_with(vec![http_host(&proxy.host)], options);
    let head = rt().block_on(c.manifest_head(&r(&format!("{}/app:v1", proxy.host)))).unwrap();
    assert_eq!(head.rate_limit.map(|l| l.remaining), Some(76));
    let by_digest = r(&format!("{}/app@{}", proxy.host, head.digest));
    proxy.clear_log();
    rt().block_on(async {
        c.manifest_get(&by_digest).await.unwrap();
        c.manifest_get(&by_digest).await.unwrap();
        c.manifest_head(&r(&format!("{}/app:v1", proxy.host))).await.unwrap();
        c.manifest_head(&r(&format!("{}/app:v1", proxy.host))).await.unwrap();
    });
    assert_eq!(proxy.count("GET", "/manifests/"), 1, "digest GETs are cached");
    assert_eq!(proxy.count("HEAD", "/manifests/v1"), 2, "tag lookups never are");
}
