//! Loading a config file with its plugins: the one entry point of the
//! binary and the server. The text is decoded once (`config::Document`);
//! the plugins it declares are loaded first, because template plugins add
//! functions the config's templates may call; then the same decoding is
//! compiled, and every use of a plugin is checked against what it exports.
//! Any problem rejects the whole load, each naming its line.

use crate::config::yaml::Pos;
use crate::config::{self, Config, ConfigError, Diagnostic, Severity};
use crate::plugin::{PluginHost, PluginSet, oci};
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
    let mut document = config::Document::parse(text, origin)?;
    let mut problems = Vec::new();
    let pulled = pull_plugins(&mut document, host, &mut problems);
    let plugins = PluginSet::load(host, document.plugins(), &pulled, previous, &mut problems);
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

/// Pulls the components of plugins declared with `ref:` (index-aligned with
/// `document.plugins()`), with the config's own registry settings. A tag is
/// resolved here, on every load and reload, and pinned in the document so
/// the loaded config names the digest; it gets a warning, being unpinned.
fn pull_plugins(
    document: &mut config::Document,
    host: &PluginHost,
    problems: &mut Vec<Diagnostic>,
) -> Vec<Option<Vec<u8>>> {
    let mut pulled = vec![None; document.plugins().len()];
    let wanted: Vec<(usize, String, Pos)> = document
        .plugins()
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.reference.is_empty())
        .map(|(i, p)| (i, p.reference.clone(), p.pos))
        .collect();
    if wanted.is_empty() {
        return pulled;
    }
    let registry = document.registry_config();
    for (i, reference, pos) in wanted {
        let path = format!("plugins[{i}].ref");
        match oci::pull_blocking(&registry, &reference, host.cache_dir()) {
            Ok(p) => {
                if !reference.contains('@') {
                    let message = format!("{reference} is not pinned by a digest; it resolved to {}", p.digest);
                    problems.push(Diagnostic { severity: Severity::Warning, pos, step: None, path, message });
                }
                tracing::debug!(reference, digest = p.digest, cached = p.cached, "Plugin component pulled");
                document.pin_plugin(i, oci::pinned(&reference, &p.digest));
                pulled[i] = Some(p.bytes);
            }
            Err(e) => {
                problems.push(Diagnostic { severity: Severity::Error, pos, step: None, path, message: e.to_string() })
            }
        }
    }
    pulled
}
