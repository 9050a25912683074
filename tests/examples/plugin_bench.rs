//! Plugin benchmarks: compile and load times of real components per
//! language, the cost of one call (a fresh instance each time), and a tag
//! filter over 10,000 tags. Run with `bench/plugins`.

use std::path::Path;
use std::time::{Duration, Instant};

use regsync::config::PluginSpec;
use regsync::plugin::PluginHost;
use regsync_tests::plugins::{keep_latest_js, keep_latest_py, rust_plugin, webhook_py};

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
        let cache = tempfile::tempdir().unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        let (cold, _) = time(|| PluginHost::new(Some(cache.path().into())).load(&spec(&path)).unwrap());
        let warm = median(
            (0..5).map(|_| time(|| PluginHost::new(Some(cache.path().into())).load(&spec(&path)).unwrap()).0).collect(),
        );
        let plugin = PluginHost::new(Some(cache.path().into())).load(&spec(&path)).unwrap();
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
}
