//! The plugin author's harness behind `regsync plugin inspect` and
//! `regsync plugin call`: a component from a file or an OCI reference,
//! described, or called once under the same sandbox and limits as in a sync.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use serde::Deserialize;

use super::{EventKind, Plugin, PluginHost, PluginKind, SUPPORTED_WIT, SyncEvent, oci};
use crate::config::{Config, PluginSpec};
use crate::duration::GoDuration;
use crate::pipeline::gate::{Decision, ImageFacts, ReferrerReader};

/// Where a component comes from and how it is sandboxed for one call.
#[derive(Debug, Clone)]
pub struct Target {
    /// A `.wasm` file, or an OCI reference (`registry/repo:tag[@digest]`, `ocidir://…`).
    pub source: String,
    /// Settings the plugin reads with `host.get-config`.
    pub settings: BTreeMap<String, String>,
    /// Hosts a notifier may POST to.
    pub allow_hosts: Vec<String>,
    /// Deadline of the call.
    pub timeout: GoDuration,
    /// Memory limit, MiB.
    pub memory: i64,
}

/// One call, as `regsync plugin call` names it.
#[derive(Debug, Clone)]
pub enum Call {
    /// `filter-tags`: which of `tags` of `repo` are kept.
    FilterTags {
        /// Repository the tags are from.
        repo: String,
        /// Tags offered.
        tags: Vec<String>,
    },
    /// A template function with its arguments.
    Function {
        /// Function name.
        name: String,
        /// Arguments.
        args: Vec<String>,
    },
    /// `notify` with an event given as JSON.
    Notify {
        /// The event (`{"kind": "image-copied", "source": …}`).
        event_json: String,
    },
    /// `decide` on an image's facts given as JSON.
    Gate {
        /// The facts (`{"source": …, "created": …}`), as [`ImageFacts`] serialises them.
        facts_json: String,
        /// What `read-referrer` answers: by `digest` (its manifest) or
        /// `digest/N` (its layer N).
        referrers: BTreeMap<String, Vec<u8>>,
    },
}

/// `read-referrer` in the harness: files given on the command line.
struct Files(BTreeMap<String, Vec<u8>>);

impl ReferrerReader for Files {
    fn read(&self, digest: &str, layer: Option<u32>, max_bytes: u64) -> Result<Vec<u8>, String> {
        let key = match layer {
            Some(n) => format!("{digest}/{n}"),
            None => digest.to_string(),
        };
        let bytes = self.0.get(&key).ok_or_else(|| format!("{key} was not given (--referrer {key}=FILE)"))?;
        if bytes.len() as u64 > max_bytes.min(crate::pipeline::gate::READ_CAP) {
            return Err(format!("{key} is {} bytes, more than {max_bytes}", bytes.len()));
        }
        Ok(bytes.clone())
    }
}

/// A harness failure, in words for the terminal.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HarnessError(pub String);

fn fail(e: impl std::fmt::Display) -> HarnessError {
    HarnessError(e.to_string())
}

/// The component's bytes: the file, or the artifact pulled with `registry`'s settings.
fn read(host: &PluginHost, source: &str, registry: &Config) -> Result<Vec<u8>, HarnessError> {
    let path = std::path::Path::new(source);
    if path.is_file() {
        return std::fs::read(path).map_err(|e| fail(format!("{source}: {e}")));
    }
    if source.ends_with(".wasm") {
        return Err(fail(format!("{source}: no such file")));
    }
    Ok(oci::pull_blocking(registry, source, host.cache_dir()).map_err(fail)?.bytes)
}

/// What `regsync plugin inspect` prints.
pub fn inspect(host: &PluginHost, source: &str, registry: &Config) -> Result<String, HarnessError> {
    let bytes = read(host, source, registry)?;
    let info = host.describe(&bytes).map_err(|e| fail(format!("{source}: {e}")))?;
    let mut out = String::new();
    let digest = format!("sha256:{}", crate::client::hex(&super::cache::digest(&bytes)));
    let _ = writeln!(out, "component: {source} ({} bytes, {digest})", bytes.len());
    let world = info.world();
    let _ = writeln!(out, "world:     {}", world.as_deref().unwrap_or("none (exports no regsync plugin interface)"));
    let versions: Vec<&str> = info
        .exports
        .iter()
        .chain(&info.imports)
        .filter_map(|n| n.strip_prefix("regsync:plugin/")?.split_once('@').map(|(_, v)| v))
        .collect();
    if let Some(v) = versions.first() {
        let supported = SUPPORTED_WIT.contains(v);
        let _ = writeln!(
            out,
            "wit:       regsync:plugin@{v} ({})",
            if supported {
                "supported".to_string()
            } else {
                format!("not supported; this regsync supports {}", SUPPORTED_WIT.join(", "))
            }
        );
    }
    let kinds = info.kinds();
    let labels: Vec<&str> = kinds.iter().map(|k| k.info().label).collect();
    let _ = writeln!(out, "kinds:     {}", if labels.is_empty() { "none".to_string() } else { labels.join(", ") });
    let _ = writeln!(out, "exports:   {}", info.exports.join(", "));
    let _ = writeln!(out, "imports:   {}", info.imports.join(", "));
    if kinds.contains(&PluginKind::Template) && versions.iter().all(|v| SUPPORTED_WIT.contains(v)) {
        let plugin = load(host, &Target::file(source), bytes)?;
        let _ = writeln!(out, "functions: {}", plugin.functions().join(", "));
    }
    Ok(out)
}

impl Target {
    /// A component with default limits (1 s, 64 MiB) and no settings.
    pub fn file(source: &str) -> Self {
        Target {
            source: source.to_string(),
            settings: BTreeMap::new(),
            allow_hosts: Vec::new(),
            timeout: GoDuration::from_secs(1),
            memory: 64,
        }
    }
}

fn load(host: &PluginHost, target: &Target, bytes: Vec<u8>) -> Result<Arc<Plugin>, HarnessError> {
    let name = std::path::Path::new(&target.source)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into());
    let spec = PluginSpec {
        name,
        path: target.source.clone(),
        reference: String::new(),
        config: target.settings.clone(),
        allow_hosts: target.allow_hosts.clone(),
        timeout: target.timeout,
        memory: target.memory,
        pos: Default::default(),
    };
    host.load_bytes(&spec, &bytes).map_err(fail)
}

/// The event JSON of `regsync plugin call … notify`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EventJson {
    kind: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    repo: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    duration_ms: u64,
    #[serde(default)]
    details: BTreeMap<String, String>,
}

fn event_kind(name: &str) -> Option<EventKind> {
    [
        EventKind::SyncStarted,
        EventKind::ImageCopied,
        EventKind::ImageSkipped,
        EventKind::ImageFailed,
        EventKind::ImageRefused,
        EventKind::ImageDenied,
        EventKind::SyncFinished,
        EventKind::SyncFailed,
    ]
    .into_iter()
    .find(|k| k.as_str() == name)
}

/// Runs one call and returns what to print: the kept tags one per line, the
/// function's result, `ok` for a delivered event, or a gate's `allow` or
/// `deny: REASON`.
pub fn call(host: &PluginHost, target: &Target, call: &Call, registry: &Config) -> Result<String, HarnessError> {
    let bytes = read(host, &target.source, registry)?;
    let plugin = load(host, target, bytes)?;
    match call {
        Call::FilterTags { repo, tags } => {
            if !plugin.is(PluginKind::TagFilter) {
                return Err(fail(plugin.wrong_kind(PluginKind::TagFilter)));
            }
            let kept = plugin.filter_tags(repo, tags).map_err(fail)?;
            Ok(kept.iter().map(|t| format!("{t}\n")).collect())
        }
        Call::Function { name, args } => {
            if !plugin.is(PluginKind::Template) {
                return Err(fail(plugin.wrong_kind(PluginKind::Template)));
            }
            if !plugin.functions().contains(name) {
                return Err(fail(format!("no function {name}; it has {}", plugin.functions().join(", "))));
            }
            Ok(format!("{}\n", plugin.call_function(name, args).map_err(fail)?))
        }
        Call::Notify { event_json } => {
            if !plugin.is(PluginKind::Notifier) {
                return Err(fail(plugin.wrong_kind(PluginKind::Notifier)));
            }
            let e: EventJson = serde_json::from_str(event_json).map_err(|e| fail(format!("event JSON: {e}")))?;
            let kind = event_kind(&e.kind).ok_or_else(|| fail(format!("event JSON: unknown kind {:?}", e.kind)))?;
            let event = SyncEvent {
                kind,
                source: e.source,
                target: e.target,
                repo: e.repo,
                tags: e.tags,
                digest: e.digest,
                error: e.error,
                duration_ms: e.duration_ms,
                details: e.details.into_iter().collect(),
            };
            plugin.notify(&event).map_err(fail)?;
            Ok("ok\n".into())
        }
        Call::Gate { facts_json, referrers } => {
            if !plugin.is(PluginKind::Gate) {
                return Err(fail(plugin.wrong_kind(PluginKind::Gate)));
            }
            let facts: ImageFacts = serde_json::from_str(facts_json).map_err(|e| fail(format!("facts JSON: {e}")))?;
            let reader = Arc::new(Files(referrers.clone()));
            match plugin.decide(&facts, &BTreeMap::new(), reader).map_err(fail)? {
                Decision::Allow => Ok("allow\n".into()),
                Decision::Deny(reason) => Ok(format!("deny: {reason}\n")),
            }
        }
    }
}
