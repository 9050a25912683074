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
