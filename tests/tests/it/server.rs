//! The real `regsync server` against real registries: the first pass and
//! schedules (SRV-1 … SRV-6), hot reload, signals, metrics and probes.

use std::path::Path;
use std::time::{Duration, Instant};

use regsync_tests::bin::{ServerProcess, free_port, http_get, plain_creds, wait_for};
use regsync_tests::fixtures::{self, AMD64};
use regsync_tests::oci::{Descriptor, LayoutReader};
use regsync_tests::proxy::{Fault, FaultProxy, Rule};
use regsync_tests::registry::{Registry, RegistryOptions};

/// A layout with tags `a`…`f`, each a small distinct image, and `big`, a 3 MB one.
fn source_layout(dir: &Path) -> LayoutReader {
    let mut l = fixtures::Layout::create(dir);
    for tag in ["a", "b", "c", "d", "e", "f"] {
        let img = l.image(AMD64, &[("tag", format!("image {tag}").as_bytes())]);
        l.tag(tag, &img);
    }
    let big = l.image(AMD64, &[("big", &fixtures::noise(99, 3_000_000))]);
    l.tag("big", &big);
    l.save();
    LayoutReader::open(dir)
}

fn push(reg: &Registry, layout: &LayoutReader, repo: &str, src_tag: &str, dst_tag: &str) -> Descriptor {
    let d = layout.tags()[src_tag].clone();
    reg.api().push_from_layout(layout, repo, &d, Some(dst_tag)).unwrap();
    d
}

fn creds(hosts: &[&str]) -> String {
    plain_creds(hosts) + "defaults:\n  skipDockerConfig: true\n"
}

fn step(src: &str, dst: &str, extra: &str) -> String {
    format!("  - {{source: \"{src}\", target: \"{dst}\", type: repository{extra}}}\n")
}

/// Writes the config the way an editor that replaces files does: a new file renamed over the old.
fn write_config(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

#[test]
fn first_pass_copies_missing_tags_then_the_schedule_copies_changes_srv_1_srv_6() {
    registry_client_crypto();
    let (src, dst) = (Registry::start(), Registry::start());
    let dir = tempfile::tempdir().unwrap();
    let layout = source_layout(&dir.path().join("layout"));
    let a = push(&src, &layout, "app", "a", "v1");
    let b = push(&src, &layout, "app", "b", "v2");
    let stale = push(&dst, &layout, "app", "c", "v1");
    let port = free_port();
    let config = dir.path().join("regsync.yml");
    std::fs::write(
        &config,
        format!(
            "{}sync:\n{}",
            creds(&[&src.host, &dst.host]),
            step(&format!("{}/app", src.host), &format!("{}/app", dst.host), ", interval: 3s")
        ),
    )
    .unwrap();
    let server = ServerProcess::start(dir.path(), &["-c", "regsync.yml", "--listen", &format!("127.0.0.1:{port}")]);
    assert!(
        wait_for(Duration::from_secs(20), || http_get(port, "/readyz").is_some_and(|(s, _)| s == 200)),
        "{}",
        server.log()
    );
    // First pass: the missing v2 is copied, the stale v1 is left for the schedule (SRV-6).
    assert_eq!(dst.api().digest_of("app", "v2"), Some(b.digest.clone()));
    assert_eq!(dst.api().digest_of("app", "v1"), Some(stale.digest.clone()));
    assert!(
        wait_for(Duration::from_secs(10), || dst.api().digest_of("app", "v1") == Some(a.digest.clone())),
        "scheduled run: {}",
        server.log()
    );
    // A new source tag arrives within a few seconds.
    let started = Instant::now();
    let d = push(&src, &layout, "app", "d", "v3");
    assert!(wait_for(Duration::from_secs(10), || dst.api().digest_of("app", "v3") == Some(d.digest.clone())));
    eprintln!("new tag copied {:?} after it was pushed", started.elapsed());
    let (status, metrics) = http_get(port, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("# TYPE regsync_images_total counter\n") && !metrics.contains("# EOF"), "{metrics}");
    // Prometheus asks for OpenMetrics, and gets it.
    let om = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5")
        .send()
        .unwrap();
    assert!(om.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    assert!(om.text().unwrap().ends_with("# EOF\n"));
    assert!(metric(&metrics, "regsync_images_total{") >= 3.0);
    let copied = metric(
        &metrics,
        &format!("regsync_images_total{{source=\"{}/app\",target=\"{}/app\",action=\"copied\"}}", src.host, dst.host),
    );
    assert_eq!(copied, 3.0, "v2 in the first pass, v1 and v3 later:\n{metrics}");
    assert!(metric(&metrics, "regsync_step_last_success_timestamp_seconds{") > 1.0e9);
    assert_eq!(http_get(port, "/healthz").unwrap().0, 200);
    assert_eq!(count(&server.log(), "msg=\"Scheduled task\""), 1);
}

fn registry_client_crypto() {
    regsync_tests::registry::install_crypto_provider();
}

#[test]
fn readyz_waits_for_the_first_pass() {
    registry_client_crypto();
    let (src, dst) = (Registry::start_with(RegistryOptions::default().relative_urls()), Registry::start());
    let dir = tempfile::tempdir().unwrap();
    let layout = source_layout(&dir.path().join("layout"));
    push(&src, &layout, "app", "a", "v1");
    let proxy = FaultProxy::start(&src.url);
    proxy.add(Rule::new(Some("GET"), "/tags/list", Fault::Delay(Duration::from_secs(2)), 1));
    let port = free_port();
    std::fs::write(
        dir.path().join("regsync.yml"),
        format!(
            "{}sync:\n{}",
            creds(&[&proxy.host, &dst.host]),
            step(&format!("{}/app", proxy.host), &format!("{}/app", dst.host), ", interval: 1h")
        ),
    )
    .unwrap();
    let server = ServerProcess::start(dir.path(), &["-c", "regsync.yml", "--listen", &format!("127.0.0.1:{port}")]);
    assert!(wait_for(Duration::from_secs(5), || http_get(port, "/healthz").is_some()));
    assert_eq!(http_get(port, "/readyz").unwrap().0, 503, "not ready while the first pass runs");
    assert!(
        wait_for(Duration::from_secs(10), || http_get(port, "/readyz").is_some_and(|(s, _)| s == 200)),
        "{}",
        server.log()
    );
    assert!(dst.api().digest_of("app", "v1").is_some());
}

#[test]
fn reloads_add_change_and_remove_steps_and_reject_bad_files() {
    registry_client_crypto();
    let (src, dst) = (Registry::start(), Registry::start());
    let dir = tempfile::tempdir().unwrap();
    let layout = source_layout(&dir.path().join("layout"));
    for (tag, repo) in [("a", "one"), ("b", "two"), ("c", "three"), ("d", "two")] {
        push(&src, &layout, repo, tag, if repo == "two" && tag == "d" { "extra" } else { "v1" });
    }
    let (s, d) = (src.host.clone(), dst.host.clone());
    let config = dir.path().join("regsync.yml");
    let base = creds(&[&s, &d]);
    let one = step(&format!("{s}/one"), &format!("{d}/one"), ", interval: 1s");
    let two = step(&format!("{s}/two"), &format!("{d}/two"), ", interval: 1s, tags: {allow: [v1]}");
    std::fs::write(&config, format!("{base}sync:\n{one}{two}")).unwrap();
    let mut server = ServerProcess::start(dir.path(), &["-c", "regsync.yml"]);
    assert!(wait_for(Duration::from_secs(15), || dst.api().digest_of("two", "v1").is_some()), "{}", server.log());
    assert_eq!(dst.api().digest_of("two", "extra"), None);

    // Add a step: its images appear without a restart.
    let three = step(&format!("{s}/three"), &format!("{d}/three"), ", interval: 1s");
    let written = Instant::now();
    write_config(&config, &format!("{base}sync:\n{one}{two}{three}"));
    assert!(wait_for(Duration::from_secs(10), || dst.api().digest_of("three", "v1").is_some()), "{}", server.log());
    eprintln!("config write to the new step's first copy: {:?}", written.elapsed());
    let log = server.log();
    assert!(log.contains("added=1 changed=0 removed=0 unchanged=2"), "{log}");

    // Change one step's tags: only that step is rescheduled.
    let two_all = step(&format!("{s}/two"), &format!("{d}/two"), ", interval: 1s");
    write_config(&config, &format!("{base}sync:\n{one}{two_all}{three}"));
    assert!(wait_for(Duration::from_secs(10), || dst.api().digest_of("two", "extra").is_some()), "{}", server.log());
    let log = server.log();
    assert!(log.contains("added=0 changed=1 removed=0 unchanged=2"), "{log}");
    let scheduled = |repo: &str| count(&log, &format!("msg=\"Scheduled task\" source={s}/{repo} "));
    assert_eq!((scheduled("one"), scheduled("two"), scheduled("three")), (1, 2, 1));

    // An invalid file: the old config keeps running, the error names the line.
    write_config(
        &config,
        &format!("{base}sync:\n{one}  - {{source: \"{s}/x\", target: \"{d}/x\", type: nonsense, interval: 1s}}\n"),
    );
    assert!(wait_for(Duration::from_secs(10), || server.log().contains("Config reload rejected")), "{}", server.log());
    let log = server.log();
    assert!(log.contains("regsync.yml:8:70:") && log.contains("unknown type \\\"nonsense\\\""), "{log}");
    let runs_before = count(&log, &format!("msg=\"Running task\" source={s}/three"));
    assert!(
        wait_for(Duration::from_secs(10), || count(&server.log(), &format!("msg=\"Running task\" source={s}/three"))
            > runs_before + 1),
        "old config still running"
    );

    // Remove steps (and SIGHUP as the trigger): they stop running.
    std::fs::write(&config, format!("{base}sync:\n{one}")).unwrap();
    server.signal("HUP");
    assert!(wait_for(Duration::from_secs(10), || server.log().contains("removed=2")), "{}", server.log());
    std::thread::sleep(Duration::from_millis(300));
    let after = count(&server.log(), &format!("msg=\"Running task\" source={s}/three"));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        count(&server.log(), &format!("msg=\"Running task\" source={s}/three")),
        after,
        "a removed step runs no more"
    );
    assert!(count(&server.log(), &format!("msg=\"Running task\" source={s}/one")) > 3);
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0), "{}", server.log());
}

#[test]
fn a_reload_during_a_long_copy_does_not_break_it() {
    registry_client_crypto();
    let (src, dst) = (Registry::start_with(RegistryOptions::default().relative_urls()), Registry::start());
    let dir = tempfile::tempdir().unwrap();
    let layout = source_layout(&dir.path().join("layout"));
    let big = push(&src, &layout, "slow", "big", "v1");
    push(&src, &layout, "other", "a", "v1");
    let proxy = FaultProxy::start(&src.url);
    proxy.add(Rule::new(Some("GET"), "/slow/blobs/", Fault::Delay(Duration::from_secs(3)), 10));
    let config = dir.path().join("regsync.yml");
    let base = creds(&[&proxy.host, &src.host, &dst.host]);
    let slow = step(&format!("{}/slow", proxy.host), &format!("{}/slow", dst.host), ", interval: 1h");
    std::fs::write(&config, format!("{base}sync:\n{slow}")).unwrap();
    let server = ServerProcess::start(dir.path(), &["-c", "regsync.yml"]);
    assert!(wait_for(Duration::from_secs(10), || server.log().contains("Image sync running")), "{}", server.log());
    let other = step(&format!("{}/other", src.host), &format!("{}/other", dst.host), ", interval: 1h");
    write_config(&config, &format!("{base}sync:\n{slow}{other}"));
    assert!(
        wait_for(Duration::from_secs(20), || dst.api().digest_of("slow", "v1") == Some(big.digest.clone())),
        "{}",
        server.log()
    );
    assert!(server.log().contains("added=1 changed=0 removed=0 unchanged=1"));
    assert_eq!(dst.api().verify_tag("slow", "v1"), Vec::<String>::new());
    // The added step's copy waits for the one copy slot (`parallel: 1`), so
    // it starts only once the slow copy has pushed its tag.
    assert!(wait_for(Duration::from_secs(20), || dst.api().digest_of("other", "v1").is_some()), "{}", server.log());
}

#[test]
fn sigterm_waits_for_the_grace_period_and_a_second_signal_exits_at_once_sig_1() {
    registry_client_crypto();
    let (src, dst) = (Registry::start_with(RegistryOptions::default().relative_urls()), Registry::start());
    let dir = tempfile::tempdir().unwrap();
    let layout = source_layout(&dir.path().join("layout"));
    push(&src, &layout, "slow", "big", "v1");
    let proxy = FaultProxy::start(&src.url);
    proxy.add(Rule::new(Some("GET"), "/slow/blobs/", Fault::Delay(Duration::from_secs(8)), 100));
    std::fs::write(
        dir.path().join("regsync.yml"),
        format!(
            "{}sync:\n{}",
            creds(&[&proxy.host, &dst.host]),
            step(&format!("{}/slow", proxy.host), &format!("{}/slow", dst.host), ", interval: 1h")
        ),
    )
    .unwrap();

    // Grace 1s: the copy is cancelled and the server exits soon after, leaving no broken tag.
    let mut server = ServerProcess::start(dir.path(), &["-c", "regsync.yml", "--grace", "1s"]);
    assert!(wait_for(Duration::from_secs(10), || server.log().contains("Image sync running")));
    std::thread::sleep(Duration::from_millis(300));
    let stopped = Instant::now();
    server.signal("TERM");
    let code = server.wait_exit(Duration::from_secs(10));
    assert!(code.is_some(), "exited: {}", server.log());
    assert!(
        stopped.elapsed() < Duration::from_secs(4),
        "the grace period, then the copy is cancelled: {:?}",
        stopped.elapsed()
    );
    assert!(server.log().contains("Grace period over"), "{}", server.log());
    for tag in dst.api().tags("slow") {
        assert_eq!(dst.api().verify_tag("slow", &tag), Vec::<String>::new());
    }

    // A long grace, then a second SIGTERM: out at once.
    let mut server = ServerProcess::start(dir.path(), &["-c", "regsync.yml", "--grace", "60s"]);
    assert!(wait_for(Duration::from_secs(10), || server.log().contains("Image sync running")));
    server.signal("TERM");
    assert!(wait_for(Duration::from_secs(5), || server.log().contains("Waiting on running tasks")));
    let second = Instant::now();
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(5)), Some(1));
    assert!(second.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_failed_last_run_exits_one_and_secret_files_are_reread_on_reload() {
    registry_client_crypto();
    let src = Registry::start();
    let dst = Registry::start_with(RegistryOptions::default().user("ops", "right-password"));
    let dir = tempfile::tempdir().unwrap();
    let layout = source_layout(&dir.path().join("layout"));
    let a = push(&src, &layout, "app", "a", "v1");
    std::fs::write(dir.path().join("password"), "wrong-password\n").unwrap();
    let config = format!(
        "creds:\n  - {{registry: \"{s}\", tls: disabled}}\n  - registry: \"{d}\"\n    tls: disabled\n    user: ops\n    pass: '{{{{ file \"password\" }}}}'\ndefaults:\n  skipDockerConfig: true\nsync:\n{}",
        step(&format!("{}/app", src.host), &format!("{}/app", dst.host), ", interval: 1s"),
        s = src.host,
        d = dst.host
    );
    std::fs::write(dir.path().join("regsync.yml"), config).unwrap();
    let mut server = ServerProcess::start(dir.path(), &["-c", "regsync.yml"]);
    assert!(wait_for(Duration::from_secs(10), || server.log().contains("unauthorized")), "{}", server.log());
    assert!(!server.log().contains("wrong-password"), "the secret never reaches the log");
    // The file changes; the config file does not: SIGHUP re-reads it and rebuilds the client.
    std::fs::write(dir.path().join("password"), "right-password\n").unwrap();
    server.signal("HUP");
    assert!(wait_for(Duration::from_secs(10), || server.log().contains("client_rebuilt=true")), "{}", server.log());
    assert!(
        wait_for(Duration::from_secs(10), || dst.api().digest_of("app", "v1") == Some(a.digest.clone())),
        "{}",
        server.log()
    );
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0), "the last run succeeded: {}", server.log());

    // A step whose last run failed makes the exit code 1.
    std::fs::write(dir.path().join("password"), "wrong-password\n").unwrap();
    let mut server = ServerProcess::start(dir.path(), &["-c", "regsync.yml"]);
    assert!(wait_for(Duration::from_secs(10), || server.log().contains("First pass done")));
    assert!(wait_for(Duration::from_secs(10), || server.log().contains("unauthorized")), "{}", server.log());
    std::thread::sleep(Duration::from_millis(1500));
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(1));
}
