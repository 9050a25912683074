//! Test support for regsync's integration tests: real registries
//! ([`registry`]), an OCI layout generator ([`fixtures`]), plain-HTTP OCI
//! helpers ([`oci`]), the `regsync` binary ([`bin`]), golden files
//! ([`golden`]) and the shared compatibility fixtures ([`shared`]).

pub mod bin;
pub mod fixtures;
pub mod golden;
pub mod oci;
pub mod registry;
pub mod shared;

/// The repository root.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}
