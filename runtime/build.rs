//! Records version-control details for `regsync version` (CLI-7).

use std::process::Command;

fn run(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn main() {
    let commit = run("git", &["rev-parse", "HEAD"]);
    let tag = run("git", &["describe", "--tags", "--exact-match", "HEAD"]);
    let branch = run("git", &["rev-parse", "--abbrev-ref", "HEAD"]);
    let date = run("git", &["log", "-1", "--format=%cI"]);
    let dirty = !run("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = run(&rustc, &["--version"]);
    println!("cargo:rustc-env=REGSYNC_VCS_COMMIT={commit}");
    println!("cargo:rustc-env=REGSYNC_VCS_TAG={tag}");
    println!("cargo:rustc-env=REGSYNC_VCS_REF={}", if tag.is_empty() { branch } else { tag.clone() });
    println!("cargo:rustc-env=REGSYNC_VCS_DATE={date}");
    println!(
        "cargo:rustc-env=REGSYNC_VCS_STATE={}",
        if commit.is_empty() {
            ""
        } else if dirty {
            "dirty"
        } else {
            "clean"
        }
    );
    println!("cargo:rustc-env=REGSYNC_RUSTC_VERSION={rustc_version}");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs");
    println!("cargo:rerun-if-changed=build.rs");
}
