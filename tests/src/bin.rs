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
        let log = dir.join(format!("server-{}.log", std::process::id() ^ rand_suffix()));
        let file = std::fs::File::create(&log).expect("server log");
        let child = Command::new(regsync_bin())
            .arg("server")
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
            .expect("start regsync server");
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
    /// Peak resident memory of the process, KiB (the kernel's `ru_maxrss`).
    pub max_rss_kib: u64,
    /// Wall time from start to exit.
    pub elapsed: std::time::Duration,
    /// True when `limit` passed and the process was killed.
    pub killed: bool,
}

/// Runs `regsync ARGS` in `dir`, killing it after `limit`, and measures its
/// peak memory with `wait4` (only this process, not the test's others).
// The child is reaped by `wait4` below, which std's `Child` cannot see.
#[allow(clippy::zombie_processes)]
pub fn run_measured(dir: &std::path::Path, args: &[&str], limit: std::time::Duration) -> Measured {
    use std::io::Read;
    let started = std::time::Instant::now();
    let mut child = Command::new(regsync_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("DOCKER_CONFIG")
        .env("REGSYNC_PLUGIN_CACHE", crate::plugins::cache_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start regsync");
    let (mut out, mut err) = (child.stdout.take().expect("stdout"), child.stderr.take().expect("stderr"));
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let pid = child.id() as libc::pid_t;
    let mut killed = false;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: zeroed `rusage` is a valid value, and both pointers outlive the call.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child, not yet reaped (std's `Child` is never waited on).
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break (status, usage);
        }
        assert!(r == 0, "wait4 failed: {}", std::io::Error::last_os_error());
        if !killed && started.elapsed() > limit {
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    Measured {
        run: Run { code, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() },
        max_rss_kib: usage.ru_maxrss as u64,
        elapsed: started.elapsed(),
        killed,
    }
}
