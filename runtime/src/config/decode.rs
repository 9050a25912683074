//! YAML nodes to the raw config, with regsync's scalar rules (YAML-5 … YAML-10):
//! scalars become strings as written, numbers may be quoted, booleans must be
//! real booleans, durations must be Go duration strings. Every type error is
//! collected; unknown keys warn unless they start with `x-`.

use std::collections::BTreeMap;

use super::diagnostic::{Diagnostics, StepId};
use super::model::{Hook, Hooks, ReferrerFilter};
use super::raw::*;
use super::yaml::{Kind, Node, Plain, resolve_plain};
use crate::duration::GoDuration;

/// Decodes the root node (or an empty document).
pub(crate) fn decode(root: Option<&Node>, diags: &mut Diagnostics) -> RawConfig {
    let mut d = Decoder { diags };
    let mut cfg = RawConfig::default();
    let Some(root) = root else { return cfg };
    for (key, value) in d.entries(root, "") {
        match key {
            "version" => cfg.version = d.int(value, "version"),
            "creds" => {
                for (i, item) in d.items(value, "creds").iter().enumerate() {
                    if let Some(host) = d.host(item, &format!("creds[{i}]")) {
                        cfg.creds.push(host);
                    }
                }
            }
            "defaults" => cfg.defaults = d.defaults(value),
            "plugins" => {
                for (i, item) in d.items(value, "plugins").iter().enumerate() {
                    cfg.plugins.push(d.plugin(item, &format!("plugins[{i}]")));
                }
            }
            "sync" => {
                for (i, item) in d.items(value, "sync").iter().enumerate() {
                    let source = step_source(item);
                    d.diags.set_step(Some(StepId { index: i, source }));
                    cfg.sync.push(d.step(item, &format!("sync[{i}]")));
                    d.diags.set_step(None);
                }
            }
            other => d.unknown(other, value, ""),
        }
    }
    cfg
}

/// The `source` text of a step, for labelling its problems before it is decoded.
fn step_source(step: &Node) -> String {
    match &step.kind {
        Kind::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.scalar() == Some("source"))
            .and_then(|(_, v)| v.scalar())
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

struct Decoder<'d> {
    diags: &'d mut Diagnostics,
}

impl Decoder<'_> {
    fn type_error(&mut self, node: &Node, path: &str, expected: &str) {
        self.diags.error(node.pos, path, format!("expected {expected}, found {}", node.describe()));
    }

    fn unknown(&mut self, key: &str, value: &Node, path: &str) {
        if !key.starts_with("x-") {
            self.diags.warn(value.pos, join(path, key), "unknown key, ignored");
        }
    }

    /// An unknown key inside `verify:` is an error, not a warning: a
    /// misspelled `attestations` or `signedBy` would loosen the policy.
    fn unknown_in_policy(&mut self, key: &str, value: &Node, path: &str) {
        if !key.starts_with("x-") {
            self.diags.error(value.pos, join(path, key), "unknown key in a signature policy");
        }
    }

    /// The entries of a mapping; null counts as empty.
    fn entries<'n>(&mut self, node: &'n Node, path: &str) -> Vec<(&'n str, &'n Node)> {
        match &node.kind {
            Kind::Map(entries) => entries
                .iter()
                .filter_map(|(k, v)| match k.scalar() {
                    Some(key) => Some((key, v)),
                    None => {
                        self.diags.error(k.pos, path, "mapping keys must be scalars");
                        None
                    }
                })
                .collect(),
            _ if node.is_null() => Vec::new(),
            _ => {
                self.type_error(node, if path.is_empty() { "(document)" } else { path }, "a mapping");
                Vec::new()
            }
        }
    }

    /// The items of a sequence; null counts as empty.
    fn items<'n>(&mut self, node: &'n Node, path: &str) -> Vec<&'n Node> {
        match &node.kind {
            Kind::Seq(items) => items.iter().collect(),
            _ if node.is_null() => Vec::new(),
            _ => {
                self.type_error(node, path, "a sequence");
                Vec::new()
            }
        }
    }

    /// Any scalar as the text the user wrote (YAML-7; `3.10` stays `3.10`).
    fn string(&mut self, node: &Node, path: &str) -> Field<String> {
        if node.is_null() {
            return None;
        }
        match node.scalar() {
            Some(text) => Some(Spanned { value: text.to_string(), pos: node.pos }),
            None => {
                self.type_error(node, path, "a string");
                None
            }
        }
    }

    /// An integer, also when quoted (YAML-8).
    fn int(&mut self, node: &Node, path: &str) -> Field<i64> {
        if node.is_null() {
            return None;
        }
        let value = match &node.kind {
            Kind::Scalar { text, plain: true, .. } => match resolve_plain(text) {
                Plain::Int(i) => Some(i),
                _ => None,
            },
            Kind::Scalar { text, .. } => text.trim().parse().ok(),
            _ => None,
        };
        match value {
            Some(value) => Some(Spanned { value, pos: node.pos }),
            None => {
                self.type_error(node, path, "an integer");
                None
            }
        }
    }

    /// A number, also when quoted.
    fn float(&mut self, node: &Node, path: &str) -> Field<f64> {
        if node.is_null() {
            return None;
        }
        match node.scalar().and_then(|t| t.trim().parse::<f64>().ok()) {
            Some(value) if value.is_finite() => Some(Spanned { value, pos: node.pos }),
            _ => {
                self.type_error(node, path, "a number");
                None
            }
        }
    }

    /// A real YAML boolean; a quoted `"true"` or `yes` is an error (YAML-9).
    fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        if node.is_null() {
            return None;
        }
        match &node.kind {
            Kind::Scalar { text, plain: true, .. } => match resolve_plain(text) {
                Plain::Bool(b) => return Some(b),
                _ => self.type_error(node, path, "a boolean (true or false)"),
            },
            _ => self.type_error(node, path, "a boolean (true or false)"),
        }
        None
    }

    /// A Go duration string (YAML-5). A bare integer is an error, except 0.
    fn duration(&mut self, node: &Node, path: &str) -> Field<GoDuration> {
        if node.is_null() {
            return None;
        }
        let text = match &node.kind {
            Kind::Scalar { text, plain, .. } => {
                if *plain && text != "0" && matches!(resolve_plain(text), Plain::Int(_) | Plain::Float) {
                    self.diags.error(
                        node.pos,
                        path,
                        format!("expected a Go duration such as \"1h30m\", found the number {text}; add a unit"),
                    );
                    return None;
                }
                text
            }
            _ => {
                self.type_error(node, path, "a Go duration such as \"1h30m\"");
                return None;
            }
        };
        match GoDuration::parse(text) {
            Ok(value) => Some(Spanned { value, pos: node.pos }),
            Err(e) => {
                self.diags.error(node.pos, path, e.to_string());
                None
            }
        }
    }

    /// `credExpire`: a Go duration string, or an integer number of nanoseconds (docs/decisions.md).
    fn cred_expire(&mut self, node: &Node, path: &str) -> Field<GoDuration> {
        if let Kind::Scalar { text, plain: true, .. } = &node.kind
            && let Plain::Int(n) = resolve_plain(text)
        {
            return Some(Spanned { value: GoDuration::from_nanos(n), pos: node.pos });
        }
        self.duration(node, path)
    }

    /// A list of scalars as strings; `None` when absent or null, `Some([])` for `[]`.
    fn string_list(&mut self, node: &Node, path: &str) -> Option<Vec<Spanned<String>>> {
        if node.is_null() {
            return None;
        }
        let items = self.items(node, path);
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            if let Some(s) = self.string(item, &format!("{path}[{i}]")) {
                out.push(s);
            } else if item.is_null() {
                out.push(Spanned { value: String::new(), pos: item.pos });
            }
        }
        Some(out)
    }

    fn string_map(&mut self, node: &Node, path: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (key, value) in self.entries(node, path) {
            let text = self.string(value, &join(path, key)).map(|s| s.value).unwrap_or_default();
            out.insert(key.to_string(), text);
        }
        out
    }

    fn host(&mut self, node: &Node, path: &str) -> Option<RawHost> {
        let mut h = RawHost { pos: node.pos, ..RawHost::default() };
        for (key, value) in self.entries(node, path) {
            let p = join(path, key);
            match key {
                "registry" => h.registry = self.string(value, &p),
                "hostname" => h.hostname = self.string(value, &p),
                "user" => h.user = self.string(value, &p),
                "pass" => h.pass = self.string(value, &p),
                "token" => h.token = self.string(value, &p),
                "credHelper" => h.cred_helper = self.string(value, &p),
                "credExpire" => h.cred_expire = self.cred_expire(value, &p),
                "credHost" => h.cred_host = self.string(value, &p),
                "tls" => h.tls = self.string(value, &p),
                "regcert" => h.regcert = self.string(value, &p),
                "clientCert" => h.client_cert = self.string(value, &p),
                "clientKey" => h.client_key = self.string(value, &p),
                "pathPrefix" => h.path_prefix = self.string(value, &p),
                "mirrors" => {
                    h.mirrors = self.string_list(value, &p).unwrap_or_default().into_iter().map(|s| s.value).collect()
                }
                "priority" => h.priority = self.int(value, &p),
                "repoAuth" => h.repo_auth = self.bool(value, &p),
                "apiOpts" => h.api_opts = self.string_map(value, &p),
                "blobChunk" => h.blob_chunk = self.int(value, &p),
                "blobMax" => h.blob_max = self.int(value, &p),
                "reqPerSec" => h.req_per_sec = self.float(value, &p),
                "reqConcurrent" => h.req_concurrent = self.int(value, &p),
                "scheme" => self.diags.warn(value.pos, p, "Scheme is deprecated, for http set TLS to disabled"),
                "api" => self.diags.warn(value.pos, p, "api is deprecated and ignored"),
                other => self.unknown(other, value, path),
            }
        }
        if h.registry.as_ref().is_none_or(|r| r.value.is_empty()) {
            self.diags.warn(node.pos, path, "Ignoring registry config without a name (the key is `registry`)");
            return None;
        }
        Some(h)
    }

    /// Decodes a field shared by defaults and steps; false when `key` is not one.
    fn common_field(&mut self, c: &mut RawCommon, key: &str, value: &Node, path: &str) -> bool {
        let p = join(path, key);
        match key {
            "backup" => c.backup = self.string(value, &p),
            "interval" => c.interval = self.duration(value, &p),
            "schedule" => c.schedule = self.string(value, &p),
            "ratelimit" => {
                for (k, v) in self.entries(value, &p) {
                    let rp = join(&p, k);
                    match k {
                        "min" => c.ratelimit.min = self.int(v, &rp),
                        "retry" => c.ratelimit.retry = self.duration(v, &rp),
                        other => self.unknown(other, v, &p),
                    }
                }
            }
            "digestTags" => c.digest_tags = self.bool(value, &p),
            "referrers" => c.referrers = self.bool(value, &p),
            "referrerSlow" => c.referrer_slow = self.bool(value, &p),
            // regsync's docs say fastCopy, its code reads fastCheck: both mean the same.
            "fastCheck" | "fastCopy" => c.fast_check = self.bool(value, &p),
            "forceRecursive" => c.force_recursive = self.bool(value, &p),
            "includeExternal" => c.include_external = self.bool(value, &p),
            "referrerFilters" => c.referrer_filters = self.referrer_filters(value, &p),
            "referrerSource" => c.referrer_source = self.string(value, &p),
            "referrerTarget" => c.referrer_target = self.string(value, &p),
            "mediaTypes" => c.media_types = self.string_list(value, &p),
            "hooks" => c.hooks = self.hooks(value, &p),
            "notify" => c.notify = self.string_list(value, &p),
            "verify" => c.verify = self.verify(value, &p),
            "gates" => c.gates = self.gates(value, &p),
            _ => return false,
        }
        true
    }

    /// `gates:`: each item a plugin name, or `{name, mode, config}`. Unknown
    /// keys are errors, as in `verify:`: a misspelled `mode` would turn a
    /// warning gate into an enforcing one or the other way round.
    fn gates(&mut self, node: &Node, path: &str) -> Option<Vec<RawGate>> {
        if node.is_null() {
            return None;
        }
        let mut out = Vec::new();
        for (i, item) in self.items(node, path).into_iter().enumerate() {
            let ip = format!("{path}[{i}]");
            let mut g = RawGate { pos: item.pos, ..RawGate::default() };
            if let Some(name) = item.scalar() {
                g.name = Some(Spanned { value: name.to_string(), pos: item.pos });
            } else {
                for (key, value) in self.entries(item, &ip) {
                    let p = join(&ip, key);
                    match key {
                        "name" => g.name = self.string(value, &p),
                        "mode" => g.mode = self.string(value, &p),
                        "config" => g.config = self.string_map(value, &p),
                        other if !other.starts_with("x-") => {
                            self.diags.error(value.pos, p, "unknown key in a gate (name, mode, config)")
                        }
                        _ => {}
                    }
                }
            }
            out.push(g);
        }
        Some(out)
    }

    fn verify(&mut self, node: &Node, path: &str) -> Option<RawVerify> {
        if node.is_null() {
            return None;
        }
        let mut v = RawVerify { pos: node.pos, ..RawVerify::default() };
        for (key, value) in self.entries(node, path) {
            let p = join(path, key);
            match key {
                "mode" => v.mode = self.string(value, &p),
                "signatures" => {
                    for (k, item) in self.entries(value, &p) {
                        let sp = join(&p, k);
                        match k {
                            "count" => v.count = self.int(item, &sp),
                            "entries" => {
                                for (i, e) in self.items(item, &sp).into_iter().enumerate() {
                                    v.entries.push(self.verify_entry(e, &format!("{sp}[{i}]")));
                                }
                            }
                            other => self.unknown_in_policy(other, item, &p),
                        }
                    }
                }
                "attestations" => {
                    for (i, item) in self.items(value, &p).into_iter().enumerate() {
                        let ip = format!("{p}[{i}]");
                        let mut a = RawAttestation { pos: item.pos, ..RawAttestation::default() };
                        for (k, val) in self.entries(item, &ip) {
                            let kp = join(&ip, k);
                            match k {
                                "predicateType" => a.predicate_type = self.string(val, &kp),
                                "signedBy" => a.signed_by = self.string_list(val, &kp).unwrap_or_default(),
                                other => self.unknown_in_policy(other, val, &ip),
                            }
                        }
                        v.attestations.push(a);
                    }
                }
                other => self.unknown_in_policy(other, value, path),
            }
        }
        Some(v)
    }

    fn verify_entry(&mut self, node: &Node, path: &str) -> RawVerifyEntry {
        let mut e = RawVerifyEntry { pos: node.pos, ..RawVerifyEntry::default() };
        for (key, value) in self.entries(node, path) {
            let p = join(path, key);
            match key {
                "name" => e.name = self.string(value, &p),
                "keys" => e.keys = self.string_list(value, &p),
                "tlog" => e.tlog = self.string(value, &p),
                "trustedRoot" => e.trusted_root = self.string(value, &p),
                "sct" => e.sct = self.string(value, &p),
                "keyless" => {
                    let mut k = RawKeyless { pos: value.pos, ..RawKeyless::default() };
                    for (kk, val) in self.entries(value, &p) {
                        let kp = join(&p, kk);
                        match kk {
                            "issuer" => k.issuer = self.string(val, &kp),
                            "issuerRegExp" => k.issuer_reg_exp = self.string(val, &kp),
                            "subject" => k.subject = self.string(val, &kp),
                            "subjectRegExp" => k.subject_reg_exp = self.string(val, &kp),
                            other => self.unknown_in_policy(other, val, &p),
                        }
                    }
                    e.keyless = Some(k);
                }
                other => self.unknown_in_policy(other, value, path),
            }
        }
        e
    }

    fn referrer_filters(&mut self, node: &Node, path: &str) -> Option<Vec<ReferrerFilter>> {
        if node.is_null() {
            return None;
        }
        let mut out = Vec::new();
        for (i, item) in self.items(node, path).into_iter().enumerate() {
            let ip = format!("{path}[{i}]");
            let mut f = ReferrerFilter::default();
            for (key, value) in self.entries(item, &ip) {
                match key {
                    "artifactType" => {
                        f.artifact_type = self.string(value, &join(&ip, key)).map(|s| s.value).unwrap_or_default()
                    }
                    "annotations" => f.annotations = self.string_map(value, &join(&ip, key)),
                    other => self.unknown(other, value, &ip),
                }
            }
            out.push(f);
        }
        Some(out)
    }

    fn hook(&mut self, node: &Node, path: &str) -> Option<Hook> {
        if node.is_null() {
            return None;
        }
        let mut hook = Hook::default();
        for (key, value) in self.entries(node, path) {
            let p = join(path, key);
            match key {
                "type" => hook.kind = self.string(value, &p).map(|s| s.value).unwrap_or_default(),
                "params" => {
                    hook.params = self.string_list(value, &p).unwrap_or_default().into_iter().map(|s| s.value).collect()
                }
                other => self.unknown(other, value, path),
            }
        }
        Some(hook)
    }

    fn hooks(&mut self, node: &Node, path: &str) -> Field<Hooks> {
        if node.is_null() {
            return None;
        }
        let mut hooks = Hooks::default();
        for (key, value) in self.entries(node, path) {
            let p = join(path, key);
            match key {
                "pre" => hooks.pre = self.hook(value, &p),
                "post" => hooks.post = self.hook(value, &p),
                "unchanged" => hooks.unchanged = self.hook(value, &p),
                other => self.unknown(other, value, path),
            }
        }
        Some(Spanned { value: hooks, pos: node.pos })
    }

    fn plugin(&mut self, node: &Node, path: &str) -> RawPlugin {
        let mut p = RawPlugin { pos: node.pos, ..RawPlugin::default() };
        for (key, value) in self.entries(node, path) {
            let kp = join(path, key);
            match key {
                "name" => p.name = self.string(value, &kp),
                "path" => p.path = self.string(value, &kp),
                "ref" => p.reference = self.string(value, &kp),
                "config" => p.config = self.string_map(value, &kp),
                "allowHosts" => p.allow_hosts = self.string_list(value, &kp).unwrap_or_default(),
                "timeout" => p.timeout = self.duration(value, &kp),
                "memory" => p.memory = self.int(value, &kp),
                other => self.unknown(other, value, path),
            }
        }
        p
    }

    fn defaults(&mut self, node: &Node) -> RawDefaults {
        let path = "defaults";
        let mut d = RawDefaults::default();
        for (key, value) in self.entries(node, path) {
            if self.common_field(&mut d.common, key, value, path) {
                continue;
            }
            let p = join(path, key);
            match key {
                "parallel" => d.parallel = self.int(value, &p),
                "blobLimit" => d.blob_limit = self.int(value, &p),
                "cacheCount" => d.cache_count = self.int(value, &p),
                "cacheTime" => d.cache_time = self.duration(value, &p),
                "skipDockerConfig" => d.skip_docker_config = self.bool(value, &p),
                "userAgent" => d.user_agent = self.string(value, &p),
                "limits" => d.limits = self.limits(value, &p),
                other => self.unknown(other, value, path),
            }
        }
        d
    }

    fn limits(&mut self, node: &Node, path: &str) -> RawLimits {
        let mut l = RawLimits::default();
        for (key, value) in self.entries(node, path) {
            let p = join(path, key);
            match key {
                "idleTimeout" => l.idle_timeout = self.duration(value, &p),
                "manifestBytes" => l.manifest_bytes = self.int(value, &p),
                "listPageBytes" => l.list_page_bytes = self.int(value, &p),
                "tags" => l.tags = self.int(value, &p),
                "repositories" => l.repositories = self.int(value, &p),
                "depth" => l.depth = self.int(value, &p),
                "referrers" => l.referrers = self.int(value, &p),
                other => self.unknown(other, value, path),
            }
        }
        l
    }

    fn tag_spec(&mut self, node: &Node, path: &str, semver: bool) -> RawTagSpec {
        let mut t = RawTagSpec { pos: node.pos, ..RawTagSpec::default() };
        for (key, value) in self.entries(node, path) {
            let p = join(path, key);
            match key {
                "allow" => t.allow = self.string_list(value, &p).unwrap_or_default(),
                "deny" => t.deny = self.string_list(value, &p).unwrap_or_default(),
                "semverRange" if semver => t.semver_range = self.string_list(value, &p).unwrap_or_default(),
                other => self.unknown(other, value, path),
            }
        }
        t
    }

    fn step(&mut self, node: &Node, path: &str) -> RawStep {
        let mut s = RawStep { pos: node.pos, ..RawStep::default() };
        for (key, value) in self.entries(node, path) {
            if self.common_field(&mut s.common, key, value, path) {
                continue;
            }
            let p = join(path, key);
            match key {
                "source" => s.source = self.string(value, &p),
                "target" => s.target = self.string(value, &p),
                "type" => s.kind = self.string(value, &p),
                "tags" => s.tags = (!value.is_null()).then(|| self.tag_spec(value, &p, true)),
                "tagSets" => {
                    for (i, item) in self.items(value, &p).into_iter().enumerate() {
                        let spec = self.tag_spec(item, &format!("{p}[{i}]"), true);
                        s.tag_sets.push(spec);
                    }
                }
                "repos" => s.repos = (!value.is_null()).then(|| self.tag_spec(value, &p, false)),
                "platform" => s.platform = self.string(value, &p),
                "platforms" => s.platforms = self.string_list(value, &p).unwrap_or_default(),
                "filters" => s.filters = self.string_list(value, &p).unwrap_or_default(),
                other => self.unknown(other, value, path),
            }
        }
        s
    }
}
