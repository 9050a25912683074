//! Plugins as OCI artifacts: published with `regsync plugin push` to a real
//! registry (and a layout), loaded by tag and by digest to filter a real
//! sync, kept by digest so a restart needs no registry, and refused when
//! tampered with or not a component.

use std::path::Path;

use regsync_tests::bin::{Run, run_in_env};
use regsync_tests::fixtures::{self, AMD64};
use regsync_tests::oci::LayoutReader;
use regsync_tests::plugins::rust_plugin;
use regsync_tests::registry::Registry;
use serde_json::Value;

/// A layout with one small image per tag.
fn source_layout(dir: &Path, tags: &[&str]) -> String {
    let path = dir.join("src");
    let mut l = fixtures::Layout::create(&path);
    for tag in tags {
        let img = l.image(AMD64, &[("tag", tag.as_bytes())]);
        l.tag(tag, &img);
    }
    l.save();
    path.display().to_string()
}

struct World {
    dir: tempfile::TempDir,
    /// Where plugins are pushed; `None` once stopped.
    plugins: Option<Registry>,
    plugin_host: String,
    target: Registry,
    source: String,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let source = source_layout(dir.path(), &["1.0", "1.1", "2.0", "2.1"]);
        let plugins = Registry::start();
        World { plugin_host: plugins.host.clone(), plugins: Some(plugins), target: Registry::start(), source, dir }
    }

    fn creds(&self) -> String {
        format!(
            "creds:\n  - {{registry: \"{}\", tls: disabled}}\n  - {{registry: \"{}\", tls: disabled}}\ndefaults:\n  skipDockerConfig: true\n",
            self.plugin_host, self.target.host
        )
    }

    /// Runs regsync with `config` and a plugin cache of its own (`cache`).
    fn run(&self, config: &str, args: &[&str], cache: &str) -> Run {
        let path = self.dir.path().join("regsync.yml");
        std::fs::write(&path, config).unwrap();
        let mut all = args.to_vec();
        all.extend(["-c", path.to_str().unwrap()]);
        let cache = self.dir.path().join(cache).display().to_string();
        run_in_env(self.dir.path(), &all, None, &[("REGSYNC_PLUGIN_CACHE", cache)])
    }

    /// A config syncing the layout through the `keep-latest` plugin at `reference`.
    fn sync_with(&self, reference: &str, repo: &str) -> String {
        format!(
            "{}plugins:\n  - name: keep-latest\n    ref: \"{reference}\"\n    config: {{count: \"2\"}}\nsync:\n  - source: ocidir://{}\n    target: {}/{repo}\n    type: repository\n    filters: [keep-latest]\n",
            self.creds(),
            self.source,
            self.target.host
        )
    }

    fn push(&self, file: &Path, reference: &str) -> String {
        let r = self.run(&self.creds(), &["plugin", "push", file.to_str().unwrap(), reference], "push-cache");
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout.trim().to_string()
    }

    fn target_tags(&self, repo: &str) -> Vec<String> {
        self.target.api().tag_digests(repo).into_keys().collect()
    }
}

fn oci_entries(cache: &Path) -> usize {
    std::fs::read_dir(cache.join("oci")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_pushed_plugin_loads_by_digest_and_by_tag_and_filters_a_sync() {
    let w = World::new();
    let wasm = rust_plugin("keep-latest");
    let pinned = w.push(&wasm, &format!("{}/plugins/keep-latest:1.0", w.plugin_host));
    let (_, digest) = pinned.split_once('@').expect("push prints the pinned reference");
    assert!(digest.starts_with("sha256:"), "{pinned}");

    // The artifact is in the format the component tooling uses.
    let (_, manifest, _) = w.plugins.as_ref().unwrap().api().manifest("plugins/keep-latest", "1.0").unwrap();
    let m: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(m["config"]["mediaType"], "application/vnd.wasm.config.v0+json");
    assert_eq!(m["layers"].as_array().unwrap().len(), 1);
    assert_eq!(m["layers"][0]["mediaType"], "application/wasm");
    let layer = w
        .plugins
        .as_ref()
        .unwrap()
        .api()
        .blob("plugins/keep-latest", m["layers"][0]["digest"].as_str().unwrap())
        .unwrap();
    assert_eq!(layer, std::fs::read(&wasm).unwrap());
    let config: Value = serde_json::from_slice(
        &w.plugins
            .as_ref()
            .unwrap()
            .api()
            .blob("plugins/keep-latest", m["config"]["digest"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(config["component"]["target"], "regsync:plugin/tag-filter-plugin@0.2.0");
    assert!(config["component"]["exports"].as_array().unwrap().iter().any(|e| e == "regsync:plugin/tag-filter@0.2.0"));
    assert!(config["component"]["imports"].as_array().unwrap().iter().any(|e| e == "regsync:plugin/host@0.2.0"));

    // By digest: the newest two tags land.
    let r = w.run(&w.sync_with(&pinned, "pinned"), &["once"], "cache");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(w.target_tags("pinned"), ["2.0", "2.1"]);
    assert!(!r.stderr.contains("not pinned"), "{}", r.stderr);
    assert_eq!(oci_entries(&w.dir.path().join("cache")), 1, "kept by digest");

    // By tag: it works, warns that it is not pinned, and `config` shows what it resolved to.
    let by_tag = w.sync_with(&format!("{}/plugins/keep-latest:1.0", w.plugin_host), "tagged");
    let r = w.run(&by_tag, &["once"], "cache");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(w.target_tags("tagged"), ["2.0", "2.1"]);
    assert!(r.stderr.contains("is not pinned by a digest; it resolved to sha256:"), "{}", r.stderr);
    let shown = w.run(&by_tag, &["config"], "cache");
    // The emitter may fold the long value; what matters is the pinned reference.
    let printed: String = shown.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(printed.contains(&format!("ref: >- {pinned}")) || printed.contains(&format!("ref: {pinned}")), "{printed}");

    // A layout works as a plugin registry too.
    let layout = format!("ocidir://{}/plugin-layout:1.0", w.dir.path().display());
    let from_layout = w.push(&wasm, &layout);
    assert_eq!(from_layout.split_once('@').unwrap().1, digest, "the same artifact, the same digest");
    let r = w.run(&w.sync_with(&from_layout, "layout"), &["once"], "layout-cache");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(w.target_tags("layout"), ["2.0", "2.1"]);

    // The registry gone: the pinned plugin comes from the cache; a tag cannot be resolved.
    let mut w = w;
    drop(w.plugins.take());
    let r = w.run(&w.sync_with(&pinned, "offline"), &["once"], "cache");
    assert_eq!(r.code, 0, "a cache hit needs no registry: {}", r.stderr);
    assert_eq!(w.target_tags("offline"), ["2.0", "2.1"]);
    let tag_gone = format!("{}/plugins/keep-latest:1.0", w.plugin_host);
    let r = w.run(&w.sync_with(&tag_gone, "offline-tag"), &["once"], "cache");
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("plugins[0].ref") && r.stderr.contains(&tag_gone), "{}", r.stderr);
    assert!(w.target_tags("offline-tag").is_empty(), "nothing synced with the config rejected");
}

#[test]
fn tampered_and_foreign_artifacts_are_refused_and_nothing_is_cached() {
    let w = World::new();
    let pinned = w.push(&rust_plugin("keep-latest"), &format!("{}/plugins/tamper:1.0", w.plugin_host));
    let (_, manifest, _) = w.plugins.as_ref().unwrap().api().manifest("plugins/tamper", "1.0").unwrap();
    let m: Value = serde_json::from_slice(&manifest).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    // Flip a byte of the stored component behind the registry's back.
    let data = w
        .plugins
        .as_ref()
        .unwrap()
        .storage_dir()
        .join(format!("docker/registry/v2/blobs/sha256/{}/{layer}/data", &layer[..2]));
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let r = w.run(&w.sync_with(&pinned, "tampered"), &["once"], "tamper-cache");
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains(&format!("the manifest says sha256:{layer}")), "{}", r.stderr);
    assert_eq!(oci_entries(&w.dir.path().join("tamper-cache")), 0, "nothing cached");
    assert!(w.target_tags("tampered").is_empty());

    // An ordinary image where a plugin was expected.
    let layout = w.dir.path().join("image");
    let mut l = fixtures::Layout::create(&layout);
    let img = l.image(AMD64, &[("x", b"not wasm")]);
    l.tag("1", &img);
    l.save();
    let reader = LayoutReader::open(&layout);
    w.plugins
        .as_ref()
        .unwrap()
        .api()
        .push_from_layout(&reader, "plugins/image", &reader.tags()["1"], Some("1"))
        .unwrap();
    let image_ref = format!("{}/plugins/image:1", w.plugin_host);
    let r = w.run(&w.sync_with(&image_ref, "image"), &["once"], "image-cache");
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(&format!(
            "{image_ref} is not a WebAssembly component artifact: config media type \"application/vnd.oci.image.config.v1+json\""
        )),
        "{}",
        r.stderr
    );

    // Larger than the limit.
    let pinned_ok = w.push(&rust_plugin("keep-latest"), &format!("{}/plugins/big:1.0", w.plugin_host));
    let path = w.dir.path().join("regsync.yml");
    std::fs::write(&path, w.sync_with(&pinned_ok, "big")).unwrap();
    let r = run_in_env(
        w.dir.path(),
        &["once", "-c", path.to_str().unwrap()],
        None,
        &[
            ("REGSYNC_PLUGIN_MAX_BYTES", "1000".to_string()),
            ("REGSYNC_PLUGIN_CACHE", w.dir.path().join("big-cache").display().to_string()),
        ],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("more than the limit of 1000"), "{}", r.stderr);
}

/// A server resolves a plugin's tag again on reload: a tag moved to a new
/// release takes effect at the next SIGHUP.
#[test]
fn a_reload_resolves_a_moved_tag() {
    use regsync_tests::bin::{ServerProcess, wait_for};
    use regsync_tests::plugins::keep_latest_with_default;
    use std::time::Duration;

    let w = World::new();
    let tag = format!("{}/plugins/keep:moving", w.plugin_host);
    let first = w.push(&keep_latest_with_default(1), &tag);
    let config = format!(
        "{}plugins:\n  - name: keep\n    ref: \"{tag}\"\nsync:\n  - {{source: \"ocidir://{}\", target: \"{}/moving\", type: repository, interval: 1s, filters: [keep]}}\n",
        w.creds(),
        w.source,
        w.target.host
    );
    let path = w.dir.path().join("server.yml");
    std::fs::write(&path, config).unwrap();
    let mut server = ServerProcess::start(w.dir.path(), &["-c", path.to_str().unwrap()]);
    assert!(wait_for(Duration::from_secs(30), || w.target_tags("moving") == ["2.1"]), "{}", server.log());

    let second = w.push(&keep_latest_with_default(3), &tag);
    assert_ne!(first, second, "a new release, a new digest");
    server.signal("HUP");
    assert!(wait_for(Duration::from_secs(30), || w.target_tags("moving") == ["1.1", "2.0", "2.1"]), "{}", server.log());
    let log = server.log();
    assert!(log.contains(second.split_once('@').unwrap().1), "the new digest was resolved: {log}");
    assert!(log.contains("plugins_reloaded=true"), "{log}");
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(20)), Some(0));
}

#[test]
fn a_plugin_entry_takes_a_path_or_a_ref() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = rust_plugin("keep-latest");
    let config = format!(
        "plugins:\n  - name: both\n    path: \"{}\"\n    ref: registry.example/p:1\n  - name: neither\n  - name: bad\n    ref: \"registry.example/UPPER:1\"\nsync: []\n",
        wasm.display()
    );
    let path = dir.path().join("regsync.yml");
    std::fs::write(&path, config).unwrap();
    let r = run_in_env(dir.path(), &["config", "-c", path.to_str().unwrap()], None, &[]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(":4:") && r.stderr.contains("plugins[0].ref: a plugin has a path or a ref, not both"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("plugins[1]: a plugin needs a path to its .wasm component, or a ref to an OCI artifact"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("plugins[2].ref: invalid ref"), "{}", r.stderr);
}

/// A plugin pushed by a standard OCI artifact tool (oras-py, with the Wasm
/// config and layer media types, as `oras push` is told to) loads by digest
/// and filters a real sync.
#[test]
fn a_plugin_pushed_by_oras_loads_by_digest() {
    let w = World::new();
    let work = w.dir.path().join("oras");
    std::fs::create_dir(&work).unwrap();
    std::fs::copy(rust_plugin("keep-latest"), work.join("keep_latest.wasm")).unwrap();
    std::fs::write(work.join("config.json"), br#"{"architecture":"wasm","os":"wasip2"}"#).unwrap();
    let target = format!("{}/plugins/oras-pushed:1.0", w.plugin_host);
    let script = format!(
        "import oras.client\n\
         c = oras.client.OrasClient(insecure=True)\n\
         c.push(target='{target}', files=['keep_latest.wasm:application/wasm'],\n\
                manifest_config='config.json:application/vnd.wasm.config.v0+json', quiet=True)\n"
    );
    let out = std::process::Command::new(regsync_tests::plugins::oras_python())
        .args(["-c", &script])
        .current_dir(&work)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let api = w.plugins.as_ref().unwrap().api();
    let (_, manifest, _) = api.manifest("plugins/oras-pushed", "1.0").unwrap();
    let m: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(
        m["layers"][0]["annotations"]["org.opencontainers.image.title"], "keep_latest.wasm",
        "pushed by oras: {m}"
    );
    let digest = regsync_tests::oci::sha256_digest(&manifest);
    let r = w.run(&w.sync_with(&format!("{target}@{digest}"), "oras"), &["once"], "oras-cache");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(w.target_tags("oras"), ["2.0", "2.1"]);
}
