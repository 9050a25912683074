//! Template data and expansion for config values (TPL-3 … TPL-6).
//!
//! Step references are expanded in regsync's order: `source`,
//! `referrerSource`, `target`, `referrerTarget`, each seeing the values
//! already expanded. Unlike regsync, `.Sync.Target` is updated once `target`
//! is expanded, so `referrerTarget: "{{.Sync.Target}}-sig"` yields the real
//! target, as the documentation's ordering promises (TPL-4 quirk not copied).
//! `backup` is expanded per image with `.Ref`, `.Sync` and `.Step` (TPL-5).

use gotmpl::Value;

use super::model::{Hook, StepSpec};
use crate::matching::TagFilterSpec;
use crate::reference::Reference;
use crate::template::{MapBuilder, TemplateError, Templates, ref_value};

fn tag_spec_value(spec: &TagFilterSpec) -> Value {
    MapBuilder::default()
        .strs("Allow", &spec.allow)
        .strs("Deny", &spec.deny)
        .strs("SemverRange", &spec.semver_range)
        .build()
}

fn hook_value(hook: &Option<Hook>) -> Value {
    match hook {
        None => Value::Nil,
        Some(h) => MapBuilder::default().str("Type", &h.kind).strs("Params", &h.params).build(),
    }
}

/// `.Sync`: the step after defaults, with Go field names (TPL-3).
pub fn sync_value(spec: &StepSpec) -> Value {
    let filters: Vec<Value> = spec
        .options
        .referrer_filters
        .iter()
        .map(|f| {
            let mut annotations = MapBuilder::default();
            for (k, v) in &f.annotations {
                annotations = annotations.str(k, v);
            }
            MapBuilder::default()
                .str("ArtifactType", &f.artifact_type)
                .value("Annotations", annotations.build())
                .build()
        })
        .collect();
    let hooks = match &spec.options.hooks {
        None => Value::Nil,
        Some(h) => MapBuilder::default()
            .value("Pre", hook_value(&h.pre))
            .value("Post", hook_value(&h.post))
            .value("Unchanged", hook_value(&h.unchanged))
            .build(),
    };
    let ratelimit = MapBuilder::default()
        .value("Min", Value::Int(spec.options.ratelimit.min))
        .str("Retry", &spec.options.ratelimit.retry.to_string())
        .build();
    let repos = MapBuilder::default().strs("Allow", &spec.repos.allow).strs("Deny", &spec.repos.deny).build();
    MapBuilder::default()
        .str("Source", &spec.source)
        .str("Target", &spec.target)
        .str("Type", spec.kind.as_str())
        .value("Tags", tag_spec_value(&spec.tags))
        .value("TagSets", Value::List(spec.tag_sets.iter().map(tag_spec_value).collect::<Vec<_>>().into()))
        .value("Repos", repos)
        .bool("DigestTags", spec.options.digest_tags)
        .bool("Referrers", spec.options.referrers)
        .value("ReferrerFilters", Value::List(filters.into()))
        .str("ReferrerSrc", &spec.options.referrer_source)
        .str("ReferrerTgt", &spec.options.referrer_target)
        .bool("ReferrerSlow", spec.options.referrer_slow)
        .str("Platform", &spec.platform)
        .strs("Platforms", &spec.platforms)
        .bool("FastCheck", spec.options.fast_check)
        .bool("ForceRecursive", spec.options.force_recursive)
        .bool("IncludeExternal", spec.options.include_external)
        .str("Backup", &spec.options.backup)
        .str("Interval", &spec.options.interval.to_string())
        .str("Schedule", &spec.options.schedule)
        .value("RateLimit", ratelimit)
        .strs("MediaTypes", &spec.options.media_types)
        .value("Hooks", hooks)
        .build()
}

/// The step fields that hold load-time templates, in expansion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefField {
    /// `source`
    Source,
    /// `referrerSource`
    ReferrerSource,
    /// `target`
    Target,
    /// `referrerTarget`
    ReferrerTarget,
}

impl RefField {
    /// The YAML key.
    pub fn key(self) -> &'static str {
        match self {
            RefField::Source => "source",
            RefField::ReferrerSource => "referrerSource",
            RefField::Target => "target",
            RefField::ReferrerTarget => "referrerTarget",
        }
    }

    fn slot(self, spec: &mut StepSpec) -> &mut String {
        match self {
            RefField::Source => &mut spec.source,
            RefField::ReferrerSource => &mut spec.options.referrer_source,
            RefField::Target => &mut spec.target,
            RefField::ReferrerTarget => &mut spec.options.referrer_target,
        }
    }
}

/// Expands the reference templates of a step in place; returns each failure.
pub fn expand_step(spec: &mut StepSpec, engine: &Templates) -> Vec<(RefField, TemplateError)> {
    let mut errors = Vec::new();
    for field in [RefField::Source, RefField::ReferrerSource, RefField::Target, RefField::ReferrerTarget] {
        let template = field.slot(spec).clone();
        if !template.contains("{{") {
            continue;
        }
        let data = MapBuilder::default().value("Sync", sync_value(spec)).build();
        match engine.render(field.key(), &template, &data) {
            Ok(value) => *field.slot(spec) = value,
            Err(e) => errors.push((field, e)),
        }
    }
    errors
}

/// Data for the backup template: `.Ref` is the target about to be overwritten.
pub fn backup_data(spec: &StepSpec, target: &Reference) -> Value {
    let sync = sync_value(spec);
    MapBuilder::default().value("Ref", ref_value(target)).value("Sync", sync.clone()).value("Step", sync).build()
}

/// Expands a `creds:` field, which gets no data (TPL-6). Errors never quote
/// the value, so a secret that fails to expand is not printed.
pub fn expand_host_field(engine: &Templates, key: &str, value: &str) -> Result<String, TemplateError> {
    engine.render(key, value, &Value::Nil).map_err(|e| mask(e, value))
}

fn mask(e: TemplateError, secret: &str) -> TemplateError {
    let hide = |s: String| {
        if secret.len() >= 4 { s.replace(secret, "[redacted]") } else { s }
    };
    match e {
        TemplateError::Parse(m) => TemplateError::Parse(hide(m)),
        TemplateError::Execute(m) => TemplateError::Execute(hide(m)),
        other => other,
    }
}
