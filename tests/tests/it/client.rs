//! The client against real registries and layouts: byte-identical round
//! trips between every pair of backends, referrers, listing and pagination,
//! and the OCI layout's atomic writes and garbage collection.

use std::collections::BTreeMap;

use regsync::client::registry::RegistryOptions;
use regsync::client::registry::hosts::default_host;
use regsync::client::{BlobCopy, Client, ErrorKind, MT_OCI_INDEX, Manifest, PutOptions};
use regsync::config::{Host, TlsMode};
use regsync::reference::Reference;
use regsync_tests::copy::copy_image;
use regsync_tests::fixtures::{self, Shapes};
use regsync_tests::oci::{LayoutReader, sha256_digest};
use regsync_tests::registry::Registry;

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A plain-HTTP host entry for a test registry.
pub fn http_host(host: &str) -> Host {
    let mut h = default_host(host);
    h.tls = TlsMode::Disabled;
    h
}

pub fn client(hosts: Vec<Host>) -> Client {
    client_with(hosts, RegistryOptions { docker_certs: false, ..RegistryOptions::default() })
}

pub fn client_with(hosts: Vec<Host>, options: RegistryOptions) -> Client {
    let map: BTreeMap<String, Host> = hosts.into_iter().map(|h| (h.registry.clone(), h)).collect();
    Client::new(map, options)
}

pub fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn shapes() -> (tempfile::TempDir, Shapes) {
    let dir = tempfile::tempdir().unwrap();
    let s = fixtures::shapes_layout(dir.path());
    (dir, s)
}

#[test]
fn round_trips_are_byte_identical_between_all_backends() {
    let (src_dir, _) = shapes();
    let (reg_a, reg_b) = (Registry::start(), Registry::start());
    let out = tempfile::tempdir().unwrap();
    let c = client(vec![http_host(&reg_a.host), http_host(&reg_b.host)]);
    let layout = src_dir.path().display().to_string();
    let (a, b) = (reg_a.host.clone(), reg_b.host.clone());
    let oc1 = out.path().join("one").display().to_string();
    let oc2 = out.path().join("two").display().to_string();
    for tag in ["single", "multi", "loop"] {
        rt().block_on(async {
            // ocidir → registry → registry (same host) → other registry → ocidir → ocidir
            copy_image(&c, &r(&format!("ocidir://{layout}:{tag}")), &r(&format!("{a}/rt:{tag}"))).await.unwrap();
            let mounted =
                copy_image(&c, &r(&format!("{a}/rt:{tag}")), &r(&format!("{a}/rt-same:{tag}"))).await.unwrap();
            assert_eq!(mounted.blobs_sent, 0, "{tag}: same-registry copies mount");
            assert!(mounted.blobs_mounted > 0, "{tag}: {mounted:?}");
            let across = copy_image(&c, &r(&format!("{a}/rt-same:{tag}")), &r(&format!("{b}/rt:{tag}"))).await.unwrap();
            assert!(across.blobs_sent > 0);
            copy_image(&c, &r(&format!("{b}/rt:{tag}")), &r(&format!("ocidir://{oc1}:{tag}"))).await.unwrap();
            copy_image(&c, &r(&format!("ocidir://{oc1}:{tag}")), &r(&format!("ocidir://{oc2}:{tag}"))).await.unwrap();
        });
        let expected = LayoutReader::open(src_dir.path()).tags()[tag].digest.clone();
        let source_bytes = LayoutReader::open(src_dir.path()).blob(&expected).unwrap();
        for (reg, repo) in [(&reg_a, "rt"), (&reg_a, "rt-same"), (&reg_b, "rt")] {
            let (_, bytes, _) = reg.api().manifest(repo, tag).unwrap();
            assert_eq!(bytes, source_bytes, "{tag} in {}/{repo} is byte-identical", reg.host);
            assert_eq!(reg.api().verify_tag(repo, tag), Vec::<String>::new());
        }
        for dir in [&oc1, &oc2] {
            let l = LayoutReader::open(dir);
            assert_eq!(l.tags()[tag].digest, expected);
            assert_eq!(l.verify(), Vec::<String>::new());
        }
    }
    // A second copy sends nothing: every blob is found with HEAD.
    let again =
        rt().block_on(copy_image(&c, &r(&format!("ocidir://{layout}:multi")), &r(&format!("{b}/rt:multi")))).unwrap();
    assert_eq!((again.blobs_sent, again.blobs_mounted), (0, 0));
    assert!(again.blobs_existed > 0);
}

#[test]
fn referrers_fall_back_to_the_tag_schema_and_are_updated_on_push() {
    let (src_dir, s) = shapes();
    let reg = Registry::start();
    let c = client(vec![http_host(&reg.host)]);
    let layout = src_dir.path().display().to_string();
    let host = reg.host.clone();
    rt().block_on(async {
        copy_image(&c, &r(&format!("ocidir://{layout}:multi")), &r(&format!("{host}/app:multi"))).await.unwrap();
        // Push both referrers by digest; the registry has no referrers API, so the
        // client maintains the sha256-<hex> index.
        for referrer in [&s.sbom, &s.signature] {
            let src = r(&format!("ocidir://{layout}@{}", referrer.digest));
            let m = c.manifest_get(&src).await.unwrap();
            for blob in m.doc().unwrap().config.iter().chain(&m.doc().unwrap().layers) {
                c.copy_blob(&src, &r(&format!("{host}/app")), blob, None).await.unwrap();
            }
            c.manifest_put(&r(&format!("{host}/app@{}", referrer.digest)), &m, PutOptions::default()).await.unwrap();
        }
        let subject = r(&format!("{host}/app@{}", s.multi.digest));
        let all = c.referrers(&subject).await.unwrap();
        let digests: Vec<&str> = all.iter().map(|d| d.digest.as_str()).collect();
        assert_eq!(digests, vec![s.sbom.digest.as_str(), s.signature.digest.as_str()]);
        assert_eq!(all[0].artifact_type.as_deref(), Some("application/example.sbom"));
        let sboms = all.iter().filter(|d| d.artifact_type.as_deref() == Some("application/example.sbom"));
        assert_eq!(sboms.count(), 1);
        // Pushing the same referrer again does not duplicate it.
        let m = c.manifest_get(&r(&format!("ocidir://{layout}@{}", s.sbom.digest))).await.unwrap();
        c.manifest_put(&r(&format!("{host}/app@{}", s.sbom.digest)), &m, PutOptions::default()).await.unwrap();
        assert_eq!(c.referrers(&subject).await.unwrap().len(), 2);
        // No referrers at all: an empty list, not an error.
        assert!(c.referrers(&r(&format!("{host}/app@{}", s.sbom.digest))).await.unwrap().is_empty());
        // Layouts find referrers through the fallback tag, as regclient's layout reader does.
        let in_layout = c.referrers(&r(&format!("ocidir://{layout}@{}", s.child.digest))).await.unwrap();
        assert_eq!(in_layout.iter().map(|d| d.digest.clone()).collect::<Vec<_>>(), vec![s.looped.digest.clone()]);
    });
    let fallback = regsync::client::fallback_tag(&s.multi.digest);
    assert!(reg.api().tags("app").contains(&fallback));
}

#[test]
fn tags_and_catalog_follow_pagination() {
    let reg = Registry::start();
    let (src_dir, s) = shapes();
    let layout = LayoutReader::open(src_dir.path());
    let api = reg.api();
    let expected_tags: Vec<String> = (0..35).map(|i| format!("t{i:02}")).collect();
    for t in &expected_tags {
        api.push_from_layout(&layout, "many", &s.single, Some(t)).unwrap();
    }
    for i in 0..23 {
        api.push_from_layout(&layout, &format!("repo{i:02}"), &s.single, Some("v1")).unwrap();
    }
    let proxy = regsync_tests::proxy::FaultProxy::start(&reg.url);
    proxy.add(regsync_tests::proxy::Rule::new(
        Some("GET"),
        "/many/tags/list",
        regsync_tests::proxy::Fault::PaginateTags(10),
        100,
    ));
    let c = client_with(
        vec![http_host(&proxy.host)],
        RegistryOptions { docker_certs: false, page_size: Some(10), ..RegistryOptions::default() },
    );
    let host = proxy.host.clone();
    let (tags, repos) = rt()
        .block_on(async { (c.tag_list(&r(&format!("{host}/many"))).await.unwrap(), c.catalog(&host).await.unwrap()) });
    let mut tags = tags;
    tags.sort();
    assert_eq!(tags, expected_tags);
    assert_eq!(proxy.count("GET", "/tags/list"), 4, "35 tags in pages of 10");
    assert_eq!(repos.len(), 24);
    assert!(repos.contains(&"many".to_string()) && repos.contains(&"repo22".to_string()));
    assert!(proxy.count("GET", "/_catalog") >= 3);
    // Without Link headers, regsync's `last=` loop still walks every page (REG-2).
    proxy.clear_log();
    proxy.add(regsync_tests::proxy::Rule::new(
        Some("GET"),
        "/_catalog",
        regsync_tests::proxy::Fault::StripHeader("Link".into()),
        100,
    ));
    let again = rt().block_on(c.catalog(&host)).unwrap();
    assert_eq!(again, repos);
    assert!(proxy.log().iter().any(|l| l.path.contains("last=")), "{:?}", proxy.log());
    // A missing repository is "not found".
    let err = rt().block_on(c.tag_list(&r(&format!("{host}/absent")))).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
}

#[test]
fn layout_tags_are_sorted_and_a_missing_layout_is_not_found_ref_8() {
    let (src_dir, _) = shapes();
    let c = client(vec![]);
    let tags = rt().block_on(c.tag_list(&r(&format!("ocidir://{}", src_dir.path().display())))).unwrap();
    let mut sorted = tags.clone();
    sorted.sort();
    assert_eq!(tags, sorted);
    assert!(tags.contains(&"multi".to_string()));
    let err = rt().block_on(c.tag_list(&r("ocidir:///nonexistent/layout"))).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    let err = rt().block_on(c.manifest_get(&r(&format!("ocidir://{}:nope", src_dir.path().display())))).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
}

#[test]
fn layout_writes_are_concurrent_safe_and_garbage_is_collected_on_close() {
    let (src_dir, shapes_desc) = shapes();
    let out = tempfile::tempdir().unwrap();
    let c = client(vec![]);
    let src = src_dir.path().display().to_string();
    let dst = out.path().display().to_string();
    rt().block_on(async {
        let target = r(&format!("ocidir://{dst}"));
        c.begin(&target);
        let copies = ["single", "multi", "child", "loop"].map(|tag| {
            let (c, src, dst) = (c.clone(), src.clone(), dst.clone());
            tokio::spawn(async move {
                c.begin(&r(&format!("ocidir://{dst}")));
                copy_image(&c, &r(&format!("ocidir://{src}:{tag}")), &r(&format!("ocidir://{dst}:{tag}")))
                    .await
                    .unwrap();
                c.close(&r(&format!("ocidir://{dst}"))).await.unwrap();
            })
        });
        for h in copies {
            h.await.unwrap();
        }
        // An orphan blob (a copy that never got its manifest pushed) goes at the last close.
        let orphan = Manifest::new(MT_OCI_INDEX, bytes::Bytes::from_static(b"{\"orphan\":true}"));
        c.manifest_put(
            &r(&format!("ocidir://{dst}@{}", orphan.digest)),
            &orphan,
            PutOptions { child: true, ..PutOptions::default() },
        )
        .await
        .unwrap();
        assert!(c.blob_head(&target, &orphan.digest).await.unwrap().is_some());
        c.close(&target).await.unwrap();
        assert!(c.blob_head(&target, &orphan.digest).await.unwrap().is_none(), "unreferenced blob collected");
    });
    let l = LayoutReader::open(out.path());
    assert_eq!(l.verify(), Vec::<String>::new());
    // `loop` has a subject (`child`): the layout writer keeps its fallback tag, as regclient's does.
    let fallback = regsync_tests::oci::fallback_tag(&shapes_desc.child.digest);
    assert_eq!(
        l.tags().keys().cloned().collect::<Vec<_>>(),
        vec!["child", "loop", "multi", fallback.as_str(), "single"]
    );
    let listed = l.blob(&l.tags()[&fallback].digest).unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed).unwrap();
    assert_eq!(listed["manifests"][0]["digest"], serde_json::json!(shapes_desc.looped.digest));
    let leftovers: Vec<_> = std::fs::read_dir(out.path().join("blobs/sha256"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files left");
}

#[test]
fn blob_copies_report_how_they_happened() {
    let (src_dir, s) = shapes();
    let reg = Registry::start();
    let c = client(vec![http_host(&reg.host)]);
    let host = reg.host.clone();
    let layout = src_dir.path().display().to_string();
    rt().block_on(async {
        let m = c.manifest_get(&r(&format!("ocidir://{layout}@{}", s.single.digest))).await.unwrap();
        let layer = m.doc().unwrap().layers[0].clone();
        let src = r(&format!("ocidir://{layout}"));
        assert_eq!(c.copy_blob(&src, &r(&format!("{host}/one")), &layer, None).await.unwrap(), BlobCopy::Copied);
        assert_eq!(c.copy_blob(&src, &r(&format!("{host}/one")), &layer, None).await.unwrap(), BlobCopy::Existed);
        let mount_from = r(&format!("{host}/one"));
        assert_eq!(
            c.copy_blob(&src, &r(&format!("{host}/two")), &layer, Some(&mount_from)).await.unwrap(),
            BlobCopy::Mounted
        );
    });
    let layer_bytes = LayoutReader::open(src_dir.path())
        .blob(
            serde_json::from_slice::<serde_json::Value>(
                &LayoutReader::open(src_dir.path()).blob(&s.single.digest).unwrap(),
            )
            .unwrap()["layers"][0]["digest"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(reg.api().blob("two", &sha256_digest(&layer_bytes)).unwrap(), layer_bytes);
}
