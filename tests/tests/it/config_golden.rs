//! Golden config tests: `valid/*.yml` print to `*.out` (warnings, then the
//! processed config), `invalid/*.yml` fail with `*.err`. `REGSYNC_BLESS=1`
//! rewrites the expected files.

use std::path::{Path, PathBuf};

use regsync::config::{self, ConfigError, SyncType, TlsMode};
use regsync::duration::GoDuration;
use regsync::template::Templates;
use regsync_tests::golden;

fn golden_dir(kind: &str) -> PathBuf {
    regsync_tests::repo_root().join("tests/golden/config").join(kind)
}

fn cases(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir(kind))
        .expect("golden dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

fn origin(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn load(path: &Path) -> Result<config::Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).unwrap();
    config::load_str(&text, &origin(path), &Templates::default())
}

#[test]
fn valid_configs_match_golden_output() {
    let files = cases("valid");
    assert!(files.len() >= 4);
    for path in files {
        let loaded = load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut out = String::new();
        for w in &loaded.warnings {
            out += &format!("# warning: {}\n", w.render(&origin(&path)));
        }
        out += &config::to_yaml(&loaded.config);
        golden::check(&path.with_extension("out"), &out);
    }
}

#[test]
fn invalid_configs_match_golden_errors() {
    let files = cases("invalid");
    assert!(files.len() >= 25, "only {} invalid cases", files.len());
    for path in files {
        let err = match load(&path) {
            Ok(_) => panic!("{} loaded but should fail", path.display()),
            Err(e) => e.to_string(),
        };
        // Every error line names the line (file:line:col); inside sync: it names the step too.
        for line in err.lines().skip(1) {
            let name = origin(&path);
            assert!(line.trim_start().starts_with(&format!("{name}:")), "{line}");
            let located = line.trim_start()[name.len() + 1..].split(':').next().unwrap();
            assert!(located.parse::<usize>().is_ok(), "no line number in {line}");
            if line.contains(" sync[") || line.contains(": sync[") {
                assert!(line.contains("(source \"") || line.contains("(no source)"), "step not named: {line}");
            }
        }
        golden::check(&path.with_extension("err"), &format!("{err}\n"));
    }
}

#[test]
fn secrets_never_appear_in_errors() {
    for path in cases("invalid") {
        let text = std::fs::read_to_string(&path).unwrap();
        let err = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
        for secret in ["hunter22hunter22"] {
            if text.contains(secret) {
                assert!(!err.contains(secret), "{} leaks a secret:\n{err}", path.display());
            }
        }
    }
}

fn d(s: &str) -> GoDuration {
    GoDuration::parse(s).unwrap()
}

/// TEST-D, config1: exact values after load.
#[test]
fn test_d_config1_values() {
    let c = load(&golden_dir("valid").join("config1.yml")).unwrap().config;
    assert_eq!(c.version, 1);
    assert_eq!(c.creds.len(), 2);
    assert_eq!((c.creds[0].registry.as_str(), c.creds[0].tls), ("registry:5000", TlsMode::Disabled));
    assert_eq!((c.creds[1].registry.as_str(), c.creds[1].tls), ("docker.io", TlsMode::Enabled));
    let df = &c.defaults.options;
    assert_eq!((df.ratelimit.min, df.ratelimit.retry, c.defaults.parallel), (100, d("15m"), 2));
    assert_eq!(
        (df.interval, df.backup.as_str(), c.defaults.cache_count, c.defaults.cache_time),
        (d("60m"), "bkup-{{.Ref.Tag}}", 500, d("5m"))
    );
    assert_eq!(c.sync.len(), 3);
    for s in &c.sync {
        let s = &s.spec.options;
        assert_eq!(s.backup, "bkup-{{.Ref.Tag}}");
        assert_eq!((s.ratelimit.min, s.ratelimit.retry), (100, d("15m")));
        assert_eq!(s.media_types, config::DEFAULT_MEDIA_TYPES.map(String::from).to_vec());
        assert!(
            !s.digest_tags
                && !s.referrers
                && !s.referrer_slow
                && !s.fast_check
                && !s.force_recursive
                && !s.include_external
        );
    }
    let s0 = &c.sync[0].spec;
    assert_eq!(
        (s0.kind, s0.source.as_str(), s0.target.as_str()),
        (SyncType::Image, "busybox:latest", "registry:5000/library/busybox:latest")
    );
    assert_eq!(
        (s0.options.schedule.as_str(), s0.options.interval),
        ("15 3 * * *", GoDuration::ZERO),
        "the schedule blocks the default interval"
    );
    let s1 = &c.sync[1].spec;
    assert_eq!(
        (s1.kind, s1.source.as_str(), s1.target.as_str()),
        (SyncType::Repository, "alpine", "registry:5000/hub/alpine")
    );
    assert_eq!(s1.tags.allow, vec!["3", "3.9", "latest"], "unquoted numbers stay as written");
    assert_eq!((s1.options.interval, s1.options.schedule.as_str()), (d("60m"), ""));
    let s2 = &c.sync[2].spec;
    assert_eq!((s2.kind, s2.target.as_str()), (SyncType::Repository, "registry:5000/gcr/example/repo"));
}

/// TEST-D, config2: the schedule/interval pair and the retry floor.
#[test]
fn test_d_config2_values() {
    let c = load(&golden_dir("valid").join("config2.yml")).unwrap().config;
    assert_eq!(c.version, 1);
    assert_eq!(c.defaults.options.schedule, "15 3 * * *");
    assert_eq!(c.defaults.options.ratelimit.retry, d("5m"), "default retry raised to 5m");
    let (s0, s1) = (&c.sync[0].spec, &c.sync[1].spec);
    assert_eq!(
        (s0.options.interval, s0.options.schedule.as_str()),
        (d("12h"), ""),
        "interval blocks the default schedule"
    );
    assert_eq!((s1.options.schedule.as_str(), s1.options.interval), ("15 3 * * *", GoDuration::ZERO));
    assert_eq!(s1.options.ratelimit.retry, d("5m"), "1m raised to 5m");
    assert!(c.sync[0].compiled.schedule.is_some() && c.sync[1].compiled.schedule.is_some());
}

/// The referrer target template sees the expanded target (TPL-4, decided).
#[test]
fn referrer_target_sees_expanded_target() {
    let c = load(&golden_dir("valid").join("everything.yml")).unwrap().config;
    assert_eq!(c.sync[0].spec.options.referrer_target, "registry.example.com:5000/app-signatures");
    assert!(
        !c.sync[0].spec.options.fast_check && c.sync[1].spec.options.fast_check,
        "explicit false beats the fastCopy default"
    );
    assert_eq!(c.sync[1].spec.options.referrer_filters, vec![], "explicit [] keeps no filters");
    assert_eq!(c.sync[0].spec.options.referrer_filters.len(), 1);
}

/// The shipped examples load: the quickstart and the config inside the Kubernetes ConfigMap.
#[test]
fn shipped_example_configs_are_valid() {
    let root = regsync_tests::repo_root();
    let quickstart = std::fs::read_to_string(root.join("examples/quickstart.yml")).unwrap();
    let loaded = config::load_str(&quickstart, "quickstart.yml", &Templates::default()).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let configmap = std::fs::read_to_string(root.join("examples/kubernetes/base/configmap.yaml")).unwrap();
    let doc = config::yaml::parse(&configmap).unwrap().unwrap();
    let config::yaml::Kind::Map(top) = &doc.kind else { panic!("configmap is a mapping") };
    let data = &top.iter().find(|(k, _)| k.scalar() == Some("data")).unwrap().1;
    let config::yaml::Kind::Map(files) = &data.kind else { panic!("data is a mapping") };
    let text = files[0].1.scalar().unwrap();
    let loaded = config::load_str(text, "configmap regsync.yml", &Templates::default()).unwrap();
    assert_eq!(loaded.config.sync.len(), 2);
    assert!(loaded.config.sync.iter().all(|s| s.compiled.schedule.is_some()), "every step is scheduled");
}
