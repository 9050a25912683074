//! WebAssembly component plugins (wasmtime): tag filters, template
//! functions, notifiers and gates, loaded from the config's `plugins:`.
//! Components of every released WIT version load: each use is bound through
//! the bindings of the version the component was built against.
//!
//! One engine per process, with epoch interruption driven by a ticker
//! thread; one `InstancePre` per plugin and world; a fresh store per call, so
//! a plugin keeps no state between calls and a trapped instance is simply
//! dropped. Compiled components are cached on disk by content and engine
//! settings. Every failure names the plugin.

mod adapters;
mod bindings;
mod cache;
mod gate;
pub mod harness;
pub(crate) mod kinds;
pub(crate) mod notify;
pub mod oci;
mod sandbox;
mod set;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, Store};

pub use self::adapters::{PluginFunctions, PluginGate, PluginTagFilter};
pub use self::bindings::SUPPORTED_WIT;
use self::bindings::{Versioned, v0_1_0, v0_2_0};
pub use self::kinds::{KINDS, PluginKind};
pub use self::notify::{EventKind, SyncEvent};
pub use self::sandbox::{PluginState, Sandbox};
pub use self::set::PluginSet;
use crate::config::PluginSpec;

/// How often the deadline clock ticks.
const TICK: Duration = Duration::from_millis(10);

/// A plugin failure; the text names the plugin.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    /// The file could not be read or compiled.
    #[error("plugin \"{plugin}\": cannot load {path}: {reason}")]
    Load {
        /// Plugin name.
        plugin: String,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The component does not export what its use needs.
    #[error("plugin \"{plugin}\" is used as a {needed} but does not export {export}")]
    WrongKind {
        /// Plugin name.
        plugin: String,
        /// What the config uses it as.
        needed: &'static str,
        /// The missing export.
        export: &'static str,
    },
    /// The call ran past its deadline.
    #[error("plugin \"{plugin}\" timed out after {timeout:?} in {call}")]
    Timeout {
        /// Plugin name.
        plugin: String,
        /// The call.
        call: &'static str,
        /// The limit.
        timeout: Duration,
    },
    /// The call trapped or hit a limit.
    #[error("plugin \"{plugin}\" failed in {call}: {reason}")]
    Trap {
        /// Plugin name.
        plugin: String,
        /// The call.
        call: &'static str,
        /// The trap or limit.
        reason: String,
    },
    /// The plugin returned an error.
    #[error("plugin \"{plugin}\" returned an error from {call}: {message}")]
    Returned {
        /// Plugin name.
        plugin: String,
        /// The call.
        call: &'static str,
        /// Its message.
        message: String,
    },
}

/// The shared engine and compile cache. The engine (and its deadline clock
/// thread) is created on first use, so configs without plugins pay nothing.
#[derive(Clone, Default)]
pub struct PluginHost {
    engine: Arc<OnceLock<Engine>>,
    cache_dir: Option<PathBuf>,
}

/// Where compiled components are kept: `$REGSYNC_PLUGIN_CACHE`, else
/// `$XDG_CACHE_HOME/regsync/plugins`, else `~/.cache/regsync/plugins`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("REGSYNC_PLUGIN_CACHE") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("regsync").join("plugins"))
}

fn new_engine() -> Result<Engine, String> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    let engine = Engine::new(&config).map_err(|e| format!("{e:#}"))?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("regsync-plugin-clock".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(engine)
}

impl PluginHost {
    /// A host that caches compiled components in `cache_dir` (none: compile every time).
    pub fn new(cache_dir: Option<PathBuf>) -> Self {
        PluginHost { engine: Arc::default(), cache_dir }
    }

    /// Where compiled components (and pulled artifacts) are kept, if anywhere.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.cache_dir.as_deref()
    }

    fn engine(&self) -> Result<&Engine, String> {
        if let Some(e) = self.engine.get() {
            return Ok(e);
        }
        let engine = new_engine()?;
        Ok(self.engine.get_or_init(|| engine))
    }

    /// Reads, compiles (or fetches from the cache) and links a plugin.
    pub fn load(&self, spec: &PluginSpec) -> Result<Arc<Plugin>, PluginError> {
        let bytes = std::fs::read(&spec.path).map_err(|e| PluginError::Load {
            plugin: spec.name.clone(),
            path: spec.source().to_string(),
            reason: e.to_string(),
        })?;
        self.load_bytes(spec, &bytes)
    }

    /// Compiles (or fetches from the cache) and links a component already read.
    pub fn load_bytes(&self, spec: &PluginSpec, bytes: &[u8]) -> Result<Arc<Plugin>, PluginError> {
        self.load_digested(spec, bytes, cache::digest(bytes))
    }

    /// What a component imports and exports (compiling it, or taking it from
    /// the cache), without linking or running it.
    pub fn describe(&self, bytes: &[u8]) -> Result<ComponentInfo, String> {
        let engine = self.engine()?;
        let (component, _) = cache::component(engine, self.cache_dir.as_deref(), bytes, &cache::digest(bytes))?;
        let ty = component.component_type();
        Ok(ComponentInfo {
            exports: ty.exports(engine).map(|(n, _)| n.to_string()).collect(),
            imports: ty.imports(engine).map(|(n, _)| n.to_string()).collect(),
        })
    }

    /// [`Self::load_bytes`] when the caller already hashed the bytes.
    pub(crate) fn load_digested(
        &self,
        spec: &PluginSpec,
        bytes: &[u8],
        digest: [u8; 32],
    ) -> Result<Arc<Plugin>, PluginError> {
        let started = Instant::now();
        // wasmparser's messages span lines; one line keeps logs greppable.
        let fail = |reason: String| PluginError::Load {
            plugin: spec.name.clone(),
            path: spec.source().to_string(),
            reason: reason.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        let engine = self.engine().map_err(fail)?;
        let (component, cached) = cache::component(engine, self.cache_dir.as_deref(), bytes, &digest).map_err(fail)?;
        let exports: Vec<String> =
            component.component_type().exports(engine).map(|(name, _)| name.to_string()).collect();
        let imports: Vec<String> =
            component.component_type().imports(engine).map(|(name, _)| name.to_string()).collect();
        if let Some(wanted) = unsupported_wit(exports.iter().chain(&imports)) {
            let supported: Vec<String> = SUPPORTED_WIT.iter().map(|v| format!("regsync:plugin@{v}")).collect();
            return Err(fail(format!(
                "it was built for regsync:plugin@{wanted}, and this regsync supports {}",
                supported.join(", ")
            )));
        }
        let linker = linker(engine).map_err(|e| fail(format!("{e:#}")))?;
        let pre = linker.instantiate_pre(&component).map_err(|e| fail(format!("{e:#}")))?;
        let sandbox = Arc::new(Sandbox {
            name: spec.name.clone(),
            config: spec.config.clone(),
            allow_hosts: spec.allow_hosts.clone(),
            memory: (spec.memory.max(1) as usize) << 20,
            timeout: spec.timeout.to_std(),
        });
        // The version of each kind's export decides which bindings call it.
        let version_of = |kind: PluginKind| {
            exports
                .iter()
                .find(|e| PluginKind::of_export(e) == Some(kind))
                .and_then(|e| e.split_once('@'))
                .map(|(_, v)| v)
        };
        let wrap = |e: wasmtime::Error| fail(format!("{e:#}"));
        let mut plugin = Plugin {
            sandbox,
            spec: spec.clone(),
            digest,
            engine: engine.clone(),
            tag_filter: match version_of(PluginKind::TagFilter) {
                Some(v0_1_0::VERSION) => {
                    Some(Versioned::V0_1(v0_1_0::tag_filter::TagFilterPluginPre::new(pre.clone()).map_err(wrap)?))
                }
                Some(_) => {
                    Some(Versioned::V0_2(v0_2_0::tag_filter::TagFilterPluginPre::new(pre.clone()).map_err(wrap)?))
                }
                None => None,
            },
            template: match version_of(PluginKind::Template) {
                Some(v0_1_0::VERSION) => {
                    Some(Versioned::V0_1(v0_1_0::template::TemplatePluginPre::new(pre.clone()).map_err(wrap)?))
                }
                Some(_) => Some(Versioned::V0_2(v0_2_0::template::TemplatePluginPre::new(pre.clone()).map_err(wrap)?)),
                None => None,
            },
            notifier: match version_of(PluginKind::Notifier) {
                Some(v0_1_0::VERSION) => {
                    Some(Versioned::V0_1(v0_1_0::notifier::NotifierPluginPre::new(pre.clone()).map_err(wrap)?))
                }
                Some(_) => Some(Versioned::V0_2(v0_2_0::notifier::NotifierPluginPre::new(pre.clone()).map_err(wrap)?)),
                None => None,
            },
            gate: match version_of(PluginKind::Gate) {
                Some(_) => Some(v0_2_0::gate::GatePluginPre::new(pre).map_err(wrap)?),
                None => None,
            },
            functions: Vec::new(),
            wit: exports
                .iter()
                .chain(&imports)
                .find_map(|n| n.strip_prefix("regsync:plugin/")?.split_once('@').map(|(_, v)| v.to_string()))
                .unwrap_or_default(),
        };
        if plugin.template.is_some() {
            plugin.functions = plugin.list_functions()?;
        }
        tracing::debug!(
            plugin = spec.name,
            cached,
            ms = started.elapsed().as_millis() as u64,
            tag_filter = plugin.tag_filter.is_some(),
            template = plugin.template.is_some(),
            notifier = plugin.notifier.is_some(),
            gate = plugin.gate.is_some(),
            "Plugin loaded"
        );
        Ok(Arc::new(plugin))
    }
}

/// A linker with every import of every supported WIT version: WASI, `host`,
/// `outbound-http` and `image-reader`. Extra imports cost nothing, and one
/// linker serves components of any version.
fn linker(engine: &Engine) -> wasmtime::Result<Linker<PluginState>> {
    use wasmtime::component::HasSelf;
    let mut linker: Linker<PluginState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    v0_1_0::host::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;
    v0_1_0::notifier::regsync::plugin::outbound_http::add_to_linker::<PluginState, HasSelf<PluginState>>(
        &mut linker,
        |s| s,
    )?;
    v0_2_0::host::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;
    v0_2_0::notifier::regsync::plugin::outbound_http::add_to_linker::<PluginState, HasSelf<PluginState>>(
        &mut linker,
        |s| s,
    )?;
    v0_2_0::image_reader::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// A component's interface names, as `regsync plugin push` records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    /// Exported interfaces (`regsync:plugin/tag-filter@0.1.0`).
    pub exports: Vec<String>,
    /// Imported interfaces (`regsync:plugin/host@0.1.0`, `wasi:…`).
    pub imports: Vec<String>,
}

impl ComponentInfo {
    /// The regsync world it targets (`regsync:plugin/tag-filter-plugin@0.1.0`), if any.
    pub fn world(&self) -> Option<String> {
        self.exports.iter().find_map(|e| {
            let kind = PluginKind::of_export(e)?;
            let (_, version) = e.split_once('@')?;
            Some(format!("regsync:plugin/{}@{version}", kind.info().world))
        })
    }

    /// The kinds it exports, in table order.
    pub fn kinds(&self) -> Vec<PluginKind> {
        KINDS
            .iter()
            .map(|k| k.kind)
            .filter(|k| self.exports.iter().any(|e| PluginKind::of_export(e) == Some(*k)))
            .collect()
    }
}

/// The first `regsync:plugin` version among a component's import and export
/// names (`regsync:plugin/tag-filter@0.2.0`) that this host does not support.
fn unsupported_wit<'a>(names: impl Iterator<Item = &'a String>) -> Option<String> {
    names
        .filter_map(|n| n.strip_prefix("regsync:plugin/"))
        .filter_map(|n| n.split_once('@').map(|(_, v)| v))
        .find(|v| !SUPPORTED_WIT.contains(v))
        .map(str::to_string)
}

/// A loaded plugin, ready to be called.
pub struct Plugin {
    sandbox: Arc<Sandbox>,
    /// What it was loaded from: a reload reuses the plugin when both are unchanged.
    spec: PluginSpec,
    digest: [u8; 32],
    engine: Engine,
    tag_filter: Option<
        Versioned<
            v0_1_0::tag_filter::TagFilterPluginPre<PluginState>,
            v0_2_0::tag_filter::TagFilterPluginPre<PluginState>,
        >,
    >,
    template: Option<
        Versioned<v0_1_0::template::TemplatePluginPre<PluginState>, v0_2_0::template::TemplatePluginPre<PluginState>>,
    >,
    notifier: Option<
        Versioned<v0_1_0::notifier::NotifierPluginPre<PluginState>, v0_2_0::notifier::NotifierPluginPre<PluginState>>,
    >,
    gate: Option<v0_2_0::gate::GatePluginPre<PluginState>>,
    functions: Vec<String>,
    /// The `regsync:plugin` version it was built for.
    wit: String,
}

/// Instantiates `$pre` (either version) in `$store` and runs `$body` with
/// the instance as `$i`: the generated APIs of both versions have the same
/// names, so one body serves both.
macro_rules! with_instance {
    ($self:ident, $pre:expr, $store:ident, $call:literal, |$i:ident| $body:expr) => {
        match $pre {
            Versioned::V0_1(pre) => {
                let $i = pre.instantiate(&mut $store).map_err(|e| $self.trap($call, e))?;
                $body
            }
            Versioned::V0_2(pre) => {
                let $i = pre.instantiate(&mut $store).map_err(|e| $self.trap($call, e))?;
                $body
            }
        }
    };
}

impl Plugin {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.sandbox.name
    }

    /// True when it was loaded from this declaration and these bytes (by sha256).
    pub fn same_as(&self, spec: &PluginSpec, digest: &[u8; 32]) -> bool {
        self.spec == *spec && self.digest == *digest
    }

    /// The declaration it was loaded from.
    pub fn spec(&self) -> &PluginSpec {
        &self.spec
    }

    /// True when it exports the interface of `kind`.
    pub fn is(&self, kind: PluginKind) -> bool {
        match kind {
            PluginKind::TagFilter => self.tag_filter.is_some(),
            PluginKind::Template => self.template.is_some(),
            PluginKind::Notifier => self.notifier.is_some(),
            PluginKind::Gate => self.gate.is_some(),
        }
    }

    /// True when it exports `tag-filter`.
    pub fn is_tag_filter(&self) -> bool {
        self.is(PluginKind::TagFilter)
    }

    /// True when it exports `template-functions`.
    pub fn is_template(&self) -> bool {
        self.is(PluginKind::Template)
    }

    /// True when it exports `notifier`.
    pub fn is_notifier(&self) -> bool {
        self.is(PluginKind::Notifier)
    }

    /// The template functions it offers.
    pub fn functions(&self) -> &[String] {
        &self.functions
    }

    /// The kinds it exports, in table order.
    pub fn kinds(&self) -> Vec<PluginKind> {
        KINDS.iter().map(|k| k.kind).filter(|k| self.is(*k)).collect()
    }

    /// The `regsync:plugin` version it was built for (`0.2.0`).
    pub fn wit(&self) -> &str {
        &self.wit
    }

    /// `sha256:` of its component.
    pub fn digest(&self) -> String {
        format!("sha256:{}", crate::client::hex(&self.digest))
    }

    /// True when it exports `gate`.
    pub fn is_gate(&self) -> bool {
        self.is(PluginKind::Gate)
    }

    fn store(&self) -> Store<PluginState> {
        self.store_with(PluginState::new(self.sandbox.clone()))
    }

    fn store_with(&self, state: PluginState) -> Store<PluginState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let ticks = (self.sandbox.timeout.as_millis() / TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store
    }

    fn trap(&self, call: &'static str, e: wasmtime::Error) -> PluginError {
        crate::metrics::count_plugin_failure(&self.sandbox.name);
        if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
            return PluginError::Timeout { plugin: self.sandbox.name.clone(), call, timeout: self.sandbox.timeout };
        }
        // The root cause is the trap or the limit; the rest is a wasm backtrace.
        let reason = match e.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => trap.to_string(),
            None => e.root_cause().to_string(),
        };
        PluginError::Trap { plugin: self.sandbox.name.clone(), call, reason }
    }

    fn returned(&self, call: &'static str, message: String) -> PluginError {
        crate::metrics::count_plugin_failure(&self.sandbox.name);
        PluginError::Returned { plugin: self.sandbox.name.clone(), call, message }
    }

    /// The error for a use as `kind` of a plugin that does not export it.
    pub(crate) fn wrong_kind(&self, kind: PluginKind) -> PluginError {
        let info = kind.info();
        PluginError::WrongKind { plugin: self.sandbox.name.clone(), needed: info.noun, export: info.export }
    }

    /// `tag-filter.filter-tags`. Blocks: call it off the async threads.
    pub fn filter_tags(&self, repo: &str, tags: &[String]) -> Result<Vec<String>, PluginError> {
        let pre = self.tag_filter.as_ref().ok_or_else(|| self.wrong_kind(PluginKind::TagFilter))?;
        let mut store = self.store();
        with_instance!(self, pre, store, "filter-tags", |instance| instance
            .regsync_plugin_tag_filter()
            .call_filter_tags(&mut store, repo, tags)
            .map_err(|e| self.trap("filter-tags", e))?
            .map_err(|m| self.returned("filter-tags", m)))
    }

    fn list_functions(&self) -> Result<Vec<String>, PluginError> {
        let pre = self.template.as_ref().ok_or_else(|| self.wrong_kind(PluginKind::Template))?;
        let mut store = self.store();
        with_instance!(self, pre, store, "list-functions", |instance| instance
            .regsync_plugin_template_functions()
            .call_list_functions(&mut store)
            .map_err(|e| self.trap("list-functions", e)))
    }

    /// `template-functions.call`.
    pub fn call_function(&self, name: &str, args: &[String]) -> Result<String, PluginError> {
        let pre = self.template.as_ref().ok_or_else(|| self.wrong_kind(PluginKind::Template))?;
        let mut store = self.store();
        with_instance!(self, pre, store, "call", |instance| instance
            .regsync_plugin_template_functions()
            .call_call(&mut store, name, args)
            .map_err(|e| self.trap("call", e))?
            .map_err(|m| self.returned("call", m)))
    }

    /// `notifier.notify`. Blocks: call it off the async threads.
    pub fn notify(&self, event: &SyncEvent) -> Result<(), PluginError> {
        let pre = self.notifier.as_ref().ok_or_else(|| self.wrong_kind(PluginKind::Notifier))?;
        let mut store = self.store();
        with_instance!(self, pre, store, "notify", |instance| instance
            .regsync_plugin_notifier()
            .call_notify(&mut store, &event.into())
            .map_err(|e| self.trap("notify", e))?
            .map_err(|m| self.returned("notify", m)))
    }

    /// `gate.decide`, with `settings` over the plugin's own and `reader` for
    /// the image's referrers. Blocks: call it off the async threads.
    pub fn decide(
        &self,
        facts: &crate::pipeline::gate::ImageFacts,
        settings: &std::collections::BTreeMap<String, String>,
        reader: Arc<dyn crate::pipeline::gate::ReferrerReader>,
    ) -> Result<crate::pipeline::gate::Decision, PluginError> {
        use v0_2_0::gate::exports::regsync::plugin::gate::Decision;
        let pre = self.gate.as_ref().ok_or_else(|| self.wrong_kind(PluginKind::Gate))?;
        let state = PluginState::new(self.sandbox.clone()).for_gate(settings.clone(), reader);
        let mut store = self.store_with(state);
        let instance = pre.instantiate(&mut store).map_err(|e| self.trap("decide", e))?;
        let decision = instance
            .regsync_plugin_gate()
            .call_decide(&mut store, &gate::to_wit(facts))
            .map_err(|e| self.trap("decide", e))?;
        Ok(match decision {
            Decision::Allow => crate::pipeline::gate::Decision::Allow,
            Decision::Deny(reason) => crate::pipeline::gate::Decision::Deny(reason),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::unsupported_wit;

    #[test]
    fn components_of_other_wit_versions_are_named() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ours = names(&["regsync:plugin/host@0.1.0", "wasi:io/streams@0.2.6", "regsync:plugin/tag-filter@0.1.0"]);
        assert_eq!(unsupported_wit(ours.iter()), None);
        let future = names(&["wasi:cli/environment@0.2.0", "regsync:plugin/host@0.9.0"]);
        assert_eq!(unsupported_wit(future.iter()).as_deref(), Some("0.9.0"));
        let unversioned = names(&["regsync:plugin/host"]);
        assert_eq!(unsupported_wit(unversioned.iter()), None);
    }
}
