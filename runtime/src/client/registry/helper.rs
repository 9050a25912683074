//! Running Docker credential helpers (`docker-credential-<name> get|list`).
//!
//! A helper is someone else's program: it may wait on a keychain prompt or a
//! dead D-Bus forever. Each run gets a deadline, and the helper's whole
//! process group is killed when the deadline passes or the caller gives up
//! (a cancelled sync, a server shutting down), so a hung helper costs one
//! timeout, never a hung sync.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::duration::GoDuration;

/// Environment variable that overrides [`DEFAULT_TIMEOUT`] (a Go duration such as `10s`).
pub const TIMEOUT_ENV: &str = "REGSYNC_CREDENTIAL_HELPER_TIMEOUT";

/// How long one helper run may take unless [`TIMEOUT_ENV`] says otherwise.
/// Generous: a desktop helper may ask the user to unlock a keychain.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a helper run gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// The program could not be started (usually: not on `PATH`).
    #[error("cannot run {program}: {source}")]
    Start {
        /// The helper program.
        program: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The program did not finish in time and was killed.
    #[error("{program} {verb} did not answer within {after} and was stopped (set {TIMEOUT_ENV} to wait longer)")]
    TimedOut {
        /// The helper program.
        program: String,
        /// `get` or `list`.
        verb: String,
        /// The deadline it missed.
        after: GoDuration,
    },
    /// The program exited with an error.
    #[error("{program} {verb} exited with {status}")]
    Failed {
        /// The helper program.
        program: String,
        /// `get` or `list`.
        verb: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// The program's answer is not what the helper protocol says.
    #[error("{program} gave an unreadable answer: {reason}")]
    Unreadable {
        /// The helper program.
        program: String,
        /// What was wrong with it.
        reason: String,
    },
    /// Talking to the program failed.
    #[error("{program}: {source}")]
    Io {
        /// The helper program.
        program: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// The deadline for one helper run: [`TIMEOUT_ENV`] if set and valid, else
/// [`DEFAULT_TIMEOUT`].
pub fn timeout() -> Duration {
    match std::env::var(TIMEOUT_ENV) {
        Ok(text) => match GoDuration::parse(text.trim()) {
            Ok(d) if d.as_nanos() > 0 => d.to_std(),
            _ => {
                tracing::warn!(value = text, "Ignoring {TIMEOUT_ENV}: not a positive duration such as 30s");
                DEFAULT_TIMEOUT
            }
        },
        Err(_) => DEFAULT_TIMEOUT,
    }
}

/// Runs `program verb`, writes `input` to its stdin, and returns its stdout.
/// The helper's stderr goes to ours, as with Docker.
pub async fn run(program: &str, verb: &str, input: &str) -> Result<Vec<u8>, HelperError> {
    let limit = timeout();
    let io = |source| HelperError::Io { program: program.to_string(), source };
    let mut child = tokio::process::Command::new(program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // Its own process group, so a shell-script helper's children die with it.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| HelperError::Start { program: program.to_string(), source })?;
    let group = GroupGuard(child.id());
    let talk = async {
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).await.map_err(io)?;
        }
        child.wait_with_output().await.map_err(io)
    };
    let out = match tokio::time::timeout(limit, talk).await {
        Ok(out) => out?,
        Err(_) => {
            return Err(HelperError::TimedOut {
                program: program.to_string(),
                verb: verb.to_string(),
                after: GoDuration::from(limit),
            });
        }
    };
    group.disarm();
    if !out.status.success() {
        return Err(HelperError::Failed { program: program.to_string(), verb: verb.to_string(), status: out.status });
    }
    Ok(out.stdout)
}

/// Kills a helper's process group when dropped before [`GroupGuard::disarm`]:
/// on a timeout, and when the future running the helper is dropped.
struct GroupGuard(Option<u32>);

impl GroupGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let Some(pid) = self.0.and_then(|id| rustix::process::Pid::from_raw(id as i32)) else { return };
        // The group may already be gone; nothing to report then.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}
