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
    use std::io::Write;
    let mut child = Command::new(regsync_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("DOCKER_CONFIG")
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
