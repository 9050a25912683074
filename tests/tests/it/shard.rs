//! `--shard I/N`: a `registry` step over 30 repositories split across
//! processes running at the same time against real registries. Together
//! they leave what one unsharded run leaves, no repository is written by two
//! shards, and a later `check` or a run with another shard count finds
//! nothing to do. Bad shard settings stop before anything is synced.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

use regsync_tests::bin::{regsync_bin, run_in, run_in_env};
use regsync_tests::fixtures::{self, AMD64};
use regsync_tests::oci::LayoutReader;
use regsync_tests::proxy::FaultProxy;
use regsync_tests::registry::Registry;
use serde_json::Value;

const REPOS: usize = 30;

fn repo_name(i: usize) -> String {
    format!("team-{}/app-{i:02}", i % 3)
}

/// 30 repositories with one or two small images each.
fn seed(src: &Registry, dir: &Path) {
    for i in 0..REPOS {
        let path = dir.join(format!("seed-{i}"));
        let mut l = fixtures::Layout::create(&path);
        let tags: &[&str] = if i % 2 == 0 { &["v1", "v2"] } else { &["v1"] };
        for tag in tags {
            let img = l.image(AMD64, &[("f", format!("{i} {tag}").as_bytes())]);
            l.tag(tag, &img);
        }
        l.save();
        let reader = LayoutReader::open(&path);
        for (tag, desc) in reader.tags() {
            src.api().push_from_layout(&reader, &repo_name(i), &desc, Some(&tag)).unwrap();
        }
    }
}

fn config(src: &Registry, target: &str, agent: &str) -> String {
    format!(
        "creds:\n  - {{registry: \"{}\", tls: disabled}}\n  - {{registry: \"{target}\", tls: disabled}}\ndefaults:\n  skipDockerConfig: true\n  userAgent: {agent}\nsync:\n  - source: {}\n    target: {target}/mirror\n    type: registry\n",
        src.host, src.host
    )
}

/// Runs `regsync ARGS -c FILE --shard i/n --format json` for every i at once; the reports.
fn run_shards(dir: &Path, src: &Registry, target: &str, n: usize, command: &str) -> Vec<Value> {
    let children: Vec<_> = (0..n)
        .map(|i| {
            let path = dir.join(format!("shard-{i}-of-{n}.yml"));
            std::fs::write(&path, config(src, target, &format!("shard-{i}"))).unwrap();
            Command::new(regsync_bin())
                .args([command, "-c", path.to_str().unwrap(), "--shard", &format!("{i}/{n}"), "--format", "json"])
                .current_dir(dir)
                .env_remove("DOCKER_CONFIG")
                .env_remove("REGSYNC_SHARD")
                .env_remove("REGSYNC_SHARDS")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let out = c.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "shard {i}/{n}: {stderr}");
            assert!(stderr.contains(&format!("shard={i}/{n}")), "shard {i}/{n} logs its units: {stderr}");
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["shard"], format!("{i}/{n}"));
            v
        })
        .collect()
}

fn units(report: &Value, key: &str) -> BTreeSet<String> {
    report["steps"][0][key].as_array().into_iter().flatten().map(|u| u.as_str().unwrap().to_string()).collect()
}

fn target_state(reg: &Registry) -> BTreeMap<String, BTreeMap<String, String>> {
    (0..REPOS).map(|i| (repo_name(i), reg.api().tag_digests(&format!("mirror/{}", repo_name(i))))).collect()
}

#[test]
fn shards_together_do_exactly_what_one_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let src = Registry::start();
    seed(&src, dir.path());
    let (single, sharded) = (Registry::start(), Registry::start());
    let proxy = FaultProxy::start(&format!("http://{}", sharded.host));

    let path = dir.path().join("single.yml");
    std::fs::write(&path, config(&src, &single.host, "single")).unwrap();
    let r = run_in(dir.path(), &["once", "-c", path.to_str().unwrap()], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let expected = target_state(&single);
    assert!(expected.values().all(|tags| !tags.is_empty()), "{expected:?}");

    let reports = run_shards(dir.path(), &src, &proxy.host, 3, "once");
    assert_eq!(target_state(&sharded), expected, "three shards leave what one run leaves");

    // Each repository belongs to exactly one shard, and together they cover all.
    let owned: Vec<BTreeSet<String>> = reports.iter().map(|r| units(r, "units_owned")).collect();
    let all: BTreeSet<String> = (0..REPOS).map(|i| format!("{}/mirror/{}", proxy.host, repo_name(i))).collect();
    assert_eq!(owned.iter().map(BTreeSet::len).sum::<usize>(), REPOS, "{owned:?}");
    assert_eq!(owned.iter().flatten().cloned().collect::<BTreeSet<_>>(), all);
    for (i, r) in reports.iter().enumerate() {
        let skipped = units(r, "units_skipped");
        assert_eq!(skipped, all.difference(&owned[i]).cloned().collect(), "shard {i} lists the others' units");
        assert!(!owned[i].is_empty(), "30 units over 3 shards: each gets some ({owned:?})");
    }

    // The registry saw every repository written by one shard only.
    let mut writers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in proxy.log().iter().filter(|l| matches!(l.method.as_str(), "PUT" | "POST" | "PATCH")) {
        let repo =
            l.path.trim_start_matches("/v2/").split("/manifests/").next().unwrap().split("/blobs/").next().unwrap();
        writers.entry(repo.to_string()).or_default().insert(l.user_agent.clone().unwrap_or_default());
    }
    assert_eq!(writers.len(), REPOS, "{writers:?}");
    for (repo, agents) in &writers {
        assert_eq!(agents.len(), 1, "{repo} written by {agents:?}");
    }

    // Afterwards: each shard's check finds nothing stale; four shards copy nothing.
    for r in run_shards(dir.path(), &src, &proxy.host, 3, "check") {
        assert_eq!(r["counts"]["stale"], 0, "{r}");
    }
    proxy.clear_log();
    let again = run_shards(dir.path(), &src, &proxy.host, 4, "once");
    assert_eq!(again.iter().map(|r| r["counts"]["copied"].as_u64().unwrap()).sum::<u64>(), 0);
    assert_eq!(again.iter().map(|r| units(r, "units_owned").len()).sum::<usize>(), REPOS);
    let writes = proxy.log().iter().filter(|l| l.method != "GET" && l.method != "HEAD").count();
    assert_eq!(writes, 0, "{:#?}", proxy.log());
}

#[test]
fn bad_shard_settings_stop_before_anything_is_synced() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (Registry::start(), Registry::start());
    seed(&src, dir.path());
    let path = dir.path().join("regsync.yml");
    std::fs::write(&path, config(&src, &dst.host, "bad")).unwrap();
    let p = path.to_str().unwrap();
    /// Arguments, environment, the error.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 6] = [
        (&["--shard", "3/3"], &[], "--shard: shard 3 of 3 does not exist: I must be below N, and N above 0"),
        (&["--shard", "0/0"], &[], "--shard: shard 0 of 0 does not exist"),
        (&["--shard", "one/3"], &[], "--shard: \"one/3\" is not a shard: expected I/N, e.g. 0/3"),
        (&[], &[("REGSYNC_SHARD", "2")], "REGSYNC_SHARD: \"2\" is not a shard"),
        (
            &["--shard", "1/4"],
            &[("JOB_COMPLETION_INDEX", "1"), ("REGSYNC_SHARDS", "3")],
            "--shard says shard 1/4, but JOB_COMPLETION_INDEX with REGSYNC_SHARDS says 1/3",
        ),
        (
            &[],
            &[("HOSTNAME", "regsync"), ("REGSYNC_SHARDS", "3")],
            "the HOSTNAME ordinal with REGSYNC_SHARDS: \"regsync\"",
        ),
    ];
    for (args, env, message) in cases {
        for command in ["once", "check"] {
            let mut all = vec![command, "-c", p];
            all.extend(args);
            let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
            let r = run_in_env(dir.path(), &all, None, &env);
            assert_eq!(r.code, 1, "{all:?} {env:?}");
            assert!(r.stderr.contains(message), "{all:?} {env:?}: {}", r.stderr);
        }
    }
    // The server too, before it starts anything.
    let r = run_in(dir.path(), &["server", "-c", p, "--shard", "5/2"], None);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("shard 5 of 2 does not exist"), "{}", r.stderr);
    assert!(
        (0..REPOS).all(|i| dst.api().tag_digests(&format!("mirror/{}", repo_name(i))).is_empty()),
        "nothing synced"
    );
}
