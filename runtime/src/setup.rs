//! Loading a config file with its plugins: the one entry point of the
//! binary and the server. The text is decoded once (`config::Document`);
//! the plugins it declares are loaded first, because template plugins add
//! functions the config's templates may call; then the same decoding is
//! compiled, and every use of a plugin is checked against what it exports.
//! Any problem rejects the whole load, each naming its line.

use crate::config::{self, Config, ConfigError, Diagnostic};
use crate::plugin::{PluginHost, PluginSet};
use crate::template::Templates;

/// A config ready to run, with its plugins.
pub struct Setup {
    /// The config.
    pub config: Config,
    /// Its plugins, loaded.
    pub plugins: PluginSet,
    /// Problems that did not stop the load (unknown keys, quirks kept).
    pub warnings: Vec<Diagnostic>,
}

/// Loads `text` (read from `origin`). `previous` is the plugin set running
/// now: plugins whose file and settings are unchanged are reused as they
/// are, so a reload only compiles what changed. Compiling a component can
/// take seconds: a server calls this off its event loop.
pub fn load(text: &str, origin: &str, host: &PluginHost, previous: Option<&PluginSet>) -> Result<Setup, ConfigError> {
    let document = config::Document::parse(text, origin)?;
    let mut problems = Vec::new();
    let plugins = PluginSet::load(host, document.plugins(), previous, &mut problems);
    let mut templates = Templates::default();
    plugins.register_functions(&mut templates, &mut problems);
    let loaded = document.compile(&templates, problems)?;
    let mut misuses = plugins.check_uses(&loaded.config);
    if !misuses.is_empty() {
        misuses.sort_by_key(|d| d.pos);
        return Err(ConfigError::Invalid { origin: origin.to_string(), diagnostics: misuses });
    }
    Ok(Setup { config: loaded.config, plugins, warnings: loaded.warnings })
}
