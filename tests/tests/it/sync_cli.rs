//! End to end: the `regsync` binary on YAML configs against real
//! registries, asserting the target's tag → digest map after each run.

use regsync_tests::bin::{Run, run_in};
use regsync_tests::fixtures;
use regsync_tests::oci::{LayoutReader, fallback_tag};
use regsync_tests::registry::Registry;
use std::collections::BTreeMap;

struct World {
    src: Registry,
    dst: Registry,
    dir: tempfile::TempDir,
    tags: BTreeMap<String, String>,
}

fn world() -> World {
    let (src, dst) = (Registry::start(), Registry::start());
    let dir = tempfile::tempdir().unwrap();
    let repo = fixtures::testrepo_layout(&dir.path().join("testrepo"));
    fixtures::external_layout(&dir.path().join("external"), &repo.v2);
    for (layout, name) in [("testrepo", "lib/testrepo"), ("external", "lib/external")] {
        let l = LayoutReader::open(dir.path().join(layout));
        for entry in l.index()["manifests"].as_array().unwrap() {
            let d = regsync_tests::oci::Descriptor::from_json(entry);
            src.api().push_from_layout(&l, name, &d, entry["annotations"][fixtures::REF_NAME].as_str()).unwrap();
        }
    }
    let tags = LayoutReader::open(dir.path().join("testrepo")).tags().into_iter().map(|(t, d)| (t, d.digest)).collect();
    World { src, dst, dir, tags }
}

impl World {
    fn config(&self, body: &str) -> String {
        format!(
            "creds:\n  - registry: {s}\n    tls: disabled\n  - registry: {d}\n    tls: disabled\ndefaults:\n  skipDockerConfig: true\n{body}",
            s = self.src.host,
            d = self.dst.host
        )
    }

    fn run(&self, body: &str, args: &[&str]) -> Run {
        let path = self.dir.path().join("regsync.yml");
        std::fs::write(&path, self.config(body)).unwrap();
        let p = path.display().to_string();
        let mut all = args.to_vec();
        all.extend(["-c", &p]);
        run_in(self.dir.path(), &all, None)
    }

    fn ok(&self, body: &str, args: &[&str]) -> Run {
        let r = self.run(body, args);
        assert_eq!(r.code, 0, "{body}\nstdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
        r
    }

    /// The target repository's tags and their digests.
    fn target(&self, repo: &str) -> BTreeMap<String, String> {
        self.dst.api().tag_digests(repo)
    }

    fn t(&self, tag: &str) -> String {
        self.tags[tag].clone()
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn image_and_repository_steps_with_filters() {
    let w = world();
    let (s, d) = (w.src.host.clone(), w.dst.host.clone());
    let r = w.ok(
        &format!("sync:\n  - source: {s}/lib/testrepo:v1\n    target: {d}/img:latest\n    type: image\n"),
        &["once"],
    );
    assert!(r.stdout.contains("1 copied"), "{}", r.stdout);
    assert_eq!(w.target("img"), map(&[("latest", &w.t("v1"))]));

    let body = format!(
        "sync:\n  - source: {s}/lib/testrepo\n    target: {d}/filtered\n    type: repository\n    tags:\n      allow: [\"v.*\", \"b[12]\"]\n      deny: [v2]\n"
    );
    w.ok(&body, &["once"]);
    assert_eq!(
        w.target("filtered"),
        map(&[("b1", &w.t("b1")), ("b2", &w.t("b2")), ("v1", &w.t("v1")), ("v3", &w.t("v3"))])
    );

    let body = format!(
        "sync:\n  - source: {s}/lib/testrepo\n    target: {d}/semver\n    type: repository\n    tags:\n      semverRange: [\">=2\"]\n    tagSets:\n      - allow: [mirror]\n"
    );
    w.ok(&body, &["once"]);
    assert_eq!(w.target("semver"), map(&[("mirror", &w.t("mirror")), ("v2", &w.t("v2")), ("v3", &w.t("v3"))]));
}

#[test]
fn registry_step_with_repository_filters() {
    let w = world();
    let (s, d) = (w.src.host.clone(), w.dst.host.clone());
    let body = format!(
        "sync:\n  - source: {s}\n    target: {d}/mirror\n    type: registry\n    repos:\n      allow: [\"lib/.*\"]\n      deny: [\".*external\"]\n    tags:\n      allow: [v1, v2]\n"
    );
    w.ok(&body, &["once"]);
    assert_eq!(w.target("mirror/lib/testrepo"), map(&[("v1", &w.t("v1")), ("v2", &w.t("v2"))]));
    assert!(w.target("mirror/lib/external").is_empty());
}

#[test]
fn check_reports_stale_images_and_exits_zero_cli_12() {
    let w = world();
    let (s, d) = (w.src.host.clone(), w.dst.host.clone());
    let body = format!(
        "sync:\n  - source: {s}/lib/testrepo\n    target: {d}/chk\n    type: repository\n    tags:\n      allow: [v1, v2]\n"
    );
    let r = w.ok(&body, &["check"]);
    assert!(r.stdout.contains(&format!("stale: {s}/lib/testrepo:v1")), "{}", r.stdout);
    assert!(r.stdout.contains("(target missing)"));
    assert!(r.stdout.contains("2 of 2 images stale"));
    assert!(r.stderr.contains("msg=\"Image sync needed\""), "regsync's log line: {}", r.stderr);
    assert!(w.target("chk").is_empty(), "check copies nothing");
    w.ok(&body, &["once"]);
    let json = w.ok(&body, &["check", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["command"], "check");
    let actions: Vec<&str> =
        v["steps"][0]["images"].as_array().unwrap().iter().map(|i| i["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["up-to-date", "up-to-date"]);
    assert_eq!(v["counts"]["stale"], 0);
}

/// `once --format json`: one document with the run's counts and totals, then
/// every step with its own and every image; the same family as `check`'s.
#[test]
fn once_reports_the_run_as_one_json_document() {
    let w = world();
    let (s, d) = (w.src.host.clone(), w.dst.host.clone());
    let body = format!(
        "sync:\n  - source: {s}/lib/testrepo\n    target: {d}/json\n    type: repository\n    tags:\n      allow: [v1, v3]\n  - source: {s}/lib/testrepo:nope\n    target: {d}/json:nope\n    type: image\n"
    );
    let r = w.run(&body, &["once", "--format", "json"]);
    assert_eq!(r.code, 1, "the missing tag fails the run");
    eprintln!("{}", r.stdout);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("stdout is one JSON document");
    assert_eq!(v["command"], "once");
    assert_eq!(v["ok"], false);
    assert!(v["duration_ms"].is_u64());
    assert_eq!(v["counts"]["images"], 3);
    assert_eq!(v["counts"]["copied"], 2);
    assert_eq!(v["counts"]["failed"], 1);
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    let copy = &steps[0];
    assert_eq!((copy["index"].as_u64(), copy["type"].as_str()), (Some(0), Some("repository")));
    assert_eq!(copy["counts"]["copied"], 2);
    let sent = copy["totals"]["blobs_sent"].as_u64().unwrap();
    assert!(sent > 0 && copy["totals"]["bytes_sent"].as_u64().unwrap() > 0, "{copy}");
    assert_eq!(v["totals"]["blobs_sent"].as_u64(), Some(sent), "the run's totals sum the steps'");
    for image in copy["images"].as_array().unwrap() {
        assert_eq!(image["action"], "copied", "{image}");
        assert!(image["digest"].as_str().unwrap().starts_with("sha256:"));
        assert!(image["stats"]["manifests"].as_u64().unwrap() >= 1);
    }
    let failed = &steps[1];
    assert_eq!(failed["counts"]["failed"], 1);
    assert_eq!(failed["images"][0]["action"], "failed");
    let reason =
        failed["errors"][0].as_str().unwrap_or_default().to_string() + failed["images"][0]["error"].as_str().unwrap();
    assert!(reason.contains("nope"), "the failure says what: {failed}");
    assert!(r.stderr.contains("msg=\"Failed to sync\""), "logs stay on stderr: {}", r.stderr);

    let again = w.run(&body, &["once", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!((v["counts"]["up_to_date"].as_u64(), v["counts"]["copied"].as_u64()), (Some(2), Some(0)));
    assert_eq!(v["totals"]["blobs_sent"], 0);
}

#[test]
fn missing_mode_and_backups_repo_4_bak_1() {
    let w = world();
    let (s, d) = (w.src.host.clone(), w.dst.host.clone());
    // The target's v1 holds v2's image: --missing leaves it, a plain once replaces it and backs it up.
    w.ok(&format!("sync:\n  - source: {s}/lib/testrepo:v2\n    target: {d}/app:v1\n    type: image\n"), &["once"]);
    let body = format!(
        "sync:\n  - source: {s}/lib/testrepo\n    target: {d}/app\n    type: repository\n    tags:\n      allow: [v1, v3]\n    backup: \"{d}/backups/app:{{{{ .Ref.Tag }}}}-old\"\n"
    );
    w.ok(&body, &["once", "--missing"]);
    assert_eq!(w.target("app"), map(&[("v1", &w.t("v2")), ("v3", &w.t("v3"))]));
    assert!(w.target("backups/app").is_empty(), "no backup in missing mode");
    let r = w.ok(&body, &["once"]);
    assert!(r.stderr.contains("msg=\"Saving backup\""), "{}", r.stderr);
    assert_eq!(w.target("app"), map(&[("v1", &w.t("v1")), ("v3", &w.t("v3"))]));
    assert_eq!(w.target("backups/app"), map(&[("v1-old", &w.t("v2"))]));
}

#[test]
fn platform_and_platforms_img_6_copy_9() {
    let w = world();
    let (s, d) = (w.src.host.clone(), w.dst.host.clone());
    let v2: serde_json::Value =
        serde_json::from_slice(&LayoutReader::open(w.dir.path().join("testrepo")).blob(&w.t("v2")).unwrap()).unwrap();
    let child = |arch: &str| {
        v2["manifests"].as_array().unwrap().iter().find(|m| m["platform"]["architecture"] == arch).unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let body = format!(
        "sync:\n  - source: {s}/lib/testrepo:v2\n    target: {d}/one:v2\n    type: image\n    platform: linux/arm64\n"
    );
    w.ok(&body, &["once"]);
    assert_eq!(w.target("one"), map(&[("v2", &child("arm64"))]));
    let r = w.ok(&body, &["once", "-v", "debug"]);
    assert!(r.stderr.contains("Image matches for platform"), "{}", r.stderr);

    let body = format!(
        "sync:\n  - source: {s}/lib/testrepo:v2\n    target: {d}/some:v2\n    type: image\n    platforms: [linux/amd64, linux/arm/v7]\n"
    );
    w.ok(&body, &["once"]);
    let got = w.dst.api().manifest("some", "v2").unwrap().1;
    let index: serde_json::Value = serde_json::from_slice(&got).unwrap();
    let listed: Vec<&str> =
        index["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap()).collect();
    assert_eq!(listed, vec![child("amd64"), child("arm")], "the pushed index lists only the chosen platforms");
    assert_eq!(w.dst.api().verify_tag("some", "v2"), Vec::<String>::new(), "and every child it lists exists");
    assert!(w.dst.api().manifest("some", &child("arm64")).is_none());
    let again = w.ok(&body, &["once"]);
    assert!(
        again.stdout.contains("0 copied, 1 up to date"),
        "the filtered index is recognised next run: {}",
        again.stdout
    );
}

#[test]
fn referrers_filters_external_sources_and_digest_tags() {
    let w = world();
    let (s, d) = (w.src.host.clone(), w.dst.host.clone());
    let body = format!(
        "sync:\n  - source: {s}/lib/testrepo:v2\n    target: {d}/signed:v2\n    type: image\n    referrers: true\n    referrerFilters:\n      - artifactType: application/example.signature\n"
    );
    w.ok(&body, &["once"]);
    let has = |repo: &str, digest: &str| w.dst.api().manifest(repo, digest).is_some();
    assert!(has("signed", &w.t("a2")) && !has("signed", &w.t("a1")));
    let fallback = fallback_tag(&w.t("v2"));
    assert!(w.target("signed").contains_key(&fallback), "referrers fallback index maintained on the target");

    let body = format!(
        "sync:\n  - source: {s}/lib/testrepo:v2\n    target: {d}/ext:v2\n    type: image\n    referrers: true\n    referrerSource: {s}/lib/external\n    referrerTarget: {d}/ext-sigs\n    referrerFilters:\n      - annotations: {{preference: \"2\"}}\n"
    );
    w.ok(&body, &["once"]);
    let ext = LayoutReader::open(w.dir.path().join("external"));
    let ext_index: serde_json::Value =
        serde_json::from_slice(&ext.blob(&ext.tags()[&fallback].digest).unwrap()).unwrap();
    let preferred = ext_index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["preference"] == "2")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let other = ext_index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["preference"] == "1")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(has("ext-sigs", &preferred) && !has("ext-sigs", &other) && !has("ext", &preferred));

    let body = format!(
        "sync:\n  - source: {s}/lib/testrepo:v1\n    target: {d}/dtags:v1\n    type: image\n    digestTags: true\n"
    );
    w.ok(&body, &["once"]);
    let meta = format!("{}.{}.meta", fallback_tag(&w.t("v1")), &w.t("v3")[7..23]);
    assert_eq!(w.target("dtags"), map(&[("v1", &w.t("v1")), (&meta, &w.t("v3"))]));
}

#[test]
fn fast_copy_skips_the_referrer_refresh() {
    let w = world();
    let (s, d) = (w.src.host.clone(), w.dst.host.clone());
    w.ok(&format!("sync:\n  - source: {s}/lib/testrepo:v2\n    target: {d}/fast:v2\n    type: image\n"), &["once"]);
    let fast = format!(
        "sync:\n  - source: {s}/lib/testrepo:v2\n    target: {d}/fast:v2\n    type: image\n    referrers: true\n    fastCopy: true\n"
    );
    let r = w.ok(&fast, &["once"]);
    assert!(r.stdout.contains("1 up to date"), "{}", r.stdout);
    assert!(w.dst.api().manifest("fast", &w.t("a1")).is_none(), "fastCopy: no referrer pass");
    let slow = fast.replace("    fastCopy: true\n", "");
    let r = w.ok(&slow, &["once"]);
    assert!(r.stderr.contains("Image refreshing"), "{}", r.stderr);
    assert!(w.dst.api().manifest("fast", &w.t("a1")).is_some(), "refresh copies the referrers");
}

#[test]
fn errors_exit_one_and_abort_on_error_stops_early_cli_11_mode_1() {
    let w = world();
    let (s, d) = (w.src.host.clone(), w.dst.host.clone());
    let body = format!(
        "sync:\n  - source: {s}/lib/absent:v1\n    target: {d}/x:v1\n    type: image\n  - source: {s}/lib/testrepo:v1\n    target: {d}/after:v1\n    type: image\n"
    );
    let r = w.run(&body, &["once"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("msg=\"Failed to sync\""), "{}", r.stderr);
    // Reported once: logged where it happened (regsync's two lines, LOG-3), counted
    // in the summary, exit 1, and not joined again at exit.
    let failures: Vec<&str> = r.stderr.lines().filter(|l| l.contains("not found")).collect();
    assert_eq!(failures.len(), 2, "{}", r.stderr);
    assert!(failures[0].contains("msg=\"Failed to lookup source manifest\""), "{}", r.stderr);
    assert!(failures[1].contains("level=ERROR msg=\"Failed to sync\""), "{}", r.stderr);
    assert!(r.stderr.lines().all(|l| l.starts_with("time=")), "only log lines: {}", r.stderr);
    assert!(r.stdout.contains("1 failed"), "{}", r.stdout);
    assert!(!r.stdout.contains("not found"), "{}", r.stdout);
    assert_eq!(w.target("after"), map(&[("v1", &w.t("v1"))]), "other steps still run");
    // --abort-on-error: steps in config order, nothing after the first failure
    // starts, whatever `parallel` says (docs/decisions.md).
    for parallel in ["", "  parallel: 4\n"] {
        let body = format!("defaults:\n{parallel}  skipDockerConfig: true\n{}", body.replace("after:v1", "after2:v1"));
        let r = w.run(&body, &["once", "--abort-on-error"]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(w.target("after2").is_empty(), "parallel {parallel:?}: the later step was left untouched");
    }
}

#[test]
fn log_lines_carry_the_references_as_configured_log_3_log_4() {
    let w = world();
    let (s, d) = (w.src.host.clone(), w.dst.host.clone());
    let body = format!(
        "sync:\n  - source: {s}/lib/testrepo\n    target: {d}/logs\n    type: repository\n    tags:\n      allow: [v1, a3]\n"
    );
    let r = w.ok(&body, &["once"]);
    let lines: Vec<&str> = r.stderr.lines().collect();
    let find = |msg: &str, has: &str| lines.iter().find(|l| l.contains(msg) && l.contains(has)).copied();
    // Image sync needed: source= and target= as configured, no @digest.
    let needed = find("msg=\"Image sync needed\"", ":v1").unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(needed.ends_with(&format!("source={s}/lib/testrepo:v1 target={d}/logs:v1")), "{needed}");
    // Copy config / Copy layer of a top-level image: the references as the step built them.
    let config = find("msg=\"Copy config\"", ":a3").unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(config.contains(&format!("source={s}/lib/testrepo:a3 target={d}/logs:a3 digest=sha256:")), "{config}");
    let layer = find("msg=\"Copy layer\"", ":a3").unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(layer.contains(&format!("source={s}/lib/testrepo:a3 target={d}/logs:a3 layer=sha256:")), "{layer}");
    // A child of an index: repo@digest, as regclient names children.
    let child = find("msg=\"Copy layer\"", "/lib/testrepo@sha256:").unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(child.contains(&format!("target={d}/logs@sha256:")), "{child}");
    assert!(!r.stderr.contains("testrepo:v1@sha256"), "no tag@digest names: {}", r.stderr);
}

#[test]
fn a_tagless_layout_target_is_written_as_latest_ref_5() {
    let dir = tempfile::tempdir().unwrap();
    fixtures::example_layout(&dir.path().join("layout"));
    let config = "sync:\n  - {source: \"ocidir://layout:v1\", target: \"ocidir://out\", type: image}\n";
    std::fs::write(dir.path().join("regsync.yml"), config).unwrap();
    let r = run_in(dir.path(), &["once", "-c", "regsync.yml"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = LayoutReader::open(dir.path().join("out"));
    assert_eq!(out.tags().keys().collect::<Vec<_>>(), ["latest"]);
    let again = run_in(dir.path(), &["once", "-c", "regsync.yml"], None);
    assert!(again.stdout.contains("0 copied, 1 up to date"), "{}", again.stdout);
}

#[test]
fn sigterm_stops_once_and_check_cleanly_sig_1_sig_3() {
    let w = world();
    let proxy = regsync_tests::proxy::FaultProxy::start(&w.src.url);
    // Blob reads and manifest HEADs stall, so `once` and `check` are in
    // flight when the signal comes.
    let stall = regsync_tests::proxy::Fault::Delay(std::time::Duration::from_secs(20));
    proxy.add(regsync_tests::proxy::Rule::new(Some("GET"), "/blobs/", stall.clone(), 100));
    proxy.add(regsync_tests::proxy::Rule::new(Some("HEAD"), "/manifests/", stall, 100));
    let body = format!(
        "creds:\n  - {{registry: \"{p}\", tls: disabled}}\n  - {{registry: \"{d}\", tls: disabled}}\ndefaults:\n  skipDockerConfig: true\nsync:\n  - source: {p}/lib/testrepo\n    target: {d}/term\n    type: repository\n",
        p = proxy.host,
        d = w.dst.host
    );
    let path = w.dir.path().join("term.yml");
    std::fs::write(&path, body).unwrap();
    for command in ["once", "check"] {
        let child = std::process::Command::new(regsync_tests::bin::regsync_bin())
            .args([command, "-c", &path.display().to_string()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        let started = std::time::Instant::now();
        let out = child.wait_with_output().unwrap();
        let r = Run::from(out);
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{command} stopped promptly");
        assert_eq!(r.code, 0, "{command}: cancelled, no other error: exit 0\n{}", r.stderr);
    }
    for tag in w.dst.api().tags("term") {
        assert_eq!(w.dst.api().verify_tag("term", &tag), Vec::<String>::new(), "{tag} complete");
    }
}

#[test]
fn docker_config_and_credential_helpers_from_the_environment_client_2_client_3() {
    let reg = Registry::start_with(regsync_tests::registry::RegistryOptions::default().user("dora", "explorer"));
    let dir = tempfile::tempdir().unwrap();
    fixtures::example_layout(&dir.path().join("layout"));
    let config = format!(
        "creds:\n  - registry: {h}\n    tls: disabled\nsync:\n  - source: ocidir://layout:v1\n    target: {h}/from-env:v1\n    type: image\n",
        h = reg.host
    );
    std::fs::write(dir.path().join("regsync.yml"), &config).unwrap();
    // DOCKER_CONFIG with an auths entry.
    let docker = dir.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("dora:explorer");
    std::fs::write(docker.join("config.json"), format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host))
        .unwrap();
    let run = |envs: &[(&str, String)]| {
        let mut cmd = std::process::Command::new(regsync_tests::bin::regsync_bin());
        cmd.args(["once", "-c", "regsync.yml"]).current_dir(dir.path()).env_remove("DOCKER_CONFIG");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        Run::from(cmd.output().unwrap())
    };
    let r = run(&[("DOCKER_CONFIG", docker.display().to_string())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(reg.api().digest_of("from-env", "v1").is_some());
    // A credsStore helper found on PATH.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-regsynctest");
    std::fs::write(&helper, format!(
        "#!/bin/sh\ncase \"$1\" in\n  list) echo '{{\"{h}\":\"dora\"}}' ;;\n  get) read host; echo '{{\"ServerURL\":\"'$host'\",\"Username\":\"dora\",\"Secret\":\"explorer\"}}' ;;\nesac\n",
        h = reg.host
    )).unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&helper).status().unwrap();
    std::fs::write(docker.join("config.json"), r#"{"credsStore":"regsynctest"}"#).unwrap();
    std::fs::write(dir.path().join("regsync.yml"), config.replace("from-env", "from-helper")).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let r = run(&[("DOCKER_CONFIG", docker.display().to_string()), ("PATH", path)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(reg.api().digest_of("from-helper", "v1").is_some());
    // Without either, the registry refuses.
    std::fs::write(dir.path().join("regsync.yml"), config.replace("from-env", "denied")).unwrap();
    let r = run(&[("DOCKER_CONFIG", dir.path().join("none").display().to_string())]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("unauthorized"), "{}", r.stderr);
}

#[test]
fn quickstart_example_runs_from_the_readme() {
    let out = regsync_tests::repo_root().join("examples/out");
    let _ = std::fs::remove_dir_all(&out);
    let r = regsync_tests::bin::run(&["once", "-c", "examples/quickstart.yml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("total: 2 copied"), "{}", r.stdout);
    let copied = LayoutReader::open(out.join("hello"));
    assert_eq!(copied.verify(), Vec::<String>::new());
    let source = LayoutReader::open(regsync_tests::repo_root().join("examples/layouts/hello"));
    assert_eq!(copied.tags()["v1"].digest, source.tags()["v1"].digest);
    let again = regsync_tests::bin::run(&["once", "-c", "examples/quickstart.yml"]);
    assert!(again.stdout.contains("total: 0 copied, 2 up to date"), "{}", again.stdout);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn copy_failures_print_regclients_warn_lines_log_4() {
    let w = world();
    let proxy = regsync_tests::proxy::FaultProxy::start(&w.dst.url);
    proxy.add(regsync_tests::proxy::Rule::new(
        Some("POST"),
        "/blobs/uploads/",
        regsync_tests::proxy::Fault::Status { code: 403, retry_after: None },
        100,
    ));
    let body = format!(
        "creds:\n  - {{registry: \"{s}\", tls: disabled}}\n  - {{registry: \"{p}\", tls: disabled}}\ndefaults:\n  skipDockerConfig: true\nsync:\n  - source: {s}/lib/testrepo:a3\n    target: {p}/refused:a3\n    type: image\n",
        s = w.src.host,
        p = proxy.host
    );
    let path = w.dir.path().join("refused.yml");
    std::fs::write(&path, body).unwrap();
    let r = run_in(w.dir.path(), &["once", "-c", &path.display().to_string()], None);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let warn = r
        .stderr
        .lines()
        .find(|l| {
            l.contains("level=WARN")
                && (l.contains("msg=\"Failed to copy layer\"") || l.contains("msg=\"Failed to copy config\""))
        })
        .unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(
        warn.contains(&format!("source={}/lib/testrepo:a3 target={}/refused:a3", w.src.host, proxy.host)),
        "{warn}"
    );
    assert!(warn.contains(" err=\"unauthorized"), "{warn}");
    assert!(r.stderr.contains("level=ERROR msg=\"Failed to copy image\""), "{}", r.stderr);
    assert!(w.dst.api().tags("refused").is_empty(), "nothing tagged");
}
