//! Plugin benchmarks: compile and load times of real components per
//! language, the cost of one call (a fresh instance each time), a tag
//! filter over 10,000 tags, and a gate's decision on one image. Run with
//! `bench/plugins`.

use std::path::Path;
use std::time::{Duration, Instant};

use regsync::config::PluginSpec;
use regsync::plugin::PluginHost;
use std::collections::BTreeMap;
use std::sync::Arc;

use regsync::pipeline::gate::{Decision, ImageFacts, Referrer, ReferrerReader};
use regsync_tests::plugins::{keep_latest_js, keep_latest_py, require_sbom_py, rust_plugin, webhook_py};

fn spec(path: &Path) -> PluginSpec {
    PluginSpec {
        name: "bench".into(),
        path: path.display().to_string(),
        reference: String::new(),
        config: [("count".to_string(), "5".to_string())].into(),
        allow_hosts: Vec::new(),
        timeout: regsync::duration::GoDuration::from_secs(60),
        memory: 256,
        pos: Default::default(),
    }
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

/// A component loaded as the benchmark measures it: its size, its first
/// load (compile), the median of five loads from the cache, and the plugin.
struct Loaded {
    size: u64,
    cold: Duration,
    warm: Duration,
    plugin: std::sync::Arc<regsync::plugin::Plugin>,
}

fn load(path: &Path) -> Loaded {
    let cache = tempfile::tempdir().unwrap();
    let host = || PluginHost::new(Some(cache.path().into()));
    let size = std::fs::metadata(path).unwrap().len();
    let (cold, _) = time(|| host().load(&spec(path)).unwrap());
    let warm = median((0..5).map(|_| time(|| host().load(&spec(path)).unwrap()).0).collect());
    Loaded { size, cold, warm, plugin: host().load(&spec(path)).unwrap() }
}

fn main() {
    let tags: Vec<String> = (0..10_000).map(|i| format!("v{}.{}.{}", i / 1000, (i / 10) % 100, i % 10)).collect();
    // Tags that are no versions: the filter drops each at once, so this is
    // mostly the cost of passing 10,000 strings into the instance.
    let junk: Vec<String> = (0..10_000).map(|i| format!("latest-{i}")).collect();
    println!(
        "| plugin | language | size | cold compile | warm load | call (fresh instance) | filter 10,000 tags | 10,000 non-version tags |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let plugins = [
        ("keep-latest", "Rust", rust_plugin("keep-latest"), true),
        ("keep-latest-py", "Python", keep_latest_py(), true),
        ("keep-latest-js", "JavaScript", keep_latest_js(), true),
        ("webhook-py", "Python", webhook_py(), false),
    ];
    for (name, language, path, filter) in plugins {
        let Loaded { size, cold, warm, plugin } = load(&path);
        let (call, filter10k, pass10k) = if filter {
            let call = median((0..20).map(|_| time(|| plugin.filter_tags("r", &[]).unwrap()).0).collect());
            let (first, kept) = time(|| plugin.filter_tags("r", &tags).unwrap());
            assert_eq!(kept, ["v9.99.9", "v9.99.8", "v9.99.7", "v9.99.6", "v9.99.5"]);
            let mut runs: Vec<Duration> = (0..10).map(|_| time(|| plugin.filter_tags("r", &tags).unwrap()).0).collect();
            runs.push(first);
            let pass = median((0..10).map(|_| time(|| plugin.filter_tags("r", &junk).unwrap()).0).collect());
            (ms(call), ms(median(runs)), ms(pass))
        } else {
            ("-".to_string(), "-".to_string(), "-".to_string())
        };
        println!(
            "| {name} | {language} | {:.1} MB | {} | {} | {call} | {filter10k} | {pass10k} |",
            size as f64 / 1e6,
            ms(cold),
            ms(warm)
        );
    }
    gates();
}

/// `read-referrer` from memory: one SBOM referrer, its manifest and payload.
struct Memory(BTreeMap<String, Vec<u8>>);

impl ReferrerReader for Memory {
    fn read(&self, digest: &str, layer: Option<u32>, _max: u64) -> Result<Vec<u8>, String> {
        let key = layer.map_or(digest.to_string(), |l| format!("{digest}/{l}"));
        self.0.get(&key).cloned().ok_or_else(|| format!("no {key}"))
    }
}

/// One decision per call, in a fresh instance of a loaded (warm) component,
/// on an image a day old with one SPDX referrer: what a gate adds per image
/// copied, beyond the facts' reads (the image config and the referrers
/// listing, plus what the gate itself reads).
fn gates() {
    let sbom = format!("sha256:{}", "a".repeat(64));
    let created = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let facts = ImageFacts {
        source: "registry.example/app:v1".into(),
        target: "mirror.example/app:v1".into(),
        digest: format!("sha256:{}", "b".repeat(64)),
        created: Some(created),
        platforms: vec!["linux/amd64".into()],
        referrers: vec![Referrer {
            digest: sbom.clone(),
            artifact_type: "application/spdx+json".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let manifest =
        serde_json::json!({"layers": [{"mediaType": "application/spdx+json", "digest": "sha256:0", "size": 1}]});
    let payload = serde_json::json!({"spdxVersion": "SPDX-2.3", "packages": []});
    let reader: Arc<dyn ReferrerReader> = Arc::new(Memory(BTreeMap::from([
        (sbom.clone(), manifest.to_string().into_bytes()),
        (format!("{sbom}/0"), payload.to_string().into_bytes()),
    ])));
    println!();
    println!("| gate | language | size | cold compile | warm load | decide, one image (fresh instance) |");
    println!("|---|---|---|---|---|---|");
    for (name, language, path) in
        [("max-age", "Rust", rust_plugin("max-age")), ("require-sbom-py", "Python", require_sbom_py())]
    {
        let Loaded { size, cold, warm, plugin } = load(&path);
        let settings = BTreeMap::from([("days".to_string(), "30".to_string())]);
        let decide = || plugin.decide(&facts, &settings, reader.clone()).unwrap();
        assert_eq!(decide(), Decision::Allow, "{name}");
        let call = median((0..50).map(|_| time(decide).0).collect());
        println!("| {name} | {language} | {:.1} MB | {} | {} | {} |", size as f64 / 1e6, ms(cold), ms(warm), ms(call));
    }
}
