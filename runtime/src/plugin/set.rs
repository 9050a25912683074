//! The plugins of one config, loaded together with it: plugins first (their
//! template functions must exist before the config's templates are
//! compiled), then the config, then a check that every use matches what the
//! plugin exports. Any problem rejects the whole load, naming the line.

use std::sync::Arc;

use super::notify::Notifier;
use super::{Plugin, PluginHost, PluginTagFilter, cache};
use crate::config::yaml::Pos;
use crate::config::{self, Config, ConfigError, Diagnostic, Loaded, PluginSpec, Severity, StepId};
use crate::pipeline::Engine;
use crate::template::TemplateEngine;

use super::bindings::{NOTIFIER_EXPORT, TAG_FILTER_EXPORT};

/// The loaded plugins of a config.
#[derive(Clone, Default)]
pub struct PluginSet {
    plugins: Vec<Arc<Plugin>>,
}

/// A config and its plugins, ready to run.
pub struct Prepared {
    /// The config.
    pub loaded: Loaded,
    /// Its plugins.
    pub plugins: PluginSet,
}

fn error(pos: Pos, step: Option<StepId>, path: String, message: String) -> Diagnostic {
    Diagnostic { severity: Severity::Error, pos, step, path, message }
}

/// Loads `text` (read from `origin`) with its plugins. `previous` is the set
/// running now: plugins whose file and settings are unchanged are reused as
/// they are, so a reload only compiles what changed.
pub fn prepare(
    text: &str,
    origin: &str,
    host: &PluginHost,
    previous: Option<&PluginSet>,
) -> Result<Prepared, ConfigError> {
    let specs = config::plugin_specs(text, origin)?;
    let mut problems = Vec::new();
    let plugins = PluginSet::load(host, &specs, previous, &mut problems);
    let mut templates = TemplateEngine::default();
    plugins.register_functions(&mut templates, &mut problems);
    let loaded = match config::load_str(text, origin, &templates) {
        Ok(loaded) => loaded,
        Err(ConfigError::Invalid { origin, mut diagnostics }) => {
            diagnostics.extend(problems);
            diagnostics.sort_by_key(|d| (std::cmp::Reverse(d.severity), d.pos));
            return Err(ConfigError::Invalid { origin, diagnostics });
        }
        Err(e) => return Err(e),
    };
    problems.extend(plugins.check_uses(&loaded.config));
    if problems.is_empty() {
        return Ok(Prepared { loaded, plugins });
    }
    problems.sort_by_key(|d| d.pos);
    Err(ConfigError::Invalid { origin: origin.to_string(), diagnostics: problems })
}

impl PluginSet {
    /// Loads every declared plugin whose file exists (a missing file is
    /// reported by the config load); failures go to `problems`.
    fn load(
        host: &PluginHost,
        specs: &[PluginSpec],
        previous: Option<&PluginSet>,
        problems: &mut Vec<Diagnostic>,
    ) -> Self {
        let mut plugins = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let path = format!("plugins[{i}]");
            let bytes = match std::fs::read(&spec.path) {
                Ok(b) => b,
                Err(_) => continue,
            };
            let digest = cache::digest(&bytes);
            if let Some(p) = previous.and_then(|set| set.plugins.iter().find(|p| p.same_as(spec, &digest))) {
                plugins.push(p.clone());
                continue;
            }
            match host.load_digested(spec, &bytes, digest) {
                Ok(p) => plugins.push(p),
                Err(e) => problems.push(error(spec.pos, None, path, e.to_string())),
            }
        }
        PluginSet { plugins }
    }

    /// A plugin by name.
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.iter().find(|p| p.name() == name)
    }

    /// Adds every template plugin's functions to `engine`; a name clash is a problem.
    fn register_functions(&self, engine: &mut TemplateEngine, problems: &mut Vec<Diagnostic>) {
        for p in self.plugins.iter().filter(|p| p.is_template()) {
            if let Err(e) = engine.add_provider(Arc::new(super::PluginFunctions(p.clone()))) {
                problems.push(error(p.spec().pos, None, format!("plugins[{}]", self.index_of(p)), e.to_string()));
            }
        }
    }

    fn index_of(&self, plugin: &Arc<Plugin>) -> usize {
        self.plugins.iter().position(|p| Arc::ptr_eq(p, plugin)).unwrap_or_default()
    }

    /// Every use of a plugin whose component does not export what the use needs.
    fn check_uses(&self, config: &Config) -> Vec<Diagnostic> {
        let mut problems = Vec::new();
        for step in &config.sync {
            let id = StepId { index: step.index, source: step.spec.source.clone() };
            let pos = Pos { line: step.line, col: 1 };
            let uses = step.spec.filters.iter().map(|n| (n, "filters", "tag filter", TAG_FILTER_EXPORT, true));
            let uses = uses.chain(step.spec.notify.iter().map(|n| (n, "notify", "notifier", NOTIFIER_EXPORT, false)));
            for (name, key, needed, export, filter) in uses {
                let Some(p) = self.get(name) else { continue };
                let fits = if filter { p.is_tag_filter() } else { p.is_notifier() };
                if !fits {
                    let message = p.wrong_kind(needed, export).to_string();
                    problems.push(error(pos, Some(id.clone()), format!("sync[{}].{key}", step.index), message));
                }
            }
        }
        problems
    }

    /// Gives `engine` the tag filters and notifiers; returns the notifiers so
    /// they can be flushed before the process exits. Needs a tokio runtime.
    pub fn attach(&self, engine: &mut Engine) -> Vec<Notifier> {
        let mut notifiers = Vec::new();
        for p in &self.plugins {
            if p.is_tag_filter() {
                engine.add_tag_filter(p.name(), Arc::new(PluginTagFilter(p.clone())));
            }
            if p.is_notifier() {
                let n = Notifier::start(p.clone());
                engine.add_observer(p.name(), Arc::new(n.clone()));
                notifiers.push(n);
            }
        }
        notifiers
    }

    /// True when both sets hold the very same plugins.
    pub fn same_as(&self, other: &PluginSet) -> bool {
        self.plugins.len() == other.plugins.len()
            && self.plugins.iter().zip(&other.plugins).all(|(a, b)| Arc::ptr_eq(a, b))
    }

    /// True when both sets hold the same template plugins (so compiled templates still fit).
    pub fn same_templates_as(&self, other: &PluginSet) -> bool {
        let a: Vec<_> = self.plugins.iter().filter(|p| p.is_template()).collect();
        let b: Vec<_> = other.plugins.iter().filter(|p| p.is_template()).collect();
        a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| Arc::ptr_eq(x, y))
    }
}
