//! Compatibility suite over regclient's own test layouts, read from
//! `../shared/fixtures/regclient/` (never copied here). Without them the
//! tests print a visible SKIPPED line naming the missing path.

use regsync_tests::oci::{LayoutReader, sha256_digest};
use regsync_tests::registry::Registry;
use regsync_tests::shared::regclient_layout;

#[test]
fn regclient_layouts_are_readable_and_complete() {
    for name in ["testrepo", "external"] {
        let Some(dir) = regclient_layout(name) else {
            continue;
        };
        let layout = LayoutReader::open(&dir);
        assert_eq!(layout.verify(), Vec::<String>::new(), "{name}");
        assert!(!layout.tags().is_empty(), "{name} has tags");
    }
}

#[test]
fn regclient_testrepo_tags_match_the_behaviour_doc() {
    let Some(dir) = regclient_layout("testrepo") else {
        return;
    };
    let tags = LayoutReader::open(&dir).tags();
    for tag in ["v1", "v2", "v3", "b1", "b2", "b3", "a1", "a2", "a3", "ai", "child", "loop", "mirror"] {
        assert!(tags.contains_key(tag), "testrepo lacks {tag}");
    }
    assert!(tags["v1"].digest.starts_with("sha256:7ceb9b6b"));
    assert!(tags["v2"].digest.starts_with("sha256:dfae8f42"));
    assert!(tags["loop"].digest.starts_with("sha256:d69399e0"));
}

#[test]
fn regclient_v2_round_trips_through_a_real_registry() {
    let Some(dir) = regclient_layout("testrepo") else {
        return;
    };
    let layout = LayoutReader::open(&dir);
    let v2 = layout.tags()["v2"].clone();
    let reg = Registry::start();
    reg.api().push_from_layout(&layout, "testrepo", &v2, Some("v2")).unwrap();
    let (_, bytes, _) = reg.api().manifest("testrepo", "v2").unwrap();
    assert_eq!(sha256_digest(&bytes), v2.digest);
    assert_eq!(reg.api().verify_tag("testrepo", "v2"), Vec::<String>::new());
}

/// regclient's testrepo through the engine, into a registry and a layout,
/// with referrers on: for every manifest the copy brought whose source has a
/// `sha256-<hex>` fallback tag, the target's fallback tag lists the same
/// referrers (what `regctl artifact list` reads), and a second run is a no-op.
#[test]
fn regclient_referrers_stay_visible_through_the_fallback_tag() {
    use regsync::pipeline::{Mode, Outcome, PipelineOptions};
    let Some(testrepo) = regclient_layout("testrepo") else {
        return;
    };
    let source = LayoutReader::open(&testrepo);
    let dst = Registry::start();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("layout");
    let mut steps = String::new();
    for tag in ["v2", "loop", "mirror"] {
        steps += &format!(
            "  - {{source: \"ocidir://{src}:{tag}\", target: \"{d}/testrepo:{tag}\", type: image, referrers: true, digestTags: true}}\n  - {{source: \"ocidir://{src}:{tag}\", target: \"ocidir://{o}:{tag}\", type: image, referrers: true, digestTags: true}}\n",
            src = testrepo.display(),
            d = dst.host,
            o = out_dir.display()
        );
    }
    let yaml = format!("{}sync:\n{steps}", crate::engine_work::creds(&[&dst.host]));
    let reports = crate::engine_work::run(&yaml, PipelineOptions::default(), Mode::Copy);
    let errors: Vec<String> = reports.iter().flat_map(|r| r.errors.iter().map(ToString::to_string)).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let listed = |bytes: &[u8]| -> std::collections::BTreeSet<String> {
        let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        v["manifests"].as_array().into_iter().flatten().map(|m| m["digest"].as_str().unwrap().to_string()).collect()
    };
    let layout_out = LayoutReader::open(&out_dir);
    let out_tags = layout_out.tags();
    let mut compared = 0;
    for (tag, index) in source.tags() {
        let Some(hex) = tag.strip_prefix("sha256-").filter(|h| h.len() == 64) else {
            continue;
        };
        if index.media_type != "application/vnd.oci.image.index.v1+json" {
            continue; // `mirror`'s self digest tag: a name of the family, not a referrers index
        }
        let subject = format!("sha256:{hex}");
        if dst.api().manifest("testrepo", &subject).is_none() {
            continue; // not part of what was copied
        }
        let want = listed(&source.blob(&index.digest).unwrap());
        let on_registry = dst.api().manifest("testrepo", &tag).map(|(_, b, _)| listed(&b));
        assert_eq!(on_registry.as_ref(), Some(&want), "registry {tag}");
        let on_layout = out_tags.get(&tag).map(|d| listed(&layout_out.blob(&d.digest).unwrap()));
        assert_eq!(on_layout.as_ref(), Some(&want), "layout {tag}");
        compared += 1;
    }
    assert!(compared >= 2, "v2 and its platforms have referrers in testrepo: compared {compared}");
    eprintln!("regclient testrepo: {compared} fallback indexes identical on a registry and a layout");
    assert_eq!(layout_out.verify(), Vec::<String>::new());
    let again = crate::engine_work::run(&yaml, PipelineOptions::default(), Mode::Copy);
    let busy: Vec<String> = again
        .iter()
        .flat_map(|r| &r.images)
        .filter(|i| i.outcome != Outcome::UpToDate)
        .map(|i| format!("{} {:?} {}", i.target, i.outcome, i.reason))
        .collect();
    assert!(busy.is_empty(), "{busy:#?}");
}
