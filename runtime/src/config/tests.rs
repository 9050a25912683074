//! Config loading: YAML rules, defaults, validation and printing.

use super::*;
use crate::duration::GoDuration;
use crate::matching::{RepoFilterSpec, TagFilterSpec};

fn load(yaml: &str) -> Loaded {
    load_str(yaml, "test.yml", &Templates::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(yaml: &str) -> Vec<String> {
    match load_str(yaml, "test.yml", &Templates::default()) {
        Ok(_) => panic!("expected errors for:\n{yaml}"),
        Err(ConfigError::Invalid { origin, diagnostics }) => {
            diagnostics.iter().filter(|d| d.severity == Severity::Error).map(|d| d.render(&origin)).collect()
        }
        Err(e) => panic!("{e}"),
    }
}

fn warnings(loaded: &Loaded) -> Vec<String> {
    loaded.warnings.iter().map(|d| d.render("test.yml")).collect()
}

#[test]
fn empty_config_is_valid_yaml_1_cfg_4() {
    let c = load("").config;
    assert_eq!((c.version, c.sync.len(), c.creds.len()), (1, 0, 0));
    assert_eq!(load("# nothing\n").config.version, 1);
}

#[test]
fn version_cfg_1() {
    assert_eq!(load("version: 1").config.version, 1);
    assert_eq!(load("version: 0").config.version, 1);
    assert_eq!(errors("version: 2"), vec!["test.yml:1:10: version: unsupported config version 2"]);
    assert_eq!(errors("version: \"2\""), vec!["test.yml:1:10: version: unsupported config version 2"]);
}

#[test]
fn scalars_become_text_as_written_yaml_7() {
    let c = load(
        "sync:\n- source: alpine\n  target: r:5000/alpine\n  type: repository\n  tags:\n    allow: [3, 3.9, 3.10, true, 1e3]\n",
    )
    .config;
    assert_eq!(c.sync[0].spec.tags.allow, vec!["3", "3.9", "3.10", "true", "1e3"]);
}

#[test]
fn quoted_numbers_and_strict_booleans_yaml_8_yaml_9() {
    assert_eq!(load("defaults:\n  parallel: \"4\"\n").config.defaults.parallel, 4);
    assert_eq!(
        errors("defaults:\n  referrers: \"yes\"\n"),
        vec!["test.yml:2:14: defaults.referrers: expected a boolean (true or false), found a string"]
    );
    assert_eq!(
        errors("defaults:\n  parallel: many\n"),
        vec!["test.yml:2:13: defaults.parallel: expected an integer, found a string"]
    );
}

#[test]
fn durations_yaml_5() {
    let d = load("defaults:\n  interval: 1h30m\n  cacheTime: \"1.5h\"\n").config.defaults;
    assert_eq!(d.options.interval, GoDuration::parse("90m").unwrap());
    assert_eq!(d.cache_time, GoDuration::parse("90m").unwrap());
    assert_eq!(
        errors("defaults:\n  interval: 3600\n"),
        vec![
            "test.yml:2:13: defaults.interval: expected a Go duration such as \"1h30m\", found the number 3600; add a unit"
        ]
    );
    assert_eq!(
        errors("defaults:\n  interval: 1d\n"),
        vec!["test.yml:2:13: defaults.interval: time: unknown unit \"d\" in duration \"1d\""]
    );
    assert_eq!(load("defaults:\n  interval:\n").config.defaults.options.interval, GoDuration::ZERO);
}

#[test]
fn cred_expire_takes_durations_and_nanoseconds_yaml_6() {
    let c =
        load("creds:\n- registry: a.io\n  credExpire: 1h15m\n- registry: b.io\n  credExpire: 3600000000000\n").config;
    assert_eq!(c.creds[0].cred_expire, GoDuration::parse("75m").unwrap());
    assert_eq!(c.creds[1].cred_expire, GoDuration::parse("1h").unwrap());
}

#[test]
fn mapping_where_list_expected_yaml_10() {
    assert_eq!(errors("sync:\n  a: b\n"), vec!["test.yml:2:3: sync: expected a sequence, found a mapping"]);
}

#[test]
fn unknown_keys_warn_and_x_keys_are_silent() {
    let loaded = load(
        "x-anchor: &a 1\nversion: 1\ncolour: red\ndefaults:\n  fastcopy: true\n  x-note: hi\nsync:\n- source: a\n  target: r:5000/a\n  type: image\n  tagz: {}\n",
    );
    assert_eq!(
        warnings(&loaded),
        vec![
            "test.yml:3:9: colour: unknown key, ignored",
            "test.yml:5:13: defaults.fastcopy: unknown key, ignored",
            "test.yml:11:9: sync[0] (source \"a\") tagz: unknown key, ignored",
        ]
    );
}

#[test]
fn fast_copy_means_fast_check() {
    let c = load("defaults:\n  fastCopy: true\nsync:\n- {source: a, target: r:5000/a, type: image}\n- {source: b, target: r:5000/b, type: image, fastCheck: false}\n").config;
    assert!(c.defaults.options.fast_check);
    assert!(c.sync[0].spec.options.fast_check);
    assert!(!c.sync[1].spec.options.fast_check);
}

#[test]
fn creds_without_registry_are_dropped_host_1() {
    let loaded = load("creds:\n- name: docker.io\n  user: me\n- registry: r:5000\n  tls: Disabled\n");
    assert_eq!(loaded.config.creds.len(), 1);
    assert_eq!(loaded.config.creds[0].tls, TlsMode::Disabled);
    assert!(warnings(&loaded).iter().any(|w| w.contains("Ignoring registry config without a name")));
}

#[test]
fn docker_hub_creds_normalise_host_4() {
    let c = load("creds:\n- registry: https://index.docker.io/v1/\n- registry: index.docker.io\n- registry: r:5000\n")
        .config;
    assert_eq!((c.creds[0].registry.as_str(), c.creds[0].hostname.as_str()), ("docker.io", "registry-1.docker.io"));
    assert_eq!(c.creds[1].registry, "docker.io");
    assert_eq!((c.creds[2].registry.as_str(), c.creds[2].hostname.as_str()), ("r:5000", "r:5000"));
    assert_eq!(c.creds[2].req_concurrent, 3);
    assert_eq!(c.creds[2].blob_max, -1);
}

#[test]
fn bad_tls_value_host_2() {
    assert_eq!(
        errors("creds:\n- registry: r:5000\n  tls: maybe\n"),
        vec!["test.yml:3:8: creds[0].tls: unknown TLS value \"maybe\": use enabled, insecure or disabled"]
    );
}

#[test]
fn all_step_errors_are_reported_together() {
    let errs = errors(
        "sync:\n- source: a\n  target: r:5000/a\n  type: mirror\n- source: b\n  target: r:5000/b\n  type: repository\n  tags:\n    allow: [\"(\"]\n    semverRange: [\">= 1\"]\n  schedule: \"0 0 0 * * *\"\n",
    );
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(errs[0].starts_with("test.yml:4:9: sync[0] (source \"a\") type: unknown type \"mirror\""));
    assert!(errs[1].starts_with("test.yml:9:13: sync[1] (source \"b\") tags.allow[0]: invalid allow pattern \"(\""));
    assert!(
        errs[2]
            .starts_with("test.yml:10:19: sync[1] (source \"b\") tags.semverRange[0]: invalid semver range \">= 1\"")
    );
    assert!(errs[3].starts_with("test.yml:11:13: sync[1] (source \"b\") schedule: invalid schedule"));
}

#[test]
fn secrets_are_redacted_when_printed() {
    let c = load("creds:\n- registry: r:5000\n  user: me\n  pass: hunter22\n  token: tok3n\n  clientKey: KEY\n").config;
    let out = to_yaml(&c);
    assert!(!out.contains("hunter22") && !out.contains("tok3n") && !out.contains("KEY\n"), "{out}");
    assert!(out.contains("pass: '[redacted]'") || out.contains("pass: \"[redacted]\""), "{out}");
    assert_eq!(c.creds[0].pass.expose(), "hunter22");
    assert!(!format!("{:?}", c.creds[0]).contains("hunter22"));
}

#[test]
fn secret_template_errors_do_not_print_the_secret() {
    let errs = errors("creds:\n- registry: r:5000\n  pass: \"hunter22{{ nosuch }}\"\n");
    assert_eq!(errs.len(), 1);
    assert!(!errs[0].contains("hunter22"), "{}", errs[0]);
}

#[test]
fn printed_config_loads_back_to_the_same_steps() {
    let yaml = "defaults:\n  interval: 1h\n  referrerFilters: [{artifactType: sbom, annotations: {a: b}}]\nsync:\n- source: alpine\n  target: r:5000/hub/{{ .Sync.Source }}\n  type: repository\n  tags: {allow: [\"3.10\"], semverRange: [\">=1\"]}\n  tagSets: [{deny: [x]}]\n  backup: \"bk-{{ .Ref.Tag }}\"\n  platforms: [linux/amd64]\n";
    let first = load(yaml).config;
    let printed = to_yaml(&first);
    let second = load(&printed).config;
    assert_eq!(first.sync[0].spec, second.sync[0].spec, "{printed}");
    assert_eq!(first.defaults, second.defaults);
    assert_eq!(second.sync[0].spec.target, "r:5000/hub/alpine");
}

#[test]
fn step_only_fields_never_come_from_defaults_def_10() {
    let loaded = load(
        "defaults:\n  type: image\n  source: a\n  target: r:5000/a\n  tags: {allow: [v1]}\n  tagSets: [{allow: [v2]}]\n  repos: {allow: [x]}\n  platform: linux/arm64\n  platforms: [linux/amd64]\n  referrers: true\nsync:\n- source: b\n  target: r:5000/b\n  type: repository\n",
    );
    let spec = &loaded.config.sync[0].spec;
    assert_eq!((spec.source.as_str(), spec.target.as_str(), spec.kind), ("b", "r:5000/b", SyncType::Repository));
    assert_eq!(spec.tags, TagFilterSpec::default());
    assert!(spec.tag_sets.is_empty() && spec.platform.is_empty() && spec.platforms.is_empty());
    assert_eq!(spec.repos, RepoFilterSpec::default());
    assert!(spec.options.referrers, "a defaults key that is a step option still applies");
    let unknown: Vec<String> = warnings(&loaded).into_iter().filter(|w| w.contains("unknown key")).collect();
    assert_eq!(unknown.len(), 8, "each step-only key under defaults is reported: {unknown:?}");
}
