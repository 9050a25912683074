//! The fixture generator writes valid, deterministic layouts of every shape.

use regsync_tests::fixtures::{self, REF_NAME};
use regsync_tests::oci::{LayoutReader, fallback_tag};

#[test]
fn shapes_are_valid_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let s = fixtures::shapes_layout(dir.path());
    let layout = LayoutReader::open(dir.path());
    assert_eq!(layout.verify(), Vec::<String>::new());
    let tags = layout.tags();
    for tag in ["single", "multi", "child", "loop"] {
        assert!(tags.contains_key(tag), "missing tag {tag}");
    }
    assert_eq!(tags["multi"].digest, s.multi.digest);
    // The referrers fallback tag lists both referrers with their artifact types.
    let fallback = &tags[&fallback_tag(&s.multi.digest)];
    let index: serde_json::Value = serde_json::from_slice(&layout.blob(&fallback.digest).unwrap()).unwrap();
    let listed: Vec<(&str, &str)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["digest"].as_str().unwrap(), m["artifactType"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (s.sbom.digest.as_str(), "application/example.sbom"),
            (s.signature.digest.as_str(), "application/example.signature")
        ]
    );
    // The digest tag points at the signature.
    assert_eq!(tags[&format!("{}.sig", fallback_tag(&s.multi.digest))].digest, s.signature.digest);
    // The loop: an index whose subject is its own child.
    let looped: serde_json::Value = serde_json::from_slice(&layout.blob(&s.looped.digest).unwrap()).unwrap();
    assert_eq!(looped["subject"]["digest"], s.child.digest.as_str());
    assert_eq!(looped["manifests"][0]["digest"], s.child.digest.as_str());
    assert_eq!(tags[&fallback_tag(&s.child.digest)].media_type, fixtures::MT_INDEX);
    // Artifacts carry their subject and type.
    let sbom: serde_json::Value = serde_json::from_slice(&layout.blob(&s.sbom.digest).unwrap()).unwrap();
    assert_eq!(sbom["subject"]["digest"], s.multi.digest.as_str());
    assert_eq!(sbom["artifactType"], "application/example.sbom");
    assert!(layout.index()["manifests"].as_array().unwrap().iter().all(|m| m["annotations"][REF_NAME].is_string()));
}

#[test]
fn output_is_deterministic() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (sa, sb) = (fixtures::shapes_layout(a.path()), fixtures::shapes_layout(b.path()));
    assert_eq!(sa.multi.digest, sb.multi.digest);
    assert_eq!(sa.looped.digest, sb.looped.digest);
    assert_eq!(
        std::fs::read(a.path().join("index.json")).unwrap(),
        std::fs::read(b.path().join("index.json")).unwrap()
    );
}

#[test]
fn layers_are_real_gzip_tars() {
    let tgz = fixtures::gzip(&fixtures::tar("hello.txt", b"hi\n"));
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&tgz[..]), &mut tar).unwrap();
    assert_eq!(&tar[..9], b"hello.txt");
    assert_eq!(&tar[512..515], b"hi\n");
    assert_eq!(tar.len() % 512, 0);
}

/// The example layout in `examples/` is what the generator writes;
/// `REGSYNC_BLESS=1` regenerates it.
#[test]
fn bundled_example_layout_is_generated() {
    let committed = regsync_tests::repo_root().join("examples/layouts/hello");
    if std::env::var_os("REGSYNC_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&committed);
        fixtures::example_layout(&committed);
    }
    let fresh = tempfile::tempdir().unwrap();
    let index = fixtures::example_layout(fresh.path());
    let layout = LayoutReader::open(&committed);
    assert_eq!(layout.verify(), Vec::<String>::new());
    assert_eq!(layout.tags()["v1"].digest, index.digest, "examples/layouts/hello is stale; rerun with REGSYNC_BLESS=1");
    let platforms: Vec<String> = serde_json::from_slice::<serde_json::Value>(&layout.blob(&index.digest).unwrap())
        .unwrap()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!("{}/{}", m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap())
        })
        .collect();
    assert_eq!(platforms, vec!["linux/amd64", "linux/arm64"]);
}
