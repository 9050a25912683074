//! Many images sharing children and blobs, copied with high concurrency by
//! two steps into one target repository. Distribution 2.8 rewrites link
//! files in place, so writing the same manifest or blob into a repository
//! twice while another push names it can fail that push with
//! `DIGEST_INVALID` (issue 9). Every push must succeed, and within a run no
//! manifest or blob may be written into a repository twice.

use std::collections::BTreeMap;

use regsync::pipeline::{Mode, PipelineOptions};
use regsync_tests::fixtures::{self, AMD64, ARM64, noise};
use regsync_tests::oci::LayoutReader;
use regsync_tests::proxy::FaultProxy;
use regsync_tests::registry::Registry;

use crate::engine_work::{creds, run};

/// `t0…t11`: indexes of two children each from a pool of six, neighbours
/// sharing one; `same0…same11`: the same indexes under other names;
/// `c0…c5`: the children themselves, tagged. Every image shares one base layer.
fn shared_layout(dir: &std::path::Path) -> usize {
    let mut l = fixtures::Layout::create(dir);
    let base = noise(3, 300_000);
    let pool: Vec<_> = (0..6u64)
        .map(|k| {
            let platform = if k % 2 == 0 { AMD64 } else { ARM64 };
            l.image(platform, &[("base", &base), ("top", &noise(40 + k, 20_000))])
        })
        .collect();
    for i in 0..12usize {
        let index = l.index(&[pool[i % 6].clone(), pool[(i + 1) % 6].clone()], None);
        l.tag(&format!("t{i}"), &index);
        l.tag(&format!("same{i}"), &index);
    }
    for (k, child) in pool.iter().enumerate() {
        l.tag(&format!("c{k}"), child);
    }
    l.save();
    12 * 2 + 6
}

/// How often each key was written, keeping those written more than once.
fn twice(keys: impl Iterator<Item = String>) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for k in keys {
        *counts.entry(k).or_default() += 1;
    }
    counts.retain(|_, n| *n > 1);
    counts
}

#[test]
fn shared_children_and_blobs_are_written_once_and_every_push_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let tags = shared_layout(&dir.path().join("layout"));
    let (src, dst) = (Registry::start(), Registry::start());
    let proxy = FaultProxy::start(&dst.url);
    let layout = LayoutReader::open(dir.path().join("layout"));
    for repo in ["a", "b"] {
        src.api().push_layout(&layout, repo).unwrap();
    }
    let options = PipelineOptions { image_concurrency: 16, ..PipelineOptions::default() };
    for round in 0..3 {
        let target = format!("shared{round}");
        let yaml = format!(
            "{}sync:\n  - {{source: {s}/a, target: {d}/{target}, type: repository}}\n  - {{source: {s}/b, target: {d}/{target}, type: repository}}\n",
            creds(&[&src.host, &proxy.host]).replace("parallel: 4", "parallel: 8"),
            s = src.host,
            d = proxy.host
        );
        proxy.clear_log();
        let reports = run(&yaml, options.clone(), Mode::Copy);
        let errors: Vec<String> = reports.iter().flat_map(|r| r.errors.iter().map(ToString::to_string)).collect();
        assert!(errors.is_empty(), "round {round}: {errors:#?}");
        let log = proxy.log();
        let refused: Vec<String> = log
            .iter()
            .filter(|l| l.method == "PUT" && l.path.contains("/manifests/") && l.status >= 400)
            .map(|l| format!("{} {}", l.status, l.path))
            .collect();
        assert!(refused.is_empty(), "round {round}: pushes the registry refused (DIGEST_INVALID races): {refused:#?}");
        let by_digest = twice(
            log.iter().filter(|l| l.method == "PUT" && l.path.contains("/manifests/sha256:")).map(|l| l.path.clone()),
        );
        assert!(by_digest.is_empty(), "round {round}: manifests pushed twice by digest: {by_digest:#?}");
        let by_tag =
            twice(log.iter().filter(|l| l.method == "PUT" && l.path.contains("/manifests/")).map(|l| l.path.clone()));
        assert!(by_tag.is_empty(), "round {round}: a tag pushed twice with the same image: {by_tag:#?}");
        let blob_writes = twice(log.iter().filter_map(|l| {
            let digest = l.path.split("digest=").nth(1).or_else(|| l.path.split("mount=").nth(1))?;
            let digest = digest.split('&').next()?;
            (l.status < 300).then(|| format!("{} {digest}", l.method))
        }));
        assert!(blob_writes.is_empty(), "round {round}: blobs written twice: {blob_writes:#?}");
        let on_target = dst.api().tag_digests(&target);
        assert_eq!(on_target.len(), tags, "round {round}");
        for tag in on_target.keys() {
            assert_eq!(dst.api().verify_tag(&target, tag), Vec::<String>::new(), "round {round}: {tag}");
        }
    }
}
