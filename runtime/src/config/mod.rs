//! The regsync config file: YAML in, a validated [`Config`] out.
//!
//! Loading runs in phases, each in its own module: `yaml` builds a node tree
//! with positions; `decode` turns it into the raw, all-optional form and
//! reports type errors and unknown keys; `compile` merges `defaults`
//! (`defaults.rs`), expands templates (`expand.rs`) and validates. Every
//! problem from every phase is collected, so one run reports them all.

mod compile;
mod decode;
pub(crate) mod defaults;
mod diagnostic;
pub(crate) mod expand;
pub(crate) mod model;
mod print;
mod raw;
mod verify;
pub mod yaml;

use std::io::Read;
use std::path::Path;

pub use diagnostic::{ConfigError, Diagnostic, Severity, StepId};
pub use model::*;
pub use print::to_yaml;

use crate::template::Templates;

/// A loaded config and the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The config.
    pub config: Config,
    /// Problems that did not stop the load (unknown keys, quirks kept).
    pub warnings: Vec<Diagnostic>,
}

/// Names the origin of config text in messages.
pub const STDIN: &str = "<stdin>";

/// Reads config text from a file, or from standard input when `path` is `-`;
/// returns the origin to name it by and the text.
pub fn read(path: &str) -> Result<(String, String), ConfigError> {
    if path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| ConfigError::Read { origin: STDIN.into(), source })?;
        Ok((STDIN.to_string(), text))
    } else {
        let text = std::fs::read_to_string(Path::new(path))
            .map_err(|source| ConfigError::Read { origin: path.to_string(), source })?;
        Ok((path.to_string(), text))
    }
}

/// Parses and decodes `text`; a YAML syntax error ends the load at once.
fn decode_text(text: &str, origin: &str, diags: &mut diagnostic::Diagnostics) -> Result<raw::RawConfig, ConfigError> {
    match yaml::parse(text) {
        Ok(root) => Ok(decode::decode(root.as_ref(), diags)),
        Err(e) => {
            diags.error(e.pos, "", format!("YAML syntax error: {}", e.message));
            let diagnostics = std::mem::take(diags).into_sorted();
            Err(ConfigError::Invalid { origin: origin.to_string(), diagnostics })
        }
    }
}

/// Relative paths in a config (plugin files) are relative to its directory.
fn base_dir(origin: &str) -> std::path::PathBuf {
    if origin == STDIN {
        std::path::PathBuf::from(".")
    } else {
        Path::new(origin).parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

/// Config text decoded once. What `plugins:` declares can be read before
/// the rest is compiled, so plugins that add template functions are loaded
/// first and the same decoding is then compiled with them.
pub struct Document {
    origin: String,
    raw: raw::RawConfig,
    plugins: Vec<PluginSpec>,
    diags: diagnostic::Diagnostics,
}

impl Document {
    /// Parses and decodes `text`; `origin` names it in messages. Only a YAML
    /// syntax error stops here; every other problem is reported by [`Document::compile`].
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let mut diags = diagnostic::Diagnostics::default();
        let raw = decode_text(text, origin, &mut diags)?;
        let plugins = compile::plugins(&raw.plugins, &base_dir(origin), &mut diags);
        Ok(Document { origin: origin.to_string(), raw, plugins, diags })
    }

    /// Where the text came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The plugins it declares (paths resolved against the config's directory).
    pub fn plugins(&self) -> &[PluginSpec] {
        &self.plugins
    }

    /// The settings that reach registries (`creds` and `defaults`, compiled
    /// with the built-in template functions only), for fetching plugins
    /// before the whole config can compile. Problems are left to [`Document::compile`].
    pub fn registry_config(&self) -> Config {
        let mut raw = self.raw.clone();
        raw.sync.clear();
        raw.plugins.clear();
        let base = base_dir(&self.origin);
        compile::compile(raw, Vec::new(), &base, &Templates::default(), &mut diagnostic::Diagnostics::default())
    }

    /// Records what a plugin's `ref` resolved to (`…@sha256:…`), so the
    /// compiled config and `regsync config` show the pinned reference.
    pub fn pin_plugin(&mut self, index: usize, pinned: String) {
        if let Some(p) = self.plugins.get_mut(index) {
            p.reference = pinned;
        }
    }

    /// Compiles the config with `templates` (extended by the plugins'
    /// functions); `problems` found outside (plugins that failed to load) are
    /// reported with the config's own, sorted by line.
    pub fn compile(self, templates: &Templates, problems: Vec<Diagnostic>) -> Result<Loaded, ConfigError> {
        let Document { origin, raw, plugins, mut diags } = self;
        let config = compile::compile(raw, plugins, &base_dir(&origin), templates, &mut diags);
        diags.extend(problems);
        let failed = diags.has_errors();
        let diagnostics = diags.into_sorted();
        if failed {
            return Err(ConfigError::Invalid { origin, diagnostics });
        }
        Ok(Loaded { config, warnings: diagnostics })
    }
}

/// Loads a config without plugins from text; `origin` names it in messages.
pub fn load_str(text: &str, origin: &str, templates: &Templates) -> Result<Loaded, ConfigError> {
    Document::parse(text, origin)?.compile(templates, Vec::new())
}

#[cfg(test)]
mod tests;
