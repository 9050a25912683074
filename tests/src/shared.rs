//! The compatibility fixtures from another project (regclient's test layouts),
//! read from `../shared/fixtures/regclient/` and never copied into this repository.

use std::path::PathBuf;

/// Where the shared directory is: `$REGSYNC_SHARED_DIR`, else `../shared` beside the repository.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("REGSYNC_SHARED_DIR").map_or_else(|| crate::repo_root().join("../shared"), PathBuf::from)
}

/// The regclient fixture layout `name` (`testrepo`, `external`), or `None`
/// after printing a visible skip that names the missing path.
pub fn regclient_layout(name: &str) -> Option<PathBuf> {
    let dir = shared_dir().join("fixtures/regclient").join(name);
    if dir.join("index.json").exists() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: regclient compatibility fixture not found at {}", dir.display());
        None
    }
}

/// The Sigstore fixtures folder `name` (`containers-image`, `cosign`), or
/// `None` after printing a visible skip that names the missing path.
pub fn sigstore_fixtures(name: &str) -> Option<PathBuf> {
    let dir = shared_dir().join("fixtures/sigstore").join(name);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: sigstore compatibility fixtures not found at {}", dir.display());
        None
    }
}
