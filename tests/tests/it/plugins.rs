//! WebAssembly plugins end to end: real components built from `plugins/`,
//! loaded by the real `regsync` binary, syncing between real registries.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use regsync_tests::bin::{Run, ServerProcess, once_with, plain_creds, wait_for};
use regsync_tests::fixtures::{self, AMD64};
use regsync_tests::oci::LayoutReader;
use regsync_tests::plugins::{keep_latest_with_default, rust_plugin, webhook_py};
use regsync_tests::registry::Registry;
use regsync_tests::webhook::Receiver;

/// Pushes one small distinct image per tag to `repo`; tag → digest.
fn seed(reg: &Registry, dir: &Path, repo: &str, tags: &[&str], salt: &str) -> BTreeMap<String, String> {
    let layout_dir = dir.join(format!("layout-{}-{salt}", repo.replace('/', "-")));
    let mut l = fixtures::Layout::create(&layout_dir);
    for tag in tags {
        let img = l.image(AMD64, &[("tag", format!("{repo} {tag} {salt}").as_bytes())]);
        l.tag(tag, &img);
    }
    l.save();
    let reader = LayoutReader::open(&layout_dir);
    let mut out = BTreeMap::new();
    for (tag, desc) in reader.tags() {
        reg.api().push_from_layout(&reader, repo, &desc, Some(&tag)).unwrap();
        out.insert(tag, desc.digest);
    }
    out
}

/// The repository's tags and digests on a registry.
/// The target's tags; empty while a server is half way through writing one.
fn tags_of(reg: &Registry, repo: &str) -> BTreeMap<String, String> {
    reg.api().settled_tag_digests(repo).unwrap_or_default()
}

fn pick(all: &BTreeMap<String, String>, tags: &[&str]) -> BTreeMap<String, String> {
    tags.iter().map(|t| (t.to_string(), all[*t].clone())).collect()
}

fn creds(hosts: &[&str]) -> String {
    plain_creds(hosts)
}

fn plugin(name: &str, path: &Path, extra: &str) -> String {
    format!("  - name: {name}\n    path: \"{}\"\n{extra}", path.display())
}

fn once(dir: &Path, config: &str) -> Run {
    once_with(dir, config, &[])
}

fn ok(r: Run) -> Run {
    r.expect_ok()
}

const SEMVER_TAGS: [&str; 8] = ["v0.9.0", "v1.0.0", "v1.2.0", "v1.10.0", "v2.0.0", "v2.1.0-rc.1", "latest", "v1.9.3"];

#[test]
fn keep_latest_copies_exactly_the_newest_n_semver_tags() {
    let (src, dst) = (Registry::start(), Registry::start());
    let dir = tempfile::tempdir().unwrap();
    let source = seed(&src, dir.path(), "app", &SEMVER_TAGS, "a");
    let keep_latest = rust_plugin("keep-latest");
    let config = format!(
        "{}defaults:\n  skipDockerConfig: true\nplugins:\n{}sync:\n  - source: {}/app\n    target: {}/app\n    type: repository\n    tags: {{semverRange: [\">=1.0.0\"]}}\n    filters: [keep-latest]\n",
        creds(&[&src.host, &dst.host]),
        plugin("keep-latest", &keep_latest, "    config: {count: \"3\", prerelease: \"false\"}\n"),
        src.host,
        dst.host
    );
    ok(once(dir.path(), &config));
    // v0.9.0 is outside the range, latest is no version, the rc is a pre-release:
    // of the rest, the three newest by semver (not by text: v1.10.0 > v1.9.3).
    assert_eq!(tags_of(&dst, "app"), pick(&source, &["v2.0.0", "v1.10.0", "v1.9.3"]));
    for tag in ["v2.0.0", "v1.10.0", "v1.9.3"] {
        assert!(dst.api().verify_tag("app", tag).is_empty());
    }
}

#[test]
fn template_plugin_functions_work_in_target_and_backup() {
    let (src, dst) = (Registry::start(), Registry::start());
    let dir = tempfile::tempdir().unwrap();
    let first = seed(&src, dir.path(), "app", &["v2.3.4"], "first");
    let fns = rust_plugin("semver-fns");
    let config = format!(
        "{}defaults:\n  skipDockerConfig: true\nplugins:\n{}sync:\n  - source: {s}/app:v2.3.4\n    target: '{d}/app:v{{{{ semverMajor \"v2.3.4\" }}}}-{{{{ sha256 \"regsync\" | printf \"%.8s\" }}}}'\n    type: image\n    backup: 'bak-{{{{ semverMajor .Ref.Tag }}}}'\n",
        creds(&[&src.host, &dst.host]),
        plugin("fns", &fns, ""),
        s = src.host,
        d = dst.host
    );
    ok(once(dir.path(), &config));
    // sha256("regsync") starts with these 8 hex digits.
    let tag = "v2-55c9fb02";
    assert_eq!(tags_of(&dst, "app"), BTreeMap::from([(tag.to_string(), first["v2.3.4"].clone())]));
    // The source tag moves: the old target is backed up under bak-2 (semverMajor of "v2-…").
    let second = seed(&src, dir.path(), "app", &["v2.3.4"], "second");
    assert_ne!(first, second);
    ok(once(dir.path(), &config));
    assert_eq!(
        tags_of(&dst, "app"),
        BTreeMap::from([(tag.to_string(), second["v2.3.4"].clone()), ("bak-2".to_string(), first["v2.3.4"].clone())])
    );
}

/// A webhook notifier, in whichever language: every copied image, the failed
/// one and the step ends are posted; a host not on `allowHosts` gets nothing.
fn webhook_posts_copies_and_failures_and_is_refused_other_hosts(webhook: &Path) {
    let (src, dst) = (Registry::start(), Registry::start());
    let dir = tempfile::tempdir().unwrap();
    let source = seed(&src, dir.path(), "web", &["1.0", "1.1", "2.0"], "w");
    let receiver = Receiver::start();
    let config = |allow: u16| {
        format!(
            "{}defaults:\n  skipDockerConfig: true\n  notify: [hook]\nplugins:\n{}sync:\n  - source: {}/web\n    target: {}/web\n    type: repository\n  - source: {}/web:9.9\n    target: {}/web:9.9\n    type: image\n",
            creds(&[&src.host, &dst.host]),
            plugin(
                "hook",
                webhook,
                &format!(
                    "    config: {{url: \"http://127.0.0.1:{}/hook\", events: \"image-copied,image-failed,sync-finished,sync-failed\"}}\n    allowHosts: [\"127.0.0.1:{allow}\"]\n    timeout: 10s\n",
                    receiver.port
                )
            ),
            src.host,
            dst.host,
            src.host,
            dst.host
        )
    };
    let r = once(dir.path(), &config(receiver.port));
    assert_eq!(r.code, 1, "the missing 9.9 fails the run: {}", r.stderr);
    let target = tags_of(&dst, "web");
    assert_eq!(target, source);
    let events = receiver.json();
    assert!(receiver.received().iter().all(|(line, _)| line == "POST /hook"), "{:?}", receiver.received());
    let copied: BTreeMap<String, String> = events
        .iter()
        .filter(|e| e["event"] == "image-copied")
        .map(|e| (e["tags"][0].as_str().unwrap().to_string(), e["digest"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(copied, target, "events: {events:#?}");
    for e in events.iter().filter(|e| e["event"] == "image-copied") {
        assert_eq!(e["repo"], format!("{}/web", dst.host));
        assert!(e["source"].as_str().unwrap().starts_with(&format!("{}/web:", src.host)));
        assert_eq!(e["details"]["step"], "0");
        assert!(e["details"]["bytes-sent"].as_str().unwrap().parse::<u64>().unwrap() > 0, "{e}");
    }
    let finished: Vec<_> = events.iter().filter(|e| e["event"] == "sync-finished").collect();
    assert_eq!(finished.len(), 1, "{events:#?}");
    let tags: BTreeSet<&str> = finished[0]["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(tags, BTreeSet::from(["1.0", "1.1", "2.0"]));
    assert_eq!(finished[0]["error"], serde_json::Value::Null);
    // The image that failed has an event of its own, with the reason, then its step's failure.
    let failed: Vec<_> = events.iter().filter(|e| e["event"] == "image-failed").collect();
    assert_eq!(failed.len(), 1, "{events:#?}");
    assert_eq!(failed[0]["tags"][0], "9.9");
    assert_eq!(failed[0]["details"]["step"], "1");
    assert!(failed[0]["error"].as_str().unwrap().contains("9.9"), "{}", failed[0]);
    let step_failed: Vec<_> = events.iter().filter(|e| e["event"] == "sync-failed").collect();
    assert_eq!(step_failed.len(), 1, "{events:#?}");

    // The same plugin, allowed another port only: the copy still succeeds, nothing is posted.
    let before = receiver.received().len();
    seed(&src, dir.path(), "web", &["3.0"], "w3");
    let r = once(dir.path(), &config(receiver.port + 1));
    assert_eq!(tags_of(&dst, "web").len(), 4);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(receiver.received().len(), before, "a refused host received a post");
    assert!(r.stderr.contains("not in allowHosts"), "{}", r.stderr);
    assert!(r.stderr.contains("hook"), "{}", r.stderr);
}

#[test]
fn python_webhook_posts_copies_and_failures_and_is_refused_other_hosts() {
    webhook_posts_copies_and_failures_and_is_refused_other_hosts(&webhook_py());
}

#[test]
fn rust_webhook_posts_copies_and_failures_and_is_refused_other_hosts() {
    webhook_posts_copies_and_failures_and_is_refused_other_hosts(&rust_plugin("webhook"));
}

/// A component built against a WIT version no regsync released is refused
/// at load, naming the version it wants and the ones this regsync has.
#[test]
fn a_component_for_an_unknown_wit_version_is_refused_with_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "plugins:\n{}sync:\n  - source: ocidir://nowhere\n    target: ocidir://out\n    type: repository\n    filters: [future]\n",
        plugin("future", &rust_plugin("test-future"), "")
    );
    let r = once(dir.path(), &config);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("plugin \"future\"")
            && r.stderr
                .contains("it was built for regsync:plugin@0.9.0, and this regsync supports regsync:plugin@0.1.0, regsync:plugin@0.2.0"),
        "{}",
        r.stderr
    );
}

#[test]
fn looping_allocating_and_trapping_plugins_fail_only_their_step() {
    let (src, dst) = (Registry::start(), Registry::start());
    let dir = tempfile::tempdir().unwrap();
    let source = seed(&src, dir.path(), "good", &["1", "2"], "g");
    seed(&src, dir.path(), "bad", &["1"], "b");
    let mut plugins = String::new();
    for (name, extra) in
        [("loop", "    timeout: 500ms\n"), ("alloc", "    memory: 16\n    timeout: 20s\n"), ("trap", "")]
    {
        plugins += &plugin(name, &rust_plugin(&format!("test-{name}")), extra);
    }
    let mut steps = String::new();
    for name in ["loop", "alloc", "trap"] {
        steps += &format!(
            "  - {{source: \"{}/bad\", target: \"{}/bad-{name}\", type: repository, filters: [{name}]}}\n",
            src.host, dst.host
        );
    }
    steps += &format!("  - {{source: \"{}/good\", target: \"{}/good\", type: repository}}\n", src.host, dst.host);
    let config = format!(
        "{}defaults:\n  skipDockerConfig: true\nplugins:\n{plugins}sync:\n{steps}",
        creds(&[&src.host, &dst.host])
    );
    let start = Instant::now();
    let r = once(dir.path(), &config);
    let took = start.elapsed();
    assert_eq!(r.code, 1, "{}", r.stderr);
    let bad = format!("{}/bad", src.host);
    for error in [
        r#"plugin \"loop\" timed out after 500ms in filter-tags"#,
        r#"plugin \"alloc\" failed in filter-tags: memory limit of 16 MiB reached"#,
        r#"plugin \"trap\" failed in filter-tags: wasm trap: wasm `unreachable` instruction executed"#,
    ] {
        let expected = format!(r#"level=ERROR msg="Failed processing tag filters" source={bad} error="{error}""#);
        assert_eq!(r.stderr.matches(&expected).count(), 1, "logged once: {expected:?} in:\n{}", r.stderr);
    }
    // Steps run concurrently; the loop is cut at its deadline, not minutes later.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert_eq!(tags_of(&dst, "good"), source);
    for name in ["loop", "alloc", "trap"] {
        assert!(tags_of(&dst, &format!("bad-{name}")).is_empty());
    }
}

#[test]
fn config_errors_name_the_plugin_the_step_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm not really").unwrap();
    let fns = rust_plugin("semver-fns");
    let cases = [
        (
            format!("{}sync:\n  - source: ocidir://a\n    target: ocidir://b\n    type: repository\n    filters: [fns]\n", "plugins:\n".to_string() + &plugin("fns", &fns, "")),
            "regsync.yml:5:1: sync[0] (source \"ocidir://a\") filters: plugin \"fns\" is used as a tag filter but does not export regsync:plugin/tag-filter@0.2.0".to_string(),
        ),
        (
            format!("plugins:\n{}sync: []\n", plugin("junk", &garbage, "")),
            format!("regsync.yml:2:5: plugins[0]: plugin \"junk\": cannot load {}:", garbage.display()),
        ),
        (
            format!("plugins:\n{}{}sync: []\n", plugin("one", &fns, ""), plugin("two", &fns, "")),
            "regsync.yml:4:5: plugins[1]: template function \"semverMajor\" from plugin \"two\" is already defined by plugin \"one\"".to_string(),
        ),
        (
            "sync:\n  - {source: ocidir://a, target: ocidir://b, type: repository, filters: [nope]}\n".to_string(),
            "regsync.yml:2:74: sync[0] (source \"ocidir://a\") filters[0]: unknown plugin \"nope\"".to_string(),
        ),
    ];
    for (config, expected) in cases {
        let r = once(dir.path(), &config);
        assert_eq!(r.code, 1, "{config}");
        assert!(r.stderr.contains(&expected), "expected {expected:?} in:\n{}", r.stderr);
    }
}

fn server_config(src: &Registry, dst: &Registry, plugins: &str, steps: &str) -> String {
    format!("{}defaults:\n  skipDockerConfig: true\nplugins:\n{plugins}sync:\n{steps}", creds(&[&src.host, &dst.host]))
}

#[test]
fn the_server_keeps_running_other_steps_while_a_plugin_loops() {
    let (src, dst) = (Registry::start(), Registry::start());
    let dir = tempfile::tempdir().unwrap();
    seed(&src, dir.path(), "bad", &["1"], "b");
    seed(&src, dir.path(), "good", &["1"], "g");
    let plugins = plugin("loop", &rust_plugin("test-loop"), "    timeout: 300ms\n");
    let steps = format!(
        "  - {{source: \"{s}/bad\", target: \"{d}/bad\", type: repository, interval: 1s, filters: [loop]}}\n  - {{source: \"{s}/good\", target: \"{d}/good\", type: repository, interval: 1s}}\n",
        s = src.host,
        d = dst.host
    );
    let path = dir.path().join("regsync.yml");
    std::fs::write(&path, server_config(&src, &dst, &plugins, &steps)).unwrap();
    let mut server = ServerProcess::start(dir.path(), &["-c", path.to_str().unwrap()]);
    // A tag added later reaches the target through a scheduled run of the good step,
    // while the looping step keeps failing at its deadline.
    assert!(wait_for(Duration::from_secs(20), || tags_of(&dst, "good").len() == 1), "{}", server.log());
    let late = seed(&src, dir.path(), "good", &["2"], "late");
    assert!(
        wait_for(Duration::from_secs(20), || tags_of(&dst, "good").get("2") == Some(&late["2"])),
        "{}",
        server.log()
    );
    assert!(
        wait_for(Duration::from_secs(10), || server.log().matches("plugin \\\"loop\\\" timed out after 300ms").count()
            >= 2),
        "{}",
        server.log()
    );
    assert!(tags_of(&dst, "bad").is_empty());
    assert_eq!(server.wait_exit(Duration::from_millis(10)), None, "the server exited:\n{}", server.log());
}

#[test]
fn a_replaced_plugin_file_takes_effect_without_restart_and_garbage_keeps_the_old_one() {
    let (src, dst) = (Registry::start(), Registry::start());
    let dir = tempfile::tempdir().unwrap();
    let tags = ["v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0", "v1.4.0", "v1.5.0", "v1.6.0", "v1.7.0"];
    let source = seed(&src, dir.path(), "app", &tags, "r");
    // Two releases of keep-latest: the one installed keeps 2 tags, the new one 3.
    let (v1, v2) = (keep_latest_with_default(2), keep_latest_with_default(3));
    let installed = dir.path().join("keep-latest.wasm");
    std::fs::copy(&v1, &installed).unwrap();
    let steps = format!(
        "  - {{source: \"{}/app\", target: \"{}/app\", type: repository, interval: 1s, filters: [keep]}}\n",
        src.host, dst.host
    );
    let path = dir.path().join("regsync.yml");
    std::fs::write(&path, server_config(&src, &dst, &plugin("keep", Path::new("keep-latest.wasm"), ""), &steps))
        .unwrap();
    let mut server = ServerProcess::start(dir.path(), &["-c", path.to_str().unwrap()]);
    assert!(
        wait_for(Duration::from_secs(20), || tags_of(&dst, "app") == pick(&source, &["v1.7.0", "v1.6.0"])),
        "{}",
        server.log()
    );

    // A new release, renamed over the old file as a package manager would.
    let tmp = dir.path().join("keep-latest.wasm.new");
    std::fs::copy(&v2, &tmp).unwrap();
    std::fs::rename(&tmp, &installed).unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || tags_of(&dst, "app") == pick(&source, &["v1.7.0", "v1.6.0", "v1.5.0"])),
        "{}",
        server.log()
    );
    assert!(server.log().contains("plugins_reloaded=true"), "{}", server.log());

    // Garbage: the reload is rejected with the reason, and the 3-tag plugin stays.
    std::fs::write(&tmp, b"not a component").unwrap();
    std::fs::rename(&tmp, &installed).unwrap();
    assert!(wait_for(Duration::from_secs(10), || server.log().contains("cannot load")), "{}", server.log());
    let log = server.log();
    let why = log.lines().find(|l| l.contains("cannot load")).unwrap();
    assert!(why.contains("plugins[0]: plugin \\\"keep\\\"") && why.contains("magic header not detected"), "{why}");
    assert!(log.contains("Config reload: rejected"), "{log}");
    let newer = seed(&src, dir.path(), "app", &["v1.8.0"], "r2");
    let mut expected = pick(&source, &["v1.7.0", "v1.6.0", "v1.5.0"]);
    expected.extend(newer);
    assert!(wait_for(Duration::from_secs(20), || tags_of(&dst, "app") == expected), "{}", server.log());
    // Still the 3-tag filter: v1.4.0 would be the 4th newest, so it never comes.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(tags_of(&dst, "app"), expected);
    assert_eq!(server.wait_exit(Duration::from_millis(10)), None, "the server exited:\n{}", server.log());
}

/// A plugin declaration as the config would make it.
fn spec(name: &str, path: &Path, config: &[(&str, &str)]) -> regsync::config::PluginSpec {
    regsync::config::PluginSpec {
        name: name.into(),
        path: path.display().to_string(),
        reference: String::new(),
        config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        allow_hosts: Vec::new(),
        timeout: regsync::duration::GoDuration::from_secs(10),
        // The default: Python components fit in it too.
        memory: 64,
        pos: Default::default(),
    }
}

#[test]
fn keep_latest_in_rust_python_and_javascript_agree() {
    /// Tags offered, settings, tags kept.
    type Row<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);
    use regsync_tests::plugins::{keep_latest_js, keep_latest_py};
    let host = regsync::plugin::PluginHost::new(Some(regsync_tests::plugins::cache_dir()));
    let builds = [("rust", rust_plugin("keep-latest")), ("python", keep_latest_py()), ("javascript", keep_latest_js())];
    // The shared table: tags, settings, what all three keep (newest first).
    let table: &[Row] = &[
        (
            &["v1.9.0", "v1.10.0", "v1.2", "latest", "2.0.0-rc.10", "2.0.0-rc.2", "v0.9.9", "1.10.1", "2.0.0"],
            &[("count", "4")],
            &["2.0.0", "2.0.0-rc.10", "2.0.0-rc.2", "1.10.1"],
        ),
        (
            &["v1.9.0", "v1.10.0", "2.0.0-rc.10", "2.0.0-rc.2", "1.10.1"],
            &[("count", "2"), ("prerelease", "false")],
            &["1.10.1", "v1.10.0"],
        ),
        // Ties keep their order; numeric pre-release parts sort below words; numbers beyond 2^32 compare.
        (
            &["1.2", "v1.2.0", "1.2.0-alpha", "1.2.0-1", "1.2.0-alpha.1", "12345678901234.0.0", "01.0.0", "1.0.0-"],
            &[("count", "9")],
            &["12345678901234.0.0", "1.2", "v1.2.0", "1.2.0-alpha.1", "1.2.0-alpha", "1.2.0-1"],
        ),
        (&["a", "b"], &[("count", "3")], &[]),
        (&["v3", "v2", "v1"], &[("count", "0")], &[]),
    ];
    for (name, path) in &builds {
        for (tags, settings, expected) in table {
            let plugin = host.load(&spec(name, path, settings)).unwrap();
            let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
            let kept = plugin.filter_tags("repo", &tags).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(kept, *expected, "{name} on {tags:?} with {settings:?}");
        }
        let bad = host.load(&spec(name, path, &[("count", "many")])).unwrap();
        let e = bad.filter_tags("repo", &["v1".into()]).unwrap_err().to_string();
        assert!(e.contains("returned an error from filter-tags: count must be a whole number, got"), "{name}: {e}");
    }
}
