//! The config as written: every field optional and carrying its position,
//! before defaults are merged or anything is validated.

use std::collections::BTreeMap;

use super::model::{Hooks, ReferrerFilter};
use super::yaml::Pos;
use crate::duration::GoDuration;

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Its position.
    pub pos: Pos,
}

/// Shorthand for an optional positioned value.
pub type Field<T> = Option<Spanned<T>>;

/// Top level.
#[derive(Debug, Default, Clone)]
pub struct RawConfig {
    pub version: Field<i64>,
    pub creds: Vec<RawHost>,
    pub defaults: RawDefaults,
    pub sync: Vec<RawStep>,
    pub plugins: Vec<RawPlugin>,
}

/// One `plugins:` entry.
#[derive(Debug, Default, Clone)]
pub struct RawPlugin {
    pub pos: Pos,
    pub name: Field<String>,
    pub path: Field<String>,
    pub reference: Field<String>,
    pub config: BTreeMap<String, String>,
    pub allow_hosts: Vec<Spanned<String>>,
    pub timeout: Field<GoDuration>,
    pub memory: Field<i64>,
}

/// One `creds:` entry.
#[derive(Debug, Default, Clone)]
pub struct RawHost {
    pub pos: Pos,
    pub registry: Field<String>,
    pub hostname: Field<String>,
    pub user: Field<String>,
    pub pass: Field<String>,
    pub token: Field<String>,
    pub cred_helper: Field<String>,
    pub cred_expire: Field<GoDuration>,
    pub cred_host: Field<String>,
    pub tls: Field<String>,
    pub regcert: Field<String>,
    pub client_cert: Field<String>,
    pub client_key: Field<String>,
    pub path_prefix: Field<String>,
    pub mirrors: Vec<String>,
    pub priority: Field<i64>,
    pub repo_auth: Option<bool>,
    pub api_opts: BTreeMap<String, String>,
    pub blob_chunk: Field<i64>,
    pub blob_max: Field<i64>,
    pub req_per_sec: Field<f64>,
    pub req_concurrent: Field<i64>,
}

/// `ratelimit:`
#[derive(Debug, Default, Clone)]
pub struct RawRateLimit {
    pub min: Field<i64>,
    pub retry: Field<GoDuration>,
}

/// Fields allowed both in `defaults:` and in each step.
#[derive(Debug, Default, Clone)]
pub struct RawCommon {
    pub backup: Field<String>,
    pub interval: Field<GoDuration>,
    pub schedule: Field<String>,
    pub ratelimit: RawRateLimit,
    pub digest_tags: Option<bool>,
    pub referrers: Option<bool>,
    pub referrer_slow: Option<bool>,
    pub fast_check: Option<bool>,
    pub force_recursive: Option<bool>,
    pub include_external: Option<bool>,
    /// `None` when absent or null; `Some(vec![])` for an explicit `[]` (DEF-7).
    pub referrer_filters: Option<Vec<ReferrerFilter>>,
    pub referrer_source: Field<String>,
    pub referrer_target: Field<String>,
    pub media_types: Option<Vec<Spanned<String>>>,
    pub hooks: Field<Hooks>,
    /// Notifier plugins; `None` when absent.
    pub notify: Option<Vec<Spanned<String>>>,
    /// The signature policy; `None` when absent.
    pub verify: Option<RawVerify>,
    /// Gate plugins; `None` when absent.
    pub gates: Option<Vec<RawGate>>,
}

/// One `gates:` item: a plugin name, or a mapping with its settings.
#[derive(Debug, Default, Clone)]
pub struct RawGate {
    pub pos: Pos,
    pub name: Field<String>,
    pub mode: Field<String>,
    pub config: BTreeMap<String, String>,
}

/// `verify:`
#[derive(Debug, Default, Clone)]
pub struct RawVerify {
    pub pos: Pos,
    pub mode: Field<String>,
    pub count: Field<i64>,
    pub entries: Vec<RawVerifyEntry>,
    pub attestations: Vec<RawAttestation>,
}

/// One `verify.signatures.entries` item.
#[derive(Debug, Default, Clone)]
pub struct RawVerifyEntry {
    pub pos: Pos,
    pub name: Field<String>,
    pub keys: Option<Vec<Spanned<String>>>,
    pub tlog: Field<String>,
    pub trusted_root: Field<String>,
    pub keyless: Option<RawKeyless>,
    pub sct: Field<String>,
}

/// `keyless:` of an entry.
#[derive(Debug, Default, Clone)]
pub struct RawKeyless {
    pub pos: Pos,
    pub issuer: Field<String>,
    pub issuer_reg_exp: Field<String>,
    pub subject: Field<String>,
    pub subject_reg_exp: Field<String>,
}

/// One `verify.attestations` item.
#[derive(Debug, Default, Clone)]
pub struct RawAttestation {
    pub pos: Pos,
    pub predicate_type: Field<String>,
    pub signed_by: Vec<Spanned<String>>,
}

/// `defaults:`
#[derive(Debug, Default, Clone)]
pub struct RawDefaults {
    pub common: RawCommon,
    pub parallel: Field<i64>,
    pub blob_limit: Field<i64>,
    pub cache_count: Field<i64>,
    pub cache_time: Field<GoDuration>,
    pub skip_docker_config: Option<bool>,
    pub user_agent: Field<String>,
    pub limits: RawLimits,
}

/// `defaults.limits:`
#[derive(Debug, Default, Clone)]
pub struct RawLimits {
    pub idle_timeout: Field<GoDuration>,
    pub manifest_bytes: Field<i64>,
    pub list_page_bytes: Field<i64>,
    pub tags: Field<i64>,
    pub repositories: Field<i64>,
    pub depth: Field<i64>,
    pub referrers: Field<i64>,
}

/// `tags:` or one `tagSets:` entry.
#[derive(Debug, Default, Clone)]
pub struct RawTagSpec {
    pub pos: Pos,
    pub allow: Vec<Spanned<String>>,
    pub deny: Vec<Spanned<String>>,
    pub semver_range: Vec<Spanned<String>>,
}

/// One `sync:` entry.
#[derive(Debug, Default, Clone)]
pub struct RawStep {
    pub pos: Pos,
    pub common: RawCommon,
    pub source: Field<String>,
    pub target: Field<String>,
    pub kind: Field<String>,
    pub tags: Option<RawTagSpec>,
    pub tag_sets: Vec<RawTagSpec>,
    pub repos: Option<RawTagSpec>,
    pub platform: Field<String>,
    pub platforms: Vec<Spanned<String>>,
    /// Tag-filter plugins, in order.
    pub filters: Vec<Spanned<String>>,
}
