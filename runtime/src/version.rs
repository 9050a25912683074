//! `regsync version`: build details, printed as regsync prints them (CLI-7).
//! Field names keep regsync's (`VCSTag`, `GoVer`, …) so `--format` templates
//! written for regsync work; the Go fields carry the Rust toolchain. Two
//! fields regsync lacks follow them: the plugin WIT package version and the
//! wasmtime version, which tell which plugins this build can load.

use gotmpl::Value;

use crate::template::{MapBuilder, with_pretty_form};

/// What the binary knows about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// Release tag, or the crate version when built from an untagged commit.
    pub vcs_tag: String,
    /// Branch or tag name.
    pub vcs_ref: String,
    /// Commit hash.
    pub vcs_commit: String,
    /// `clean` or `dirty`.
    pub vcs_state: String,
    /// Commit date.
    pub vcs_date: String,
    /// `os/arch`.
    pub platform: String,
    /// Compiler version.
    pub compiler_version: String,
    /// The `regsync:plugin` WIT package version plugins are built against.
    pub plugin_wit: String,
    /// The wasmtime version that runs plugins.
    pub wasmtime: String,
}

impl VersionInfo {
    /// The details recorded at build time.
    pub fn current() -> Self {
        let tag = env!("REGSYNC_VCS_TAG");
        VersionInfo {
            vcs_tag: if tag.is_empty() { format!("v{}", env!("CARGO_PKG_VERSION")) } else { tag.to_string() },
            vcs_ref: env!("REGSYNC_VCS_REF").to_string(),
            vcs_commit: env!("REGSYNC_VCS_COMMIT").to_string(),
            vcs_state: env!("REGSYNC_VCS_STATE").to_string(),
            vcs_date: env!("REGSYNC_VCS_DATE").to_string(),
            platform: crate::platform::Platform::local().to_string(),
            compiler_version: env!("REGSYNC_RUSTC_VERSION").to_string(),
            plugin_wit: env!("REGSYNC_PLUGIN_WIT").to_string(),
            wasmtime: env!("REGSYNC_WASMTIME_VERSION").to_string(),
        }
    }

    fn rows(&self) -> [(&'static str, &str); 10] {
        [
            ("VCSTag", &self.vcs_tag),
            ("VCSRef", &self.vcs_ref),
            ("VCSCommit", &self.vcs_commit),
            ("VCSState", &self.vcs_state),
            ("VCSDate", &self.vcs_date),
            ("Platform", &self.platform),
            ("GoVer", &self.compiler_version),
            ("GoCompiler", "rustc"),
            ("PluginWIT", &self.plugin_wit),
            ("Wasmtime", &self.wasmtime),
        ]
    }

    /// The default output: one aligned `Name: value` line per field.
    pub fn pretty(&self) -> String {
        self.rows().iter().map(|(k, v)| format!("{:<12}{v}\n", format!("{k}:"))).collect()
    }

    /// Template data for `--format`, with the pretty form for `printPretty`.
    pub fn template_value(&self) -> Value {
        let map = self.rows().iter().fold(MapBuilder::default(), |m, (k, v)| m.str(k, v)).build();
        with_pretty_form(map, self.pretty())
    }

    /// The user agent sent to registries when `userAgent` is unset (CLIENT-5).
    pub fn user_agent(&self) -> String {
        format!("regclient/regsync ({})", self.vcs_tag)
    }
}
