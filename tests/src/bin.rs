//! Runs the real `regsync` binary, built once per test process.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The `regsync` binary of this workspace, built on first use with the
/// cargo that builds the tests (a separate test crate cannot ask cargo for
/// another package's binary directly).
pub fn regsync_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "regsync-runtime", "--bin", "regsync"])
            .current_dir(crate::repo_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building regsync failed");
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| crate::repo_root().join("target"), PathBuf::from);
        let bin = target.join("debug").join("regsync");
        assert!(bin.exists(), "{} missing after build", bin.display());
        bin
    })
    .clone()
}

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// The images of its `--format json` report by tag: action and reason.
    pub fn actions(&self) -> std::collections::BTreeMap<String, (String, String)> {
        let doc: serde_json::Value =
            serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout));
        let mut out = std::collections::BTreeMap::new();
        for step in doc["steps"].as_array().expect("steps") {
            for i in step["images"].as_array().expect("images") {
                let tag = i["target"].as_str().unwrap().rsplit(':').next().unwrap().to_string();
                let reason = i["reason"].as_str().unwrap_or_default().to_string();
                out.insert(tag, (i["action"].as_str().unwrap().to_string(), reason));
            }
        }
        out
    }

    /// This run, after asserting it exited 0 (the output in the message if not).
    pub fn expect_ok(self) -> Run {
        assert_eq!(self.code, 0, "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// Writes `yaml` to `dir/regsync.yml` and runs `regsync once -c regsync.yml EXTRA` there.
pub fn once_with(dir: &std::path::Path, yaml: &str, extra: &[&str]) -> Run {
    std::fs::write(dir.join("regsync.yml"), yaml).expect("write regsync.yml");
    let mut args = vec!["once", "-c", "regsync.yml"];
    args.extend_from_slice(extra);
    run_in(dir, &args, None)
}

/// A `creds:` block with a plain-HTTP entry per host (the tests' registries).
pub fn plain_creds(hosts: &[&str]) -> String {
    let mut y = String::from("creds:\n");
    for h in hosts {
        y += &format!("  - {{registry: \"{h}\", tls: disabled}}\n");
    }
    y
}

/// `GET http://127.0.0.1:{port}{path}`: status and body, `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    crate::registry::install_crypto_provider();
    let resp = reqwest::blocking::get(format!("http://127.0.0.1:{port}{path}")).ok()?;
    Some((resp.status().as_u16(), resp.text().unwrap_or_default()))
}

/// A free TCP port on 127.0.0.1 (free when asked; bind it soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// Runs `regsync ARGS` in `dir` with `stdin` as input.
pub fn run_in(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Run {
    run_in_env(dir, args, stdin, &[])
}

/// Runs `regsync ARGS` in `dir` with `stdin` as input and extra environment variables.
pub fn run_in_env(dir: &std::path::Path, args: &[&str], stdin: Option<&str>, env: &[(&str, String)]) -> Run {
    use std::io::Write;
    let mut child = Command::new(regsync_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("DOCKER_CONFIG")
        .env("REGSYNC_PLUGIN_CACHE", crate::plugins::cache_dir())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start regsync");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait for regsync").into()
}

/// Runs `regsync ARGS` in the repository root.
pub fn run(args: &[&str]) -> Run {
    run_in(&crate::repo_root(), args, None)
}

/// A `regsync server` running in the background, its stderr in a file.
pub struct ServerProcess {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl ServerProcess {
    /// Starts `regsync server ARGS` in `dir`, logging at debug.
    pub fn start(dir: &std::path::Path, args: &[&str]) -> ServerProcess {
        Self::start_env(dir, args, &[])
    }

    /// Starts `regsync server ARGS` in `dir` with extra environment variables.
    pub fn start_env(dir: &std::path::Path, args: &[&str], env: &[(&str, String)]) -> ServerProcess {
        Self::spawn(dir, "server", args, env)
    }

    /// Starts `regsync once ARGS` in `dir`, to watch or stop it while it runs.
    pub fn start_once(dir: &std::path::Path, args: &[&str]) -> ServerProcess {
        Self::spawn(dir, "once", args, &[])
    }

    fn spawn(dir: &std::path::Path, command: &str, args: &[&str], env: &[(&str, String)]) -> ServerProcess {
        let log = dir.join(format!("{command}-{}.log", std::process::id() ^ rand_suffix()));
        let file = std::fs::File::create(&log).expect("process log");
        let child = Command::new(regsync_bin())
            .arg(command)
            .args(args)
            .args(["-v", "debug"])
            .current_dir(dir)
            .env_remove("DOCKER_CONFIG")
            .env("REGSYNC_PLUGIN_CACHE", crate::plugins::cache_dir())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start regsync");
        ServerProcess { child, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal (`TERM`, `INT`, `HUP`).
    pub fn signal(&self, name: &str) {
        Command::new("kill").args([&format!("-{name}"), &self.pid().to_string()]).status().expect("kill");
    }

    /// Waits up to `limit` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> Option<i32> {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(1);
    N.fetch_add(1, Ordering::SeqCst) << 20
}

/// Polls `check` every 50 ms until it holds or `limit` passes.
pub fn wait_for(limit: std::time::Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    check()
}

/// A finished run with what it cost.
#[derive(Debug)]
pub struct Measured {
    /// Exit code, output.
    pub run: Run,
    /// Peak resident memory of the `regsync` process, KiB.
    pub max_rss_kib: u64,
    /// Wall time from start to exit.
    pub elapsed: std::time::Duration,
    /// True when `limit` passed and the process was killed.
    pub killed: bool,
}

/// Runs `regsync ARGS` in `dir` under `rss_of` (the tests crate's `rss-of`
/// binary, `env!("CARGO_BIN_EXE_rss-of")` in a test), which kills it after
/// `limit` and reports its own child's peak memory: measured from a small
/// process, so the test process's size does not count (see that binary).
pub fn run_measured(rss_of: &str, dir: &std::path::Path, args: &[&str], limit: std::time::Duration) -> Measured {
    let started = std::time::Instant::now();
    let report = tempfile::NamedTempFile::new().expect("report file");
    let out = Command::new(rss_of)
        .arg(report.path())
        .arg(limit.as_secs().max(1).to_string())
        .arg(regsync_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("DOCKER_CONFIG")
        .env("REGSYNC_PLUGIN_CACHE", crate::plugins::cache_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run regsync under rss-of");
    let text = std::fs::read_to_string(report.path()).unwrap_or_default();
    let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap_or_default().to_string();
    let mut run = Run::from(out);
    run.code = field("code").parse().unwrap_or(-1);
    Measured {
        run,
        max_rss_kib: field("max_rss_kib").parse().unwrap_or(u64::MAX),
        elapsed: started.elapsed(),
        killed: field("killed") == "true",
    }
}
