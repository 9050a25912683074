//! The plugin WIT is frozen once released: each released version is kept in
//! `wit/released/<version>/` with its hash recorded here, the working file and
//! the SDK's copy agree with it, and the host loads every released version.
//! Releasing a new version means adding its directory and its line below;
//! changing a released file fails this test.

use std::path::Path;

use regsync_tests::repo_root;
use sha2::{Digest, Sha256};

/// Every released `regsync:plugin` version and the sha256 of its WIT file.
const RELEASED: &[(&str, &str)] = &[
    ("0.1.0", "9402d2efc12e4304cbe802897f49ebb9b393ac6027231e31274019f925738353"),
    ("0.2.0", "40b16ee01c6fdab9ee1c5a2db0893f0da76727db66eca60ba611f439e43a4dfd"),
];

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `X` of `package regsync:plugin@X;`.
fn package_version(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("package regsync:plugin@"))
        .and_then(|v| v.strip_suffix(';'))
        .unwrap_or_else(|| panic!("{} declares no regsync:plugin package", path.display()))
        .to_string()
}

#[test]
fn released_wit_files_never_change() {
    let released = repo_root().join("wit/released");
    let mut on_disk: Vec<String> =
        std::fs::read_dir(&released).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    on_disk.sort();
    let recorded: Vec<String> = RELEASED.iter().map(|(v, _)| v.to_string()).collect();
    assert_eq!(on_disk, recorded, "every released version has its directory and its recorded hash");
    for (version, hash) in RELEASED {
        let file = released.join(version).join("regsync-plugin.wit");
        assert_eq!(package_version(&file), *version, "{}", file.display());
        assert_eq!(
            &sha256_hex(&file),
            hash,
            "{} changed after its release; ship a new version instead",
            file.display()
        );
    }
}

#[test]
fn the_working_file_and_the_sdk_copy_agree_with_the_release() {
    let root = repo_root();
    let working = root.join("wit/regsync-plugin.wit");
    let sdk = root.join("plugin-sdk/wit/regsync-plugin.wit");
    assert_eq!(sha256_hex(&sdk), sha256_hex(&working), "plugin-sdk/wit is a copy of wit/regsync-plugin.wit");
    let version = package_version(&working);
    if let Some((_, hash)) = RELEASED.iter().find(|(v, _)| *v == version) {
        assert_eq!(&sha256_hex(&working), hash, "wit/regsync-plugin.wit says {version}, which is released and frozen");
    }
}

#[test]
fn the_host_supports_every_released_version() {
    let released: Vec<&str> = RELEASED.iter().map(|(v, _)| *v).collect();
    for v in &released {
        assert!(regsync::plugin::SUPPORTED_WIT.contains(v), "{v} is released but the host does not load it");
    }
    // And `regsync version` reports the working version.
    let out = regsync_tests::bin::run(&["version", "--format", "{{.PluginWIT}}"]).stdout;
    assert_eq!(out, package_version(&repo_root().join("wit/regsync-plugin.wit")));
}

/// A component generated straight from each released WIT file (not through
/// the SDK) loads and works: what was built against a release keeps running.
#[test]
fn components_built_against_the_frozen_file_keep_loading() {
    let frozen = regsync_tests::plugins::rust_plugin("test-frozen");
    let host = regsync::plugin::PluginHost::new(Some(regsync_tests::plugins::cache_dir()));
    let spec = regsync::config::PluginSpec {
        name: "frozen".into(),
        path: frozen.display().to_string(),
        reference: String::new(),
        config: Default::default(),
        allow_hosts: Vec::new(),
        timeout: regsync::duration::GoDuration::from_secs(10),
        memory: 64,
        pos: Default::default(),
    };
    let plugin = host.load(&spec).unwrap();
    let tags: Vec<String> = ["keep-1", "drop", "keep-2"].map(String::from).to_vec();
    assert_eq!(plugin.filter_tags("repo", &tags).unwrap(), ["keep-1", "keep-2"]);
}
