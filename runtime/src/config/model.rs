//! The loaded config: defaults merged, templates expanded, everything
//! validated and compiled. This is what the rest of regsync reads.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::duration::GoDuration;
use crate::matching::{RepoFilter, RepoFilterSpec, TagFilter, TagFilterSpec};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::schedule::Schedule;
use crate::template::CompiledTemplate;

/// A whole config file.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Always 1 after loading (0 and absent mean 1).
    pub version: i64,
    /// Registry hosts and credentials, as listed (merging by name is the client's job).
    pub creds: Vec<Host>,
    /// Global settings and the defaults that were merged into each step.
    pub defaults: Defaults,
    /// The sync steps, in file order.
    pub sync: Vec<SyncStep>,
    /// WebAssembly plugins (ignored by regsync itself).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginSpec>,
}

/// One `plugins:` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginSpec {
    /// The name steps use.
    pub name: String,
    /// The component file (relative paths resolved against the config's
    /// directory); empty when it comes from `reference`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// An OCI artifact holding the component (`registry/repo:tag@sha256:…`
    /// or `ocidir://dir:tag`); empty when it comes from `path`. After a load
    /// it carries the digest the tag resolved to.
    #[serde(rename = "ref", skip_serializing_if = "String::is_empty")]
    pub reference: String,
    /// Settings the plugin reads with `host.get-config`.
    pub config: BTreeMap<String, String>,
    /// `host:port`s a notifier may POST to.
    pub allow_hosts: Vec<String>,
    /// Longest time one call may take.
    pub timeout: GoDuration,
    /// Memory limit of one instance, MiB.
    pub memory: i64,
    /// Where the entry starts in the file.
    #[serde(skip)]
    pub pos: crate::config::yaml::Pos,
}

impl PluginSpec {
    /// Where the component comes from: its file, or its OCI reference.
    pub fn source(&self) -> &str {
        if self.path.is_empty() { &self.reference } else { &self.path }
    }
}

/// A string that must never be printed or logged.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that needs it (an auth header, a TLS key).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when unset.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Shown instead of a secret.
pub const REDACTED: &str = "[redacted]";

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { REDACTED })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { REDACTED })
    }
}

/// How to talk to a registry host (`tls:`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// HTTPS with certificate verification (the default).
    #[default]
    Enabled,
    /// HTTPS without verification.
    Insecure,
    /// Plain HTTP.
    Disabled,
}

/// One `creds:` entry (HOST-2).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Host {
    /// Name used in image references (`docker.io` for Docker Hub).
    pub registry: String,
    /// DNS name and port to connect to; defaults to the registry name.
    pub hostname: String,
    /// Login user.
    pub user: String,
    /// Login password.
    pub pass: Secret,
    /// Identity or refresh token.
    pub token: Secret,
    /// Credential helper program.
    pub cred_helper: String,
    /// How long a helper's answer is reused.
    pub cred_expire: GoDuration,
    /// Name passed to the helper when it differs from the hostname.
    pub cred_host: String,
    /// TLS mode.
    pub tls: TlsMode,
    /// Extra CA certificate (PEM).
    pub regcert: String,
    /// Client certificate for mTLS (PEM).
    pub client_cert: String,
    /// Client key for mTLS (PEM).
    pub client_key: Secret,
    /// Path added before every repository on this host.
    pub path_prefix: String,
    /// Registry names used as read mirrors.
    pub mirrors: Vec<String>,
    /// Mirror priority; higher is tried first.
    pub priority: u64,
    /// Authenticate per repository instead of per host.
    pub repo_auth: bool,
    /// API options (`disableHead: "true"`).
    pub api_opts: BTreeMap<String, String>,
    /// Chunk size for chunked uploads, bytes.
    pub blob_chunk: i64,
    /// Blobs larger than this use chunked upload; -1 never.
    pub blob_max: i64,
    /// Request pacing; 0 is none.
    pub req_per_sec: f64,
    /// Concurrent requests (default 3); 0 means no limit (docs/decisions.md).
    pub req_concurrent: i64,
    /// Line of the entry in the file.
    #[serde(skip)]
    pub line: usize,
}

/// `ratelimit:` settings of a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    /// Minimum remaining pulls before a copy starts.
    pub min: i64,
    /// How long to wait before checking again (never below 5 minutes).
    pub retry: GoDuration,
}

/// One `referrerFilters:` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrerFilter {
    /// Artifact type to include; empty matches any.
    pub artifact_type: String,
    /// Annotations that must be present; an empty value only requires the key.
    pub annotations: BTreeMap<String, String>,
}

/// One hook (parsed and kept, never run, as in regsync).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hook {
    /// Hook type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Parameters.
    pub params: Vec<String>,
}

/// `hooks:` (inert).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hooks {
    /// Before a copy.
    pub pre: Option<Hook>,
    /// After a copy.
    pub post: Option<Hook>,
    /// When nothing changed.
    pub unchanged: Option<Hook>,
}

/// The step settings `defaults:` may give (DEF-1 … DEF-9). In `defaults`
/// they are the fallback; in a step, the step's own merged over them by
/// [`super::defaults::merge`], the one place those rules live.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepOptions {
    /// Server interval (`schedule` wins).
    pub interval: GoDuration,
    /// Server cron schedule.
    pub schedule: String,
    /// Backup template, expanded per image.
    pub backup: String,
    /// Rate-limit settings (retry never below 5m).
    pub ratelimit: RateLimit,
    /// Copy `sha256-<hex>.*` tags.
    pub digest_tags: bool,
    /// Copy referrers.
    pub referrers: bool,
    /// Accepted, no effect (DOC-11).
    pub referrer_slow: bool,
    /// Skip referrer and digest-tag checks when the image matches (`fastCopy` too).
    pub fast_check: bool,
    /// Re-push every manifest even when the target has it.
    pub force_recursive: bool,
    /// Copy layers that carry `urls`.
    pub include_external: bool,
    /// Referrer filters; empty takes all.
    pub referrer_filters: Vec<ReferrerFilter>,
    /// Where referrers are read from (template expanded in steps); empty is the source.
    pub referrer_source: String,
    /// Where referrers are written (template expanded in steps); empty is the target.
    pub referrer_target: String,
    /// Media types to copy.
    pub media_types: Vec<String>,
    /// Hooks (inert, as in regsync).
    pub hooks: Option<Hooks>,
    /// Notifier plugins told about the step's runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
    /// The signature policy images must satisfy before they are copied; a
    /// step's own replaces the default's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<crate::verify::VerifyPolicy>,
    /// Gate plugins that allow or deny each image about to be copied, in
    /// order; a step's own list replaces the default's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateUse>,
}

/// One gate of a step: a gate plugin, how its denials count, and settings
/// that replace the plugin's own `config` for this use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateUse {
    /// The plugin's name under `plugins:`.
    pub name: String,
    /// `enforce` (a denial stops the image) or `warn` (it is logged).
    pub mode: GateMode,
    /// Settings over the plugin's own (`host.get-config`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

/// What a gate's denial does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GateMode {
    /// The image is not copied and the run fails.
    Enforce,
    /// The image is copied and the denial logged.
    Warn,
}

/// `defaults:` after loading.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Defaults {
    /// Copy slots; 0 or less means one (docs/decisions.md).
    pub parallel: i64,
    /// What steps fall back to.
    #[serde(flatten)]
    pub options: StepOptions,
    /// Largest chunk the client accepts when a registry asks for bigger ones.
    pub blob_limit: i64,
    /// Manifest cache entries (with `cacheTime`).
    pub cache_count: i64,
    /// Manifest cache lifetime (with `cacheCount`).
    pub cache_time: GoDuration,
    /// Skip `~/.docker/config.json` and `/etc/docker/certs.d`.
    pub skip_docker_config: bool,
    /// User-Agent override.
    pub user_agent: String,
    /// What the client accepts from registries and how long it waits (ours).
    #[serde(skip_serializing_if = "Limits::is_default")]
    pub limits: Limits,
}

/// `defaults.limits`: bounds on what a registry (or layout) can make the
/// client read, wait for or walk. A registry is outside our control; these
/// keep a misbehaving one from stalling a run or growing it without end.
/// Exceeding one fails the image or step that met it, naming the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// No byte moving for this long (connecting, waiting for headers, a body
    /// either way) counts as a broken connection: retried, then the image fails.
    pub idle_timeout: GoDuration,
    /// Largest manifest read (COPY-7).
    pub manifest_bytes: u64,
    /// Largest page of a tag list, catalog or referrers listing.
    pub list_page_bytes: u64,
    /// Most tags listed for one repository (all pages together).
    pub tags: u64,
    /// Most repositories listed from one registry's catalog.
    pub repositories: u64,
    /// Levels of manifests below an image's top: children of an index, and
    /// referrers with their own children and referrers.
    pub depth: u64,
    /// Most referrers one manifest may have.
    pub referrers: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            idle_timeout: GoDuration::from_secs(30),
            manifest_bytes: 8 << 20,
            list_page_bytes: 8 << 20,
            tags: 200_000,
            repositories: 100_000,
            depth: 16,
            referrers: 1_000,
        }
    }
}

impl Limits {
    /// True when every limit has its default (the config does not print them).
    pub fn is_default(&self) -> bool {
        *self == Limits::default()
    }
}

/// `type:` of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncType {
    /// One image reference.
    Image,
    /// Every (filtered) tag of a repository.
    Repository,
    /// Every (filtered) repository of a registry.
    Registry,
}

impl SyncType {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncType::Image => "image",
            SyncType::Repository => "repository",
            SyncType::Registry => "registry",
        }
    }
}

/// The settings of one step after defaults and templates: what the YAML means.
/// Two loads of the same step compare equal, which is how reloads find changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepSpec {
    /// Source reference (template expanded).
    pub source: String,
    /// Target reference (template expanded).
    pub target: String,
    /// Step type.
    #[serde(rename = "type")]
    pub kind: SyncType,
    /// `tags:` filters.
    pub tags: TagFilterSpec,
    /// `tagSets:` filters.
    pub tag_sets: Vec<TagFilterSpec>,
    /// `repos:` filters.
    pub repos: RepoFilterSpec,
    /// Single platform to resolve an index to.
    pub platform: String,
    /// Platforms to keep from an index.
    pub platforms: Vec<String>,
    /// The settings `defaults:` may give, merged.
    #[serde(flatten)]
    pub options: StepOptions,
    /// Tag-filter plugins, run after the built-in filters in this order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
}

/// Parts of a step compiled at load time, so a run never re-parses them.
#[derive(Debug, Clone, Default)]
pub struct CompiledStep {
    /// `tagSets` then `tags`, OR-ed.
    pub tag_filter: TagFilter,
    /// `repos` filters.
    pub repo_filter: RepoFilter,
    /// When the server runs the step; `None` when it has neither schedule nor interval.
    pub schedule: Option<Schedule>,
    /// The parsed backup template.
    pub backup: Option<CompiledTemplate>,
    /// The parsed source reference (image and repository types).
    pub source_ref: Option<Reference>,
    /// The parsed target reference (image and repository types).
    pub target_ref: Option<Reference>,
    /// `platform`, parsed.
    pub platform: Option<Platform>,
    /// `platforms`, parsed; `None` entries keep children without a platform.
    pub platforms: Option<Vec<Option<Platform>>>,
    /// `referrerSource`, parsed.
    pub referrer_source: Option<Reference>,
    /// `referrerTarget`, parsed.
    pub referrer_target: Option<Reference>,
}

impl fmt::Debug for CompiledTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CompiledTemplate")
    }
}

/// One `sync:` entry.
#[derive(Debug, Clone, Serialize)]
pub struct SyncStep {
    /// Zero-based position in `sync:`.
    #[serde(skip)]
    pub index: usize,
    /// Line of the entry in the file.
    #[serde(skip)]
    pub line: usize,
    /// What the YAML says.
    #[serde(flatten)]
    pub spec: StepSpec,
    /// What was compiled from it.
    #[serde(skip)]
    pub compiled: CompiledStep,
}

/// regsync's default `mediaTypes` (DEF-5).
pub const DEFAULT_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
];

/// Manifest media types the client knows how to copy.
pub const KNOWN_MEDIA_TYPES: [&str; 7] = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.oci.artifact.manifest.v1+json",
];
