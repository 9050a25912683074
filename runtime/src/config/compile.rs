//! Raw config to the loaded [`Config`]: defaults merged, templates expanded,
//! and everything regsync would only find out at run time checked now
//! (docs/decisions.md): types, references, regexes, semver ranges, platforms,
//! schedules, TLS values, negative intervals. Every problem is recorded.

use super::defaults::{self, MIN_RETRY};
use super::diagnostic::{Diagnostics, StepId};
use super::expand::{self, RefField};
use super::model::*;
use super::raw::*;
use super::yaml::Pos;
use crate::duration::GoDuration;
use crate::matching::{FilterIssue, RepoFilter, RepoFilterSpec, TagFilter, TagFilterSpec, TagSet};
use crate::platform::Platform;
use crate::reference::{self, DOCKER_HUB, DOCKER_HUB_HOST, Reference};
use crate::schedule::Schedule;
use crate::template::Templates;

fn value<T: Clone>(f: &Field<T>) -> Option<T> {
    f.as_ref().map(|s| s.value.clone())
}

fn text_of(f: &Field<String>) -> Option<&str> {
    f.as_ref().map(|s| s.value.as_str())
}

fn pos_or(f: &Field<impl Clone>, fallback: Pos) -> Pos {
    f.as_ref().map_or(fallback, |s| s.pos)
}

fn strings(list: &[Spanned<String>]) -> Vec<String> {
    list.iter().map(|s| s.value.clone()).collect()
}

/// Resolves and validates everything; problems go to `diags`. Relative
/// paths (key files, trusted roots) are resolved against `base_dir` (the
/// config file's directory).
pub(crate) fn compile(
    raw: RawConfig,
    plugins: Vec<PluginSpec>,
    base_dir: &std::path::Path,
    engine: &Templates,
    diags: &mut Diagnostics,
) -> Config {
    let version = match &raw.version {
        Some(v) if v.value > 1 => {
            diags.error(v.pos, "version", format!("unsupported config version {}", v.value));
            v.value
        }
        Some(v) if v.value != 0 => v.value,
        _ => 1,
    };
    let creds = raw.creds.iter().enumerate().map(|(i, h)| host(h, i, engine, diags)).collect();
    let names: Vec<&str> = plugins.iter().map(|p| p.name.as_str()).collect();
    let mut defaults = resolve_defaults(&raw.defaults, engine, diags);
    if let Some(v) = &raw.defaults.common.verify {
        defaults.options.verify = super::verify::policy(v, "defaults.verify", base_dir, diags);
    }
    check_plugin_names(raw.defaults.common.notify.as_deref().unwrap_or_default(), &names, "defaults.notify", diags);
    if let Some(list) = &raw.defaults.common.gates {
        defaults.options.gates = gates(list, &names, "defaults.gates", diags);
    }
    let mut sync = Vec::with_capacity(raw.sync.len());
    let mut hooks_seen = raw.defaults.common.hooks.as_ref().map(|h| h.pos);
    for (index, step) in raw.sync.iter().enumerate() {
        diags.set_step(Some(StepId { index, source: text_of(&step.source).unwrap_or("").to_string() }));
        hooks_seen = hooks_seen.or(step.common.hooks.as_ref().map(|h| h.pos));
        if let Some(mut s) = resolve_step(step, index, &defaults, engine, diags) {
            let path = format!("sync[{index}]");
            if let Some(v) = &step.common.verify {
                s.spec.options.verify = super::verify::policy(v, &format!("{path}.verify"), base_dir, diags);
            }
            check_plugin_names(&step.filters, &names, &format!("{path}.filters"), diags);
            s.spec.filters = strings(&step.filters);
            if let Some(list) = &step.common.notify {
                check_plugin_names(list, &names, &format!("{path}.notify"), diags);
            }
            if let Some(list) = &step.common.gates {
                s.spec.options.gates = gates(list, &names, &format!("{path}.gates"), diags);
            }
            sync.push(s);
        }
        diags.set_step(None);
    }
    if let Some(pos) = hooks_seen {
        diags.warn(pos, "hooks", "hooks are accepted for compatibility but never run, as in regsync");
    }
    Config { version, creds, defaults, sync, plugins }
}

/// Plugin names used by a step or the defaults; each must be declared.
fn check_plugin_names(list: &[Spanned<String>], declared: &[&str], path: &str, diags: &mut Diagnostics) {
    for (i, name) in list.iter().enumerate() {
        if !declared.contains(&name.value.as_str()) {
            diags.error(
                name.pos,
                format!("{path}[{i}]"),
                format!("unknown plugin \"{}\": declare it under plugins:", name.value),
            );
        }
    }
}

/// A `gates:` list: declared plugin names, each once, with a known mode.
/// Whether each plugin exports the gate interface is checked once loaded.
fn gates(list: &[RawGate], declared: &[&str], path: &str, diags: &mut Diagnostics) -> Vec<GateUse> {
    let mut out: Vec<GateUse> = Vec::new();
    for (i, g) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let Some(name) = g.name.as_ref().filter(|n| !n.value.is_empty()) else {
            diags.error(g.pos, &at, "a gate needs the name of a plugin");
            continue;
        };
        if !declared.contains(&name.value.as_str()) {
            diags.error(name.pos, &at, format!("unknown plugin \"{}\": declare it under plugins:", name.value));
            continue;
        }
        if out.iter().any(|o| o.name == name.value) {
            diags.error(name.pos, &at, format!("gate \"{}\" is listed twice", name.value));
            continue;
        }
        let mode = match text_of(&g.mode) {
            None | Some("enforce") => GateMode::Enforce,
            Some("warn") => GateMode::Warn,
            Some(other) => {
                diags.error(
                    pos_or(&g.mode, g.pos),
                    format!("{at}.mode"),
                    format!("mode {other:?}: expected enforce or warn"),
                );
                continue;
            }
        };
        out.push(GateUse { name: name.value.clone(), mode, config: g.config.clone() });
    }
    out
}

/// `plugins:` entries: named once each, with a component file that exists.
pub(crate) fn plugins(raw: &[RawPlugin], base_dir: &std::path::Path, diags: &mut Diagnostics) -> Vec<PluginSpec> {
    let mut out: Vec<PluginSpec> = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let path = format!("plugins[{i}]");
        let name = value(&p.name).unwrap_or_default();
        if name.is_empty() {
            diags.error(p.pos, &path, "a plugin needs a name");
        } else if out.iter().any(|o| o.name == name) {
            diags.error(pos_or(&p.name, p.pos), format!("{path}.name"), format!("plugin \"{name}\" is declared twice"));
        }
        let file = value(&p.path).unwrap_or_default();
        let reference = value(&p.reference).unwrap_or_default();
        let resolved = base_dir.join(&file);
        if !reference.is_empty() {
            if !file.is_empty() {
                diags.error(
                    pos_or(&p.reference, p.pos),
                    format!("{path}.ref"),
                    "a plugin has a path or a ref, not both",
                );
            } else if let Err(e) = crate::reference::Reference::parse(&reference) {
                diags.error(pos_or(&p.reference, p.pos), format!("{path}.ref"), format!("invalid ref: {e}"));
            }
        } else if file.is_empty() {
            diags.error(p.pos, &path, "a plugin needs a path to its .wasm component, or a ref to an OCI artifact");
        } else if !resolved.is_file() {
            diags.error(
                pos_or(&p.path, p.pos),
                format!("{path}.path"),
                format!("plugin file {} does not exist", resolved.display()),
            );
        }
        let timeout = value(&p.timeout).unwrap_or(GoDuration::from_secs(1));
        if timeout.as_nanos() <= 0 {
            diags.error(pos_or(&p.timeout, p.pos), format!("{path}.timeout"), "timeout must be positive");
        }
        let memory = value(&p.memory).unwrap_or(64);
        if memory <= 0 {
            diags.error(pos_or(&p.memory, p.pos), format!("{path}.memory"), "memory (MiB) must be positive");
        }
        out.push(PluginSpec {
            name,
            path: if file.is_empty() { String::new() } else { resolved.display().to_string() },
            reference,
            config: p.config.clone(),
            allow_hosts: strings(&p.allow_hosts),
            timeout,
            memory,
            pos: p.pos,
        });
    }
    out
}

fn tls_mode(f: &Field<String>, path: &str, diags: &mut Diagnostics) -> TlsMode {
    let Some(s) = f else { return TlsMode::Enabled };
    match s.value.to_ascii_lowercase().as_str() {
        "" | "enabled" => TlsMode::Enabled,
        "insecure" => TlsMode::Insecure,
        "disabled" => TlsMode::Disabled,
        _ => {
            diags.error(
                s.pos,
                format!("{path}.tls"),
                format!("unknown TLS value \"{}\": use enabled, insecure or disabled", s.value),
            );
            TlsMode::Enabled
        }
    }
}

fn host(h: &RawHost, i: usize, engine: &Templates, diags: &mut Diagnostics) -> Host {
    let path = format!("creds[{i}]");
    let mut expand = |f: &Field<String>, key: &str| -> String {
        let Some(s) = f else { return String::new() };
        match expand::expand_host_field(engine, key, &s.value) {
            Ok(v) => v,
            Err(e) => {
                diags.error(s.pos, format!("{path}.{key}"), e.to_string());
                String::new()
            }
        }
    };
    let mut registry = expand(&h.registry, "registry");
    let user = expand(&h.user, "user");
    let pass = expand(&h.pass, "pass");
    let regcert = expand(&h.regcert, "regcert");
    let client_cert = expand(&h.client_cert, "clientCert");
    let client_key = expand(&h.client_key, "clientKey");
    // HOST-4, plus `index.docker.io`, which references already treat as Docker Hub.
    let mut hostname = value(&h.hostname).unwrap_or_default();
    if matches!(
        registry.as_str(),
        "docker.io" | "registry-1.docker.io" | "index.docker.io" | "https://index.docker.io/v1/"
    ) {
        registry = DOCKER_HUB.to_string();
        if hostname.is_empty() {
            hostname = DOCKER_HUB_HOST.to_string();
        }
    }
    if hostname.is_empty() {
        hostname = registry.clone();
    }
    let tls = tls_mode(&h.tls, &path, diags);
    if client_cert.is_empty() != client_key.is_empty() {
        let pos = pos_or(&h.client_cert, pos_or(&h.client_key, h.pos));
        diags.warn(pos, &path, "clientCert and clientKey must both be set for mTLS; neither is used");
    }
    let cred_expire = value(&h.cred_expire).unwrap_or(GoDuration::from_mins(60));
    if let Some(c) = &h.cred_expire
        && c.value.is_negative()
    {
        diags.error(c.pos, format!("{path}.credExpire"), "credExpire must not be negative");
    }
    let priority = match &h.priority {
        Some(p) if p.value < 0 => {
            diags.error(p.pos, format!("{path}.priority"), "priority must not be negative");
            0
        }
        Some(p) => p.value as u64,
        None => 0,
    };
    let req_concurrent = match &h.req_concurrent {
        Some(r) if r.value < 0 => {
            diags.error(
                r.pos,
                format!("{path}.reqConcurrent"),
                "reqConcurrent must not be negative (0 means no limit)",
            );
            3
        }
        Some(r) => r.value,
        None => 3,
    };
    if let Some(r) = &h.req_per_sec
        && r.value < 0.0
    {
        diags.error(r.pos, format!("{path}.reqPerSec"), "reqPerSec must not be negative");
    }
    Host {
        registry,
        hostname,
        user,
        pass: Secret::new(pass),
        token: Secret::new(value(&h.token).unwrap_or_default()),
        cred_helper: value(&h.cred_helper).unwrap_or_default(),
        cred_expire,
        cred_host: value(&h.cred_host).unwrap_or_default(),
        tls,
        regcert,
        client_cert,
        client_key: Secret::new(client_key),
        path_prefix: value(&h.path_prefix).unwrap_or_default().trim_matches('/').to_string(),
        mirrors: h.mirrors.clone(),
        priority,
        repo_auth: h.repo_auth.unwrap_or(false),
        api_opts: h.api_opts.clone(),
        blob_chunk: value(&h.blob_chunk).unwrap_or(1 << 20),
        blob_max: value(&h.blob_max).unwrap_or(-1),
        req_per_sec: value(&h.req_per_sec).unwrap_or(0.0),
        req_concurrent,
        line: h.pos.line,
    }
}

fn check_interval(f: &Field<GoDuration>, path: &str, diags: &mut Diagnostics) {
    if let Some(i) = f
        && i.value.is_negative()
    {
        diags.error(i.pos, path, format!("interval {} is negative", i.value));
    }
}

fn check_schedule(f: &Field<String>, path: &str, diags: &mut Diagnostics) -> Option<Schedule> {
    let s = f.as_ref().filter(|s| !s.value.is_empty())?;
    match Schedule::parse_cron(&s.value) {
        Ok(schedule) => Some(schedule),
        Err(e) => {
            diags.error(s.pos, path, format!("invalid schedule \"{}\": {e}", s.value));
            None
        }
    }
}

fn warn_retry_floor(f: &Field<GoDuration>, path: &str, diags: &mut Diagnostics) {
    if let Some(r) = f
        && !r.value.is_zero()
        && r.value < MIN_RETRY
    {
        diags.warn(r.pos, path, format!("retry {} is below the 5m minimum and is raised to 5m0s", r.value));
    }
}

fn check_media_types(list: &Option<Vec<Spanned<String>>>, path: &str, diags: &mut Diagnostics) {
    for (i, mt) in list.iter().flatten().enumerate() {
        if !KNOWN_MEDIA_TYPES.contains(&mt.value.as_str()) {
            diags.warn(mt.pos, format!("{path}[{i}]"), format!("unknown manifest media type \"{}\"", mt.value));
        }
    }
}

/// Compiles a backup template and runs it once on sample data, so a misspelt
/// field is reported now instead of at the first backup. Syntax errors in a
/// template inherited from defaults were reported there, so `inherited` skips them.
fn check_backup(
    template: &str,
    pos: Pos,
    path: &str,
    spec: Option<&StepSpec>,
    inherited: bool,
    engine: &Templates,
    diags: &mut Diagnostics,
) -> Option<crate::template::CompiledTemplate> {
    if template.is_empty() {
        return None;
    }
    let compiled = match engine.compile("backup", template) {
        Ok(c) => c,
        Err(e) => {
            if !inherited {
                diags.error(pos, path, e.to_string());
            }
            return None;
        }
    };
    if let Some(spec) = spec {
        let sample = Reference::parse("registry.example/repo:tag").expect("static reference parses");
        if let Err(e) = crate::template::with_sample_data(|| compiled.render(&expand::backup_data(spec, &sample))) {
            diags.error(pos, path, e.to_string());
        }
    }
    Some(compiled)
}

fn resolve_defaults(raw: &RawDefaults, engine: &Templates, diags: &mut Diagnostics) -> Defaults {
    let c = &raw.common;
    check_interval(&c.interval, "defaults.interval", diags);
    check_schedule(&c.schedule, "defaults.schedule", diags);
    warn_retry_floor(&c.ratelimit.retry, "defaults.ratelimit.retry", diags);
    check_media_types(&c.media_types, "defaults.mediaTypes", diags);
    if let Some(b) = &c.backup {
        check_backup(&b.value, b.pos, "defaults.backup", None, false, engine, diags);
    }
    if let Some(p) = &raw.parallel
        && p.value < 0
    {
        diags.warn(p.pos, "defaults.parallel", "parallel below 1 means one copy at a time");
    }
    Defaults {
        parallel: value(&raw.parallel).unwrap_or(0),
        options: defaults::merge(c, &StepOptions::default()),
        blob_limit: value(&raw.blob_limit).unwrap_or(0),
        cache_count: value(&raw.cache_count).unwrap_or(0),
        cache_time: value(&raw.cache_time).unwrap_or_default(),
        skip_docker_config: raw.skip_docker_config.unwrap_or(false),
        user_agent: value(&raw.user_agent).unwrap_or_default(),
        limits: resolve_limits(&raw.limits, diags),
    }
}

/// `defaults.limits`, each unset one at its default. A limit must be
/// positive: "no limit" is what these exist to prevent.
fn resolve_limits(raw: &RawLimits, diags: &mut Diagnostics) -> Limits {
    let d = Limits::default();
    let mut count = |field: &Field<i64>, key: &str, default: u64| match field {
        None => default,
        Some(v) if v.value > 0 => v.value as u64,
        Some(v) => {
            diags.error(v.pos, format!("defaults.limits.{key}"), format!("must be at least 1, found {}", v.value));
            default
        }
    };
    let manifest_bytes = count(&raw.manifest_bytes, "manifestBytes", d.manifest_bytes);
    let list_page_bytes = count(&raw.list_page_bytes, "listPageBytes", d.list_page_bytes);
    let tags = count(&raw.tags, "tags", d.tags);
    let repositories = count(&raw.repositories, "repositories", d.repositories);
    let depth = count(&raw.depth, "depth", d.depth);
    let referrers = count(&raw.referrers, "referrers", d.referrers);
    let idle_timeout = match &raw.idle_timeout {
        None => d.idle_timeout,
        Some(v) if v.value.to_std() >= std::time::Duration::from_millis(100) => v.value,
        Some(v) => {
            diags.error(v.pos, "defaults.limits.idleTimeout", "must be at least 100ms (an idle timeout cannot be off)");
            d.idle_timeout
        }
    };
    Limits { idle_timeout, manifest_bytes, list_page_bytes, tags, repositories, depth, referrers }
}

fn sync_type(step: &RawStep, path: &str, diags: &mut Diagnostics) -> Option<SyncType> {
    let Some(kind) = &step.kind else {
        diags.error(step.pos, path, "type is required: one of image, repository or registry");
        return None;
    };
    match kind.value.as_str() {
        "image" => Some(SyncType::Image),
        "repository" => Some(SyncType::Repository),
        "registry" => Some(SyncType::Registry),
        other => {
            diags.error(
                kind.pos,
                format!("{path}.type"),
                format!("unknown type \"{other}\": must be one of registry, repository, or image"),
            );
            None
        }
    }
}

fn tag_spec(raw: &RawTagSpec) -> TagFilterSpec {
    TagFilterSpec { allow: strings(&raw.allow), deny: strings(&raw.deny), semver_range: strings(&raw.semver_range) }
}

fn report_filter_issues(raw: &RawTagSpec, path: &str, issues: Vec<FilterIssue>, diags: &mut Diagnostics) {
    for issue in issues {
        let list = match issue.field {
            crate::matching::FilterField::Allow => &raw.allow,
            crate::matching::FilterField::Deny => &raw.deny,
            crate::matching::FilterField::SemverRange => &raw.semver_range,
        };
        let pos = list.get(issue.index).map_or(raw.pos, |s| s.pos);
        diags.error(pos, format!("{path}.{}[{}]", issue.field.key(), issue.index), issue.error.to_string());
    }
}

/// `tagSets` in order, then `tags` when it filters anything (REPO-2).
fn tag_filter(step: &RawStep, path: &str, diags: &mut Diagnostics) -> TagFilter {
    let mut sets = Vec::new();
    let mut specs: Vec<(&RawTagSpec, String)> =
        step.tag_sets.iter().enumerate().map(|(i, t)| (t, format!("{path}.tagSets[{i}]"))).collect();
    if let Some(tags) = &step.tags
        && tag_spec(tags).is_active()
    {
        specs.push((tags, format!("{path}.tags")));
    }
    for (raw, p) in specs {
        match TagSet::compile(&tag_spec(raw)) {
            Ok(set) => sets.push(set),
            Err(issues) => report_filter_issues(raw, &p, issues, diags),
        }
    }
    TagFilter::new(sets)
}

fn repo_filter(step: &RawStep, path: &str, diags: &mut Diagnostics) -> (RepoFilterSpec, RepoFilter) {
    let Some(raw) = &step.repos else {
        return Default::default();
    };
    let spec = RepoFilterSpec { allow: strings(&raw.allow), deny: strings(&raw.deny) };
    match RepoFilter::compile(&spec) {
        Ok(f) => (spec, f),
        Err(issues) => {
            report_filter_issues(raw, &format!("{path}.repos"), issues, diags);
            (spec, RepoFilter::default())
        }
    }
}

fn check_platforms(step: &RawStep, path: &str, diags: &mut Diagnostics) {
    if let Some(p) = step.platform.as_ref().filter(|p| !p.value.is_empty())
        && let Err(e) = Platform::parse(&p.value)
    {
        diags.error(p.pos, format!("{path}.platform"), e.to_string());
    }
    for (i, p) in step.platforms.iter().enumerate() {
        if !p.value.is_empty()
            && let Err(e) = Platform::parse(&p.value)
        {
            diags.error(p.pos, format!("{path}.platforms[{i}]"), e.to_string());
        }
    }
    if step.platform.as_ref().is_some_and(|p| !p.value.is_empty()) && !step.platforms.is_empty() {
        let pos = pos_or(&step.platform, step.pos);
        diags.warn(pos, path, "platform and platforms are both set; platform picks one image and platforms is unused");
    }
}

/// Parses the expanded references and checks they suit the step type (REF-7, REG-1).
fn check_references(
    spec: &StepSpec,
    step: &RawStep,
    path: &str,
    failed: &[RefField],
    diags: &mut Diagnostics,
) -> (Option<Reference>, Option<Reference>) {
    let mut parsed = [None, None];
    for (slot, (field, text, raw)) in
        [(RefField::Source, &spec.source, &step.source), (RefField::Target, &spec.target, &step.target)]
            .into_iter()
            .enumerate()
    {
        if failed.contains(&field) {
            continue;
        }
        let key = field.key();
        let pos = pos_or(raw, step.pos);
        let fpath = format!("{path}.{key}");
        if text.is_empty() {
            diags.error(pos, if raw.is_some() { fpath } else { path.to_string() }, format!("{key} is required"));
            continue;
        }
        match spec.kind {
            SyncType::Registry if field == RefField::Source => {
                if let Err(e) = reference::parse_registry_host(text) {
                    diags.error(pos, fpath, format!("{e}: a registry step needs a bare host[:port] source"));
                }
            }
            SyncType::Registry => {
                if let Err(e) = Reference::parse(&format!("{text}/repository")) {
                    diags.error(pos, fpath, format!("invalid registry target \"{text}\": {e}"));
                }
            }
            SyncType::Image | SyncType::Repository => match Reference::parse(text) {
                Ok(r) if spec.kind == SyncType::Repository && r.has_explicit_tag_or_digest() => {
                    diags.error(pos, fpath, format!("a repository {key} must not include a tag or digest: \"{text}\""));
                }
                Ok(r) => parsed[slot] = Some(r),
                Err(e) => diags.error(pos, fpath, e.to_string()),
            },
        }
    }
    for (field, text, raw) in [
        (RefField::ReferrerSource, &spec.options.referrer_source, &step.common.referrer_source),
        (RefField::ReferrerTarget, &spec.options.referrer_target, &step.common.referrer_target),
    ] {
        if !text.is_empty()
            && !failed.contains(&field)
            && let Err(e) = Reference::parse(text)
        {
            let p = if raw.is_some() {
                format!("{path}.{}", field.key())
            } else {
                format!("{path}.{} (from defaults)", field.key())
            };
            diags.error(pos_or(raw, step.pos), p, e.to_string());
        }
    }
    let [source, target] = parsed;
    (source, target)
}

fn resolve_step(
    step: &RawStep,
    index: usize,
    d: &Defaults,
    engine: &Templates,
    diags: &mut Diagnostics,
) -> Option<SyncStep> {
    let path = format!("sync[{index}]");
    let c = &step.common;
    let kind = sync_type(step, &path, diags);
    check_interval(&c.interval, &format!("{path}.interval"), diags);
    let own_schedule = check_schedule(&c.schedule, &format!("{path}.schedule"), diags);
    warn_retry_floor(&c.ratelimit.retry, &format!("{path}.ratelimit.retry"), diags);
    check_media_types(&c.media_types, &format!("{path}.mediaTypes"), diags);
    check_platforms(step, &path, diags);
    let tag_filter = tag_filter(step, &path, diags);
    let (repos, repo_filter) = repo_filter(step, &path, diags);
    let kind = kind?;
    if kind == SyncType::Image && (step.tags.is_some() || !step.tag_sets.is_empty()) {
        diags.warn(step.pos, &path, "tags and tagSets are ignored for type image");
    }
    if kind != SyncType::Registry && step.repos.is_some() {
        let pos = step.repos.as_ref().map_or(step.pos, |r| r.pos);
        diags.warn(pos, &path, "repos is only used by type registry");
    }

    let mut spec = StepSpec {
        source: value(&step.source).unwrap_or_default(),
        target: value(&step.target).unwrap_or_default(),
        kind,
        tags: step.tags.as_ref().map(tag_spec).unwrap_or_default(),
        tag_sets: step.tag_sets.iter().map(tag_spec).collect(),
        repos,
        platform: value(&step.platform).unwrap_or_default(),
        platforms: strings(&step.platforms),
        options: defaults::merge(c, &d.options),
        filters: Vec::new(),
    };

    let mut failed = Vec::new();
    for (field, error) in expand::expand_step(&mut spec, engine) {
        failed.push(field);
        let raw = match field {
            RefField::Source => &step.source,
            RefField::Target => &step.target,
            RefField::ReferrerSource => &c.referrer_source,
            RefField::ReferrerTarget => &c.referrer_target,
        };
        diags.error(pos_or(raw, step.pos), format!("{path}.{}", field.key()), error.to_string());
    }
    let (source_ref, target_ref) = check_references(&spec, step, &path, &failed, diags);

    let backup_pos = pos_or(&c.backup, step.pos);
    let backup_path =
        if c.backup.is_some() { format!("{path}.backup") } else { format!("{path}.backup (from defaults)") };
    let inherited = c.backup.as_ref().is_none_or(|b| b.value.is_empty());
    let backup =
        check_backup(&spec.options.backup.clone(), backup_pos, &backup_path, Some(&spec), inherited, engine, diags);

    // The step's own schedule was parsed above; one inherited from defaults is parsed
    // here (its errors were reported once, at `defaults.schedule`).
    let schedule = if !spec.options.schedule.is_empty() {
        own_schedule.or_else(|| Schedule::parse_cron(&spec.options.schedule).ok())
    } else if !spec.options.interval.is_zero() && !spec.options.interval.is_negative() {
        Some(Schedule::every(spec.options.interval))
    } else {
        None
    };

    // Parsed once here (they were checked above), so no image re-parses them.
    let platform = Platform::parse(&spec.platform).ok().filter(|_| !spec.platform.is_empty());
    let platforms = (!spec.platforms.is_empty())
        .then(|| spec.platforms.iter().map(|p| if p.is_empty() { None } else { Platform::parse(p).ok() }).collect());
    let referrer_source = Reference::parse(&spec.options.referrer_source).ok();
    let referrer_target = Reference::parse(&spec.options.referrer_target).ok();
    Some(SyncStep {
        index,
        line: step.pos.line,
        spec,
        compiled: CompiledStep {
            tag_filter,
            repo_filter,
            schedule,
            backup,
            source_ref,
            target_ref,
            platform,
            platforms,
            referrer_source,
            referrer_target,
        },
    })
}
