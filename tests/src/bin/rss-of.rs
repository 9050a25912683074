//! `rss-of OUT LIMIT_SECS PROGRAM ARGS...`: runs PROGRAM (its standard streams
//! are ours), kills it after LIMIT_SECS, and writes its peak resident memory
//! in KiB, its exit code and whether it was killed to OUT.
//!
//! The tests measure `regsync` through this small process rather than
//! directly: Linux counts the memory of the process a child is started from
//! into the child's peak (`ru_maxrss` takes the old address space's peak at
//! `exec`), and a test process with other tests running in it is large.

use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, limit, program, rest @ ..] = args.as_slice() else {
        eprintln!("usage: rss-of OUT LIMIT_SECS PROGRAM ARGS...");
        std::process::exit(2);
    };
    let limit = Duration::from_secs(limit.parse().expect("LIMIT_SECS is a number"));
    let started = Instant::now();
    let mut child = Command::new(program).args(rest).spawn().expect("start the program");
    let pid = child.id() as libc::pid_t;
    let mut killed = false;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: zeroed `rusage` is a valid value, and both pointers outlive the call.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child, reaped only here.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break (status, usage);
        }
        assert_eq!(r, 0, "wait4: {}", std::io::Error::last_os_error());
        if !killed && started.elapsed() > limit {
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    let report = format!("max_rss_kib={}\ncode={code}\nkilled={killed}\n", usage.ru_maxrss);
    std::fs::write(out, report).expect("write the report");
    std::process::exit(if code < 0 { 1 } else { code });
}
