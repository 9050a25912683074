//! `regsync config`: the processed config as YAML, secrets redacted
//! (CLI-13, docs/decisions.md). The output loads again to the same config.

use super::model::Config;

/// Renders the loaded config; `pass`, `token` and `clientKey` print as `[redacted]`.
pub fn to_yaml(config: &Config) -> String {
    // Serializing plain data structs cannot fail; an error here is a bug in our types.
    serde_saphyr::to_string(config).unwrap_or_else(|e| format!("# failed to render config: {e}\n"))
}
