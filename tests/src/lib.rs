//! Test support for regsync's integration tests: real registries
//! ([`registry`]), an OCI layout generator ([`fixtures`]), plain-HTTP OCI
//! helpers ([`oci`]), the `regsync` binary ([`bin`]), golden files
//! ([`golden`]), the shared compatibility fixtures ([`shared`]), a fault
//! proxy ([`proxy`]) with its registry quirks ([`quirks`]), a hostile registry ([`hostile`]), an upload-rate limiting relay ([`slowlink`]), a token issuer ([`token`]), a webhook receiver
//! ([`webhook`]), the request parsing those three share ([`http1`]), a
//! client-only image copy ([`copy`]) and the plugins of `plugins/` ([`plugins`]).

pub mod bin;
pub mod copy;
pub mod fixtures;
pub mod golden;
pub mod hostile;
pub mod http1;
pub mod oci;
pub mod plugins;
pub mod proxy;
pub mod quirks;
pub mod registry;
pub mod shared;
pub mod signing;
pub mod slowlink;
pub mod token;
pub mod webhook;

/// The repository root.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Sends regsync's logs to stderr when `REGSYNC_TEST_LOG` names a level.
pub fn init_logging() {
    if let Ok(level) = std::env::var("REGSYNC_TEST_LOG")
        && let Ok(filter) = regsync::logging::parse_verbosity(&level)
    {
        regsync::logging::init(filter, regsync::logging::LogFormat::Text);
    }
}
