//! The regsync config file: YAML in, a validated [`Config`] out.
//!
//! Loading runs in phases, each in its own module: `yaml` builds a node tree
//! with positions; `decode` turns it into the raw, all-optional form and
//! reports type errors and unknown keys; `compile` merges `defaults`
//! (`defaults.rs`), expands templates (`expand.rs`) and validates. Every
//! problem from every phase is collected, so one run reports them all.

mod compile;
mod decode;
pub mod defaults;
mod diagnostic;
pub mod expand;
pub mod model;
mod print;
mod raw;
pub mod yaml;

use std::io::Read;
use std::path::Path;

pub use diagnostic::{ConfigError, Diagnostic, Severity, StepId};
pub use model::*;
pub use print::to_yaml;

use crate::template::TemplateEngine;

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

/// Loads a config from a file, or from standard input when `path` is `-`.
pub fn load_path(path: &str, engine: &TemplateEngine) -> Result<Loaded, ConfigError> {
    let (origin, text) = if path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| ConfigError::Read { origin: STDIN.into(), source })?;
        (STDIN.to_string(), text)
    } else {
        let text = std::fs::read_to_string(Path::new(path))
            .map_err(|source| ConfigError::Read { origin: path.to_string(), source })?;
        (path.to_string(), text)
    };
    load_str(&text, &origin, engine)
}

/// Loads a config from text; `origin` names it in messages.
pub fn load_str(text: &str, origin: &str, engine: &TemplateEngine) -> Result<Loaded, ConfigError> {
    let mut diags = diagnostic::Diagnostics::default();
    let root = match yaml::parse(text) {
        Ok(root) => root,
        Err(e) => {
            diags.error(e.pos, "", format!("YAML syntax error: {}", e.message));
            return Err(ConfigError::Invalid { origin: origin.to_string(), diagnostics: diags.into_sorted() });
        }
    };
    let raw = decode::decode(root.as_ref(), &mut diags);
    let config = compile::compile(raw, engine, &mut diags);
    let failed = diags.has_errors();
    let diagnostics = diags.into_sorted();
    if failed {
        return Err(ConfigError::Invalid { origin: origin.to_string(), diagnostics });
    }
    Ok(Loaded { config, warnings: diagnostics })
}

#[cfg(test)]
mod tests;
