//! Records build details for `regsync version` (CLI-7): version-control
//! fields from git, the plugin WIT version and the wasmtime version.
//!
//! A build without `.git` (a source tarball, a container build that copies
//! no history) takes the VCS fields from environment variables of the same
//! names (`REGSYNC_VCS_TAG`, `REGSYNC_VCS_REF`, `REGSYNC_VCS_COMMIT`,
//! `REGSYNC_VCS_STATE`, `REGSYNC_VCS_DATE`); set, they win over git too.

use std::process::Command;

const VCS_VARS: [&str; 5] =
    ["REGSYNC_VCS_TAG", "REGSYNC_VCS_REF", "REGSYNC_VCS_COMMIT", "REGSYNC_VCS_STATE", "REGSYNC_VCS_DATE"];

fn run(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The VCS fields as git sees them, in the order of [`VCS_VARS`].
fn from_git() -> [String; 5] {
    let commit = run("git", &["rev-parse", "HEAD"]);
    let tag = run("git", &["describe", "--tags", "--exact-match", "HEAD"]);
    let branch = run("git", &["rev-parse", "--abbrev-ref", "HEAD"]);
    let date = run("git", &["log", "-1", "--format=%cI"]);
    let dirty = !run("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    let state = if commit.is_empty() {
        ""
    } else if dirty {
        "dirty"
    } else {
        "clean"
    };
    let reference = if tag.is_empty() { branch } else { tag.clone() };
    [tag, reference, commit, state.to_string(), date]
}

/// `version = "…"` of the first `[[package]]` named `name` in a Cargo.lock.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            let v = lines.next()?.trim().strip_prefix("version = \"")?.strip_suffix('"')?;
            return Some(v.to_string());
        }
    }
    None
}

/// `X` of `package ns:name@X;` in the WIT file.
fn wit_version(wit: &str) -> Option<String> {
    wit.lines()
        .find_map(|l| l.trim().strip_prefix("package "))
        .and_then(|p| p.trim_end_matches(';').split_once('@'))
        .map(|(_, v)| v.to_string())
}

fn main() {
    let git = from_git();
    for (var, found) in VCS_VARS.iter().zip(git) {
        println!("cargo:rerun-if-env-changed={var}");
        let value = std::env::var(var).unwrap_or(found);
        println!("cargo:rustc-env={var}={value}");
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    println!("cargo:rustc-env=REGSYNC_RUSTC_VERSION={}", run(&rustc, &["--version"]));
    let lock = std::fs::read_to_string("../Cargo.lock").unwrap_or_default();
    let wasmtime = locked_version(&lock, "wasmtime").unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=REGSYNC_WASMTIME_VERSION={wasmtime}");
    let wit = std::fs::read_to_string("../wit/regsync-plugin.wit").unwrap_or_default();
    println!("cargo:rustc-env=REGSYNC_PLUGIN_WIT={}", wit_version(&wit).unwrap_or_else(|| "unknown".into()));
    // A missing path would make cargo rerun this script on every build.
    for path in ["../.git/HEAD", "../.git/refs", "../Cargo.lock"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=../wit/regsync-plugin.wit");
    println!("cargo:rerun-if-changed=build.rs");
}
