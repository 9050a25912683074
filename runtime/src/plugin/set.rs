//! The plugins of one config: loading them (reusing unchanged ones on
//! reload), adding their template functions, checking that every use
//! matches what the plugin exports, and attaching them to a pipeline.

use std::sync::Arc;

use super::notify::Notifier;
use super::{Plugin, PluginGate, PluginHost, PluginTagFilter, cache};
use crate::config::yaml::Pos;
use crate::config::{Config, Diagnostic, PluginSpec, Severity, StepId};
use crate::pipeline::Pipeline;
use crate::template::Templates;

use super::kinds::{KINDS, PluginKind};

/// The loaded plugins of a config.
#[derive(Clone, Default)]
pub struct PluginSet {
    plugins: Vec<Arc<Plugin>>,
}

fn error(pos: Pos, step: Option<StepId>, path: String, message: String) -> Diagnostic {
    Diagnostic { severity: Severity::Error, pos, step, path, message }
}

impl PluginSet {
    /// Loads every declared plugin whose component is at hand: a file that
    /// exists (a missing one is reported by the config load) or the bytes
    /// pulled for its `ref` (`pulled[i]`; a failed pull was reported).
    /// Failures go to `problems`.
    pub fn load(
        host: &PluginHost,
        specs: &[PluginSpec],
        pulled: &[Option<Vec<u8>>],
        previous: Option<&PluginSet>,
        problems: &mut Vec<Diagnostic>,
    ) -> Self {
        let mut plugins = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let path = format!("plugins[{i}]");
            let bytes = if spec.path.is_empty() {
                match pulled.get(i).cloned().flatten() {
                    Some(b) => b,
                    None => continue,
                }
            } else {
                match std::fs::read(&spec.path) {
                    Ok(b) => b,
                    Err(_) => continue,
                }
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

    /// Every loaded plugin, in `plugins:` order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.iter()
    }

    /// A plugin by name.
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.iter().find(|p| p.name() == name)
    }

    /// Adds every template plugin's functions to `engine`; a name clash is a problem.
    pub fn register_functions(&self, templates: &mut Templates, problems: &mut Vec<Diagnostic>) {
        for p in self.plugins.iter().filter(|p| p.is_template()) {
            if let Err(e) = templates.add_provider(Arc::new(super::PluginFunctions(p.clone()))) {
                problems.push(error(p.spec().pos, None, format!("plugins[{}]", self.index_of(p)), e.to_string()));
            }
        }
    }

    fn index_of(&self, plugin: &Arc<Plugin>) -> usize {
        self.plugins.iter().position(|p| Arc::ptr_eq(p, plugin)).unwrap_or_default()
    }

    /// Every use of a plugin whose component does not export what the use needs.
    pub fn check_uses(&self, config: &Config) -> Vec<Diagnostic> {
        let mut problems = Vec::new();
        for step in &config.sync {
            let id = StepId { index: step.index, source: step.spec.source.clone() };
            let pos = Pos { line: step.line, col: 1 };
            for info in &KINDS {
                let Some(key) = info.config_key else { continue };
                let names: Vec<&str> = match info.kind {
                    PluginKind::TagFilter => step.spec.filters.iter().map(String::as_str).collect(),
                    PluginKind::Notifier => step.spec.options.notify.iter().map(String::as_str).collect(),
                    PluginKind::Gate => step.spec.options.gates.iter().map(|g| g.name.as_str()).collect(),
                    PluginKind::Template => continue,
                };
                for name in names {
                    let Some(p) = self.get(name) else { continue };
                    if !p.is(info.kind) {
                        let message = p.wrong_kind(info.kind).to_string();
                        problems.push(error(pos, Some(id.clone()), format!("sync[{}].{key}", step.index), message));
                    }
                }
            }
        }
        problems
    }

    /// Gives `engine` the tag filters, gates and notifiers; returns the notifiers so
    /// they can be flushed before the process exits. Needs a tokio runtime.
    pub fn attach(&self, pipeline: &mut Pipeline) -> Vec<Notifier> {
        let mut notifiers = Vec::new();
        for p in &self.plugins {
            if p.is_tag_filter() {
                pipeline.add_tag_filter(p.name(), Arc::new(PluginTagFilter(p.clone())));
            }
            if p.is_gate() {
                pipeline.add_gate(p.name(), Arc::new(PluginGate(p.clone())));
            }
            if p.is_notifier() {
                let n = Notifier::start(p.clone());
                pipeline.add_observer(p.name(), Arc::new(n.clone()));
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
