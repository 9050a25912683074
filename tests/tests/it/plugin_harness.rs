//! `regsync plugin inspect` and `regsync plugin call`: the bundled plugins
//! described and called once, from files and from an OCI layout, under the
//! sandbox and limits of a sync.

use regsync_tests::bin::{Run, run_in};
use regsync_tests::plugins::{keep_latest_py, rust_plugin};
use regsync_tests::webhook::Receiver;

fn plugin(args: &[&str]) -> Run {
    let dir = std::env::temp_dir();
    let mut all = vec!["plugin"];
    all.extend(args);
    run_in(&dir, &all, None)
}

fn ok(args: &[&str]) -> String {
    let r = plugin(args);
    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    r.stdout
}

/// The value of `label:` in inspect's output.
fn field<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{label}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("{label} in\n{out}"))
}

#[test]
fn inspect_names_the_kind_version_interfaces_and_size() {
    let keep = rust_plugin("keep-latest");
    let out = ok(&["inspect", keep.to_str().unwrap()]);
    let size = std::fs::metadata(&keep).unwrap().len();
    assert!(field(&out, "component").contains(&format!("({size} bytes, sha256:")), "{out}");
    assert_eq!(field(&out, "world"), "regsync:plugin/tag-filter-plugin@0.2.0");
    assert_eq!(field(&out, "wit"), "regsync:plugin@0.2.0 (supported)");
    assert_eq!(field(&out, "kinds"), "tag filter");
    assert_eq!(field(&out, "exports"), "regsync:plugin/tag-filter@0.2.0");
    assert!(field(&out, "imports").starts_with("regsync:plugin/host@0.2.0"), "{out}");
    // A component built against the frozen 0.1.0 is still supported.
    let frozen = ok(&["inspect", rust_plugin("test-frozen").to_str().unwrap()]);
    assert_eq!(field(&frozen, "wit"), "regsync:plugin@0.1.0 (supported)");
    assert_eq!(field(&frozen, "world"), "regsync:plugin/tag-filter-plugin@0.1.0");

    let fns = ok(&["inspect", rust_plugin("semver-fns").to_str().unwrap()]);
    assert_eq!(field(&fns, "kinds"), "template functions");
    assert_eq!(field(&fns, "functions"), "semverMajor, semverMinor, semverPatch, sha256");
    let hook = ok(&["inspect", rust_plugin("webhook").to_str().unwrap()]);
    assert!(field(&hook, "imports").contains("regsync:plugin/outbound-http@0.2.0"), "{hook}");

    let future = ok(&["inspect", rust_plugin("test-future").to_str().unwrap()]);
    assert_eq!(field(&future, "wit"), "regsync:plugin@0.9.0 (not supported; this regsync supports 0.1.0, 0.2.0)");

    // From an OCI layout, as pushed by `regsync plugin push`.
    let dir = tempfile::tempdir().unwrap();
    let reference = format!("ocidir://{}/plugins:keep", dir.path().display());
    let pinned = ok(&["push", keep.to_str().unwrap(), &reference]);
    let by_ref = ok(&["inspect", pinned.trim()]);
    assert_eq!(field(&by_ref, "kinds"), "tag filter");
    assert!(field(&by_ref, "component").contains(&format!("({size} bytes")), "{by_ref}");
}

#[test]
fn call_runs_one_call_in_the_sandbox() {
    let tags = ["v1.0.0", "v1.2.0", "v2.0.0-rc1", "v2.0.0", "latest"];
    for file in [rust_plugin("keep-latest"), keep_latest_py()] {
        let path = file.to_str().unwrap();
        let mut args =
            vec!["call", path, "--set", "count=2", "--set", "prerelease=false", "filter-tags", "--repo", "r", "--"];
        args.extend(tags);
        let kept: Vec<String> = ok(&args).lines().map(str::to_string).collect();
        let mut sorted = kept.clone();
        sorted.sort();
        assert_eq!(sorted, ["v1.2.0", "v2.0.0"], "{}", file.display());
    }

    let fns = rust_plugin("semver-fns");
    assert_eq!(ok(&["call", fns.to_str().unwrap(), "function", "semverMajor", "v3.4.5"]), "3\n");
    let none = plugin(&["call", fns.to_str().unwrap(), "function", "nope"]);
    assert_eq!(none.code, 1);
    assert!(none.stderr.contains("no function nope; it has semverMajor"), "{}", none.stderr);

    // The same limits as a sync: an endless loop ends at the deadline.
    let looping =
        plugin(&["call", rust_plugin("test-loop").to_str().unwrap(), "--timeout", "300ms", "filter-tags", "--", "a"]);
    assert_eq!(looping.code, 1);
    assert!(looping.stderr.contains("timed out after 300ms in filter-tags"), "{}", looping.stderr);
    // The wrong kind of call for the component.
    let wrong = plugin(&["call", fns.to_str().unwrap(), "filter-tags", "--", "a"]);
    assert_eq!(wrong.code, 1);
    assert!(wrong.stderr.contains("does not export regsync:plugin/tag-filter@0.2.0"), "{}", wrong.stderr);

    // A notifier posts the event it is given, only to an allowed host.
    let receiver = Receiver::start();
    let url = format!("url=http://127.0.0.1:{}/hook", receiver.port);
    let allowed = format!("127.0.0.1:{}", receiver.port);
    let event = r#"{"kind": "image-failed", "target": "reg/app:v1", "tags": ["v1"], "error": "boom", "details": {"step": "3"}}"#;
    let hook = rust_plugin("webhook");
    assert_eq!(ok(&["call", hook.to_str().unwrap(), "--set", &url, "--allow-host", &allowed, "notify", event]), "ok\n");
    let posted = receiver.json();
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0]["event"], "image-failed");
    assert_eq!(posted[0]["error"], "boom");
    assert_eq!(posted[0]["details"]["step"], "3");
    let refused = plugin(&["call", hook.to_str().unwrap(), "--set", &url, "notify", event]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("not in allowHosts"), "{}", refused.stderr);
    assert_eq!(receiver.json().len(), 1);
    let bad = plugin(&["call", hook.to_str().unwrap(), "notify", r#"{"kind": "image-fixed"}"#]);
    assert!(bad.stderr.contains("unknown kind \"image-fixed\""), "{}", bad.stderr);
}
