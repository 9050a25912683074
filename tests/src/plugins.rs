//! The plugins of `plugins/`, built for real once per test process: the
//! Rust ones with cargo for `wasm32-wasip2`, the Python ones with
//! componentize-py (installed by `scripts/test.sh` into
//! `target/plugin-tools/venv`). A missing toolchain fails the test that needs
//! it, with the command that installs it; nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where built components and tools live.
pub fn tools_dir() -> PathBuf {
    crate::repo_root().join("target").join("plugin-tools")
}

/// The precompiled-component cache the `regsync` processes of the tests share,
/// so each large component is compiled once per machine rather than per test.
pub fn cache_dir() -> PathBuf {
    tools_dir().join("cache")
}

fn plugins_root() -> PathBuf {
    crate::repo_root().join("plugins")
}

fn cargo_build(target_dir: &Path, packages: &[&str], env: &[(&str, &str)]) {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "--locked", "--release", "--target", "wasm32-wasip2"])
        .arg("--manifest-path")
        .arg(plugins_root().join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir);
    for p in packages {
        cmd.args(["-p", p]);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let status = cmd.status().expect("run cargo for the plugins");
    assert!(status.success(), "building plugins failed; is the target installed? `rustup target add wasm32-wasip2`");
}

/// The Rust plugins: crate name → component file.
fn rust_plugins() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = plugins_root().join("target");
        cargo_build(&target, &[], &[]);
        target.join("wasm32-wasip2").join("release")
    })
}

/// The component of a Rust plugin crate (`keep-latest`, `semver-fns`, `test-loop`, …).
pub fn rust_plugin(name: &str) -> PathBuf {
    let file = rust_plugins().join(format!("{}.wasm", name.replace('-', "_")));
    assert!(file.is_file(), "{} missing after build", file.display());
    file
}

/// `keep-latest` built to keep `count` tags when its config says nothing: a
/// different component, as a new release of a plugin would be.
pub fn keep_latest_with_default(count: u32) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<Vec<(u32, PathBuf)>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap();
    if let Some((_, p)) = built.iter().find(|(c, _)| *c == count) {
        return p.clone();
    }
    // Its own target dir, so the default build is not invalidated back and forth.
    let target = plugins_root().join("target").join(format!("keep-latest-{count}"));
    cargo_build(&target, &["keep-latest"], &[("KEEP_LATEST_COUNT", &count.to_string())]);
    let file = target.join("wasm32-wasip2").join("release").join("keep_latest.wasm");
    built.push((count, file.clone()));
    file
}

/// componentize-py: `$REGSYNC_COMPONENTIZE_PY`, else the one `scripts/test.sh` installs.
fn componentize_py() -> PathBuf {
    let tool = std::env::var_os("REGSYNC_COMPONENTIZE_PY")
        .map(PathBuf::from)
        .unwrap_or_else(|| tools_dir().join("venv").join("bin").join("componentize-py"));
    assert!(
        tool.is_file(),
        "{} missing: run scripts/test.sh, or `python3 -m venv target/plugin-tools/venv && \
         target/plugin-tools/venv/bin/pip install componentize-py==0.25.1`",
        tool.display()
    );
    tool
}

/// A Python with oras-py (the ORAS project's OCI artifact client), which
/// `scripts/test.sh` installs into the same venv: a standard tool to push
/// plugin artifacts with.
pub fn oras_python() -> PathBuf {
    let python = tools_dir().join("venv").join("bin").join("python");
    let ok = Command::new(&python).args(["-c", "import oras.client"]).status().is_ok_and(|s| s.success());
    assert!(ok, "oras-py missing: run scripts/test.sh, or `target/plugin-tools/venv/bin/pip install oras==0.2.43`");
    python
}

fn newest_mtime(paths: &[PathBuf]) -> std::time::SystemTime {
    paths.iter().filter_map(|p| p.metadata().and_then(|m| m.modified()).ok()).max().unwrap_or(std::time::UNIX_EPOCH)
}

/// A Python plugin of `plugins/DIR` for `world`, built when its sources changed.
pub fn python_plugin(dir: &str, world: &str) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap();
    let out = tools_dir().join(format!("{dir}.wasm"));
    let sources = [plugins_root().join(dir).join("app.py"), crate::repo_root().join("wit").join("regsync-plugin.wit")];
    let fresh = out.metadata().and_then(|m| m.modified()).is_ok_and(|built| built >= newest_mtime(&sources));
    if !fresh {
        std::fs::create_dir_all(tools_dir()).unwrap();
        let status = Command::new(plugins_root().join("build-python.sh"))
            .args([dir, world])
            .arg(&out)
            .arg(componentize_py())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run build-python.sh");
        assert!(status.success(), "componentize-py failed for plugins/{dir}");
    }
    out
}

/// Where `scripts/test.sh` installs componentize-js (npm), pinned.
fn componentize_js_home() -> PathBuf {
    let home = tools_dir().join("js");
    let entry = home.join("node_modules/@bytecodealliance/componentize-js/src/componentize.js");
    assert!(
        entry.is_file(),
        "componentize-js missing: run scripts/test.sh, or `npm install --prefix target/plugin-tools/js \
         @bytecodealliance/componentize-js@0.23.0`"
    );
    home
}

/// The JavaScript keep-latest tag filter (componentize-js), built when its sources changed.
pub fn keep_latest_js() -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap();
    let dir = plugins_root().join("keep-latest-js");
    let out = tools_dir().join("keep-latest-js.wasm");
    let sources =
        [dir.join("keep-latest.js"), dir.join("build.mjs"), crate::repo_root().join("wit/regsync-plugin.wit")];
    let fresh = out.metadata().and_then(|m| m.modified()).is_ok_and(|built| built >= newest_mtime(&sources));
    if !fresh {
        let status = Command::new("node")
            .arg(dir.join("build.mjs"))
            .arg(&out)
            .env("COMPONENTIZE_JS_HOME", componentize_js_home())
            .status()
            .expect("run node (Node.js 20 is needed for the JavaScript plugin)");
        assert!(status.success(), "componentize-js failed for plugins/keep-latest-js");
    }
    out
}

/// The Python webhook notifier.
pub fn webhook_py() -> PathBuf {
    python_plugin("webhook-py", "notifier-plugin")
}

/// The Python require-sbom gate.
pub fn require_sbom_py() -> PathBuf {
    python_plugin("require-sbom-py", "gate-plugin")
}

/// The Python keep-latest tag filter.
pub fn keep_latest_py() -> PathBuf {
    python_plugin("keep-latest-py", "tag-filter-plugin")
}
