//! What must not stall regsync: a credential helper that never answers, a
//! reload still waiting on one when SIGTERM comes, and hostile clients of the
//! metrics endpoint.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use regsync_tests::bin::{ServerProcess, free_port, run_in_env, wait_for};
use regsync_tests::fixtures::{self, AMD64};
use regsync_tests::registry::{Registry, RegistryOptions};

/// A layout with one tag, `v1`.
fn layout(dir: &Path) -> String {
    let mut l = fixtures::Layout::create(dir);
    let img = l.image(AMD64, &[("file", b"a small image")]);
    l.tag("v1", &img);
    l.save();
    format!("ocidir://{}", dir.display())
}

/// Installs `docker-credential-<name>` in `bin`: a shell script that records
/// its process group, touches `<bin>/<name>.<verb>.started`, then sleeps
/// (in a child process, so only killing the group ends it).
fn hanging_helper(bin: &Path, name: &str) {
    let script = format!(
        "#!/bin/sh\necho $$ >> '{groups}'\ntouch '{bin}/{name}.'\"$1\"'.started'\nsleep 60\n",
        groups = bin.join("groups").display(),
        bin = bin.display()
    );
    let path = bin.join(format!("docker-credential-{name}"));
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn path_with(bin: &Path) -> String {
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

/// Process groups the helpers ran in that still have a live member.
fn live_helper_groups(bin: &Path) -> Vec<String> {
    let groups = std::fs::read_to_string(bin.join("groups")).unwrap_or_default();
    groups
        .lines()
        .filter(|g| {
            // Zombies are dead already; whether they are reaped is up to PID 1.
            let out = std::process::Command::new("ps").args(["-o", "stat=", "-g", g]).output().expect("run ps");
            String::from_utf8_lossy(&out.stdout).lines().any(|stat| !stat.trim_start().starts_with('Z'))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn a_credential_helper_that_hangs_is_stopped_at_its_deadline_and_the_sync_fails_clearly() {
    regsync_tests::registry::install_crypto_provider();
    let reg = Registry::start_with(RegistryOptions::default().user("carol", "secret"));
    let dir = tempfile::tempdir().unwrap();
    let source = layout(&dir.path().join("layout"));
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    hanging_helper(&bin, "sleepy");
    hanging_helper(&bin, "stuck");
    // The Docker config's credential store is listed when the client is built.
    let docker = dir.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    std::fs::write(docker.join("config.json"), r#"{"credsStore":"stuck"}"#).unwrap();
    let config = format!(
        "creds:\n  - registry: \"{h}\"\n    tls: disabled\n    credHelper: docker-credential-sleepy\nsync:\n  - {{source: \"{source}\", target: \"{h}/app\", type: repository}}\n",
        h = reg.host
    );
    std::fs::write(dir.path().join("regsync.yml"), config).unwrap();
    let env = [
        ("PATH", path_with(&bin)),
        ("DOCKER_CONFIG", docker.display().to_string()),
        ("REGSYNC_CREDENTIAL_HELPER_TIMEOUT", "1s".to_string()),
    ];
    regsync_tests::bin::regsync_bin();
    let started = Instant::now();
    let run = run_in_env(dir.path(), &["once", "-c", "regsync.yml"], None, &env);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    for (helper, verb) in [("stuck", "list"), ("sleepy", "get")] {
        let line = format!("docker-credential-{helper} {verb} did not answer within 1s and was stopped");
        assert!(run.stderr.contains(&line), "{line}: {}", run.stderr);
    }
    assert!(run.stderr.contains("unauthorized"), "without a login the push is refused: {}", run.stderr);
    // Each helper would sleep a minute; the run waited one deadline for each.
    assert!(took < Duration::from_secs(20), "took {took:?}: {}", run.stderr);
    assert!(bin.join("sleepy.get.started").exists() && bin.join("stuck.list.started").exists());
    assert!(
        wait_for(Duration::from_secs(2), || live_helper_groups(&bin).is_empty()),
        "the helpers' children were killed too: {:?}",
        live_helper_groups(&bin)
    );
    assert_eq!(reg.api().digest_of("app", "v1"), None);
}

#[test]
fn sigterm_during_a_reload_waiting_on_a_credential_helper_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let source = layout(&dir.path().join("layout"));
    let target = format!("ocidir://{}", dir.path().join("target").display());
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    hanging_helper(&bin, "stuck");
    let docker = dir.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    let step = format!("sync:\n  - {{source: \"{source}\", target: \"{target}\", type: repository, interval: 1h}}\n");
    let config = dir.path().join("regsync.yml");
    std::fs::write(&config, &step).unwrap();
    let env = [
        ("PATH", path_with(&bin)),
        ("DOCKER_CONFIG", docker.display().to_string()),
        ("REGSYNC_CREDENTIAL_HELPER_TIMEOUT", "5m".to_string()),
    ];
    let mut server = ServerProcess::start_env(dir.path(), &["-c", "regsync.yml"], &env);
    assert!(wait_for(Duration::from_secs(20), || server.log().contains("First pass done")), "{}", server.log());

    // New creds rebuild the client, which lists the (now hanging) credential store.
    std::fs::write(docker.join("config.json"), r#"{"credsStore":"stuck"}"#).unwrap();
    let tmp = config.with_extension("tmp");
    std::fs::write(&tmp, format!("creds:\n  - {{registry: \"127.0.0.1:9\", tls: disabled}}\n{step}")).unwrap();
    std::fs::rename(&tmp, &config).unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || bin.join("stuck.list.started").exists()),
        "the reload runs the helper: {}",
        server.log()
    );

    let stopped = Instant::now();
    server.signal("TERM");
    let code = server.wait_exit(Duration::from_secs(10));
    let took = stopped.elapsed();
    assert_eq!(code, Some(0), "{}", server.log());
    assert!(took < Duration::from_secs(3), "SIGTERM answered in {took:?}: {}", server.log());
    let log = server.log();
    assert!(log.contains("Stopping server"), "{log}");
    assert!(!log.contains("Config reload: applied"), "the reload never finished: {log}");
    assert!(
        wait_for(Duration::from_secs(2), || live_helper_groups(&bin).is_empty()),
        "the helper died with the server: {:?}",
        live_helper_groups(&bin)
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn healthz(port: u16) -> Result<Duration, String> {
    let started = Instant::now();
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(1)).build().unwrap();
    let resp = client.get(format!("http://127.0.0.1:{port}/healthz")).send().map_err(|e| e.to_string())?;
    if resp.status() != 200 {
        return Err(format!("status {}", resp.status()));
    }
    Ok(started.elapsed())
}

/// Sends one request head whose header line never ends, reconnecting each
/// time the server gives up on it, until `stop`.
fn endless_header(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut connections = 0;
        let chunk = vec![b'a'; 4096];
        while !stop.load(Ordering::SeqCst) {
            let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else { continue };
            connections += 1;
            let _ = conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ");
            while !stop.load(Ordering::SeqCst) && conn.write_all(&chunk).is_ok() {}
            std::thread::sleep(Duration::from_millis(1));
        }
        connections
    })
}

#[test]
fn the_metrics_endpoint_outlasts_idle_and_endless_clients() {
    regsync_tests::registry::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let source = layout(&dir.path().join("layout"));
    let target = format!("ocidir://{}", dir.path().join("target").display());
    std::fs::write(
        dir.path().join("regsync.yml"),
        format!("sync:\n  - {{source: \"{source}\", target: \"{target}\", type: repository, interval: 1s}}\n"),
    )
    .unwrap();
    let port = free_port();
    let server = ServerProcess::start(dir.path(), &["-c", "regsync.yml", "--listen", &format!("127.0.0.1:{port}")]);
    assert!(wait_for(Duration::from_secs(20), || healthz(port).is_ok()), "{}", server.log());
    assert!(wait_for(Duration::from_secs(10), || server.log().contains("First pass done")));
    let rss_before = rss_kib(server.pid());
    let runs_before = server.log().matches("msg=\"Running task\"").count();

    let idle: Vec<TcpStream> = (0..200).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = endless_header(port, stop.clone());
    // Past the header deadline, so the idle connections are dropped meanwhile.
    let attack = Instant::now();
    let mut slowest = Duration::ZERO;
    while attack.elapsed() < Duration::from_secs(8) {
        match healthz(port) {
            Ok(took) => slowest = slowest.max(took),
            Err(e) => panic!("/healthz failed {:?} into the attack: {e}\n{}", attack.elapsed(), server.log()),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let rss_during = rss_kib(server.pid());
    stop.store(true, Ordering::SeqCst);
    let endless_connections = writer.join().unwrap();
    let runs_during = server.log().matches("msg=\"Running task\"").count() - runs_before;
    eprintln!(
        "slowest /healthz {slowest:?}; {endless_connections} endless-header connections; {runs_during} runs; RSS {rss_before} -> {rss_during} KiB"
    );
    assert!(runs_during >= 4, "the 1s schedule kept running: {runs_during} runs in 8 s");
    assert!(endless_connections >= 2, "the server cut the endless header off and the client came back");
    assert!(rss_during < rss_before + 10 * 1024, "RSS {rss_before} KiB -> {rss_during} KiB");
    // The server closed every idle connection at its header deadline.
    for mut conn in idle {
        conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut answer = Vec::new();
        // End of stream, or a reset: either way the server let go (a read timeout means it did not).
        if let Err(e) = conn.read_to_end(&mut answer) {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "idle connection still open: {e}");
        }
    }
}
