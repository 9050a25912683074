//! The server's status page and `/status.json`, against a server syncing
//! from the real test registry with one healthy and one failing step: over
//! HTTP (the data, the headers, escaping), in headless Chromium driven by
//! playwright-core (`tests/browser/status-page.mjs`: rows, the failure, the
//! next run, a config edit applied and a broken one rejected without a page
//! reload, and a `<script>` shown as text), and with `promtool check metrics`
//! on the live `/metrics`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use regsync_tests::bin::{ServerProcess, free_port, http_get, plain_creds, wait_for};
use regsync_tests::fixtures::{AMD64, Layout};
use regsync_tests::oci::LayoutReader;
use regsync_tests::registry::Registry;

fn config(src: &str, dst: &str, extra_step: &str) -> String {
    format!(
        "{}defaults:\n  interval: 1h\nsync:\n  - source: {src}/app\n    target: {dst}/app\n    type: repository\n  - source: {src}/missing\n    target: {dst}/missing\n    type: repository\n{extra_step}",
        plain_creds(&[src, dst])
    )
}

fn status(port: u16) -> serde_json::Value {
    let (code, body) = http_get(port, "/status.json").expect("status.json answers");
    assert_eq!(code, 200);
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Playwright-core, which `scripts/test.sh` installs with npm.
fn playwright_home() -> PathBuf {
    let home = regsync_tests::plugins::tools_dir().join("browser").join("node_modules").join("playwright-core");
    assert!(
        home.join("package.json").is_file(),
        "playwright-core missing: run scripts/test.sh, or `npm install --prefix target/plugin-tools/browser playwright-core@1.64.1`"
    );
    assert!(Path::new("/usr/bin/chromium").is_file(), "chromium missing: apt-get install chromium");
    home
}

struct Setup {
    dir: tempfile::TempDir,
    port: u16,
    server: ServerProcess,
    src: Registry,
    dst: Registry,
}

fn start() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (Registry::start(), Registry::start());
    let mut l = Layout::create(dir.path().join("layout"));
    for tag in ["v1", "v2"] {
        let d = l.image(AMD64, &[("f", tag.as_bytes())]);
        l.tag(tag, &d);
    }
    l.save();
    src.api().push_layout(&LayoutReader::open(l.dir()), "app").unwrap();
    std::fs::write(dir.path().join("regsync.yml"), config(&src.host, &dst.host, "")).unwrap();
    let port = free_port();
    let server = ServerProcess::start(dir.path(), &["-c", "regsync.yml", "--listen", &format!("127.0.0.1:{port}")]);
    assert!(
        wait_for(Duration::from_secs(30), || http_get(port, "/readyz").is_some_and(|(s, _)| s == 200)),
        "{}",
        server.log()
    );
    // The first pass is done; the schedules start right after.
    assert!(wait_for(Duration::from_secs(10), || status(port)["steps"][0]["next_run"].is_string()), "{}", status(port));
    Setup { dir, port, server, src, dst }
}

#[test]
fn the_status_json_and_page_show_steps_failures_registries_and_reloads() {
    let s = start();
    let doc = status(s.port);
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["config_file"], "regsync.yml");
    let (healthy, failing) = (&doc["steps"][0], &doc["steps"][1]);
    assert_eq!(healthy["source"], format!("{}/app", s.src.host));
    assert_eq!(healthy["schedule"], "@every 1h0m0s");
    assert_eq!(healthy["last_run"]["ok"], true, "{doc}");
    assert_eq!(healthy["last_run"]["copied"], 2, "{doc}");
    assert_eq!(failing["last_run"]["ok"], false, "{doc}");
    let error = failing["failures"][0]["error"].as_str().unwrap();
    assert!(error.contains("missing"), "{error}");
    let next: chrono::DateTime<chrono::Utc> = healthy["next_run"].as_str().unwrap().parse().unwrap();
    let left = next - chrono::Utc::now();
    assert!(left > chrono::Duration::minutes(58) && left <= chrono::Duration::hours(1), "{left}");
    let registries: Vec<&str> =
        doc["registries"].as_array().unwrap().iter().map(|r| r["registry"].as_str().unwrap()).collect();
    assert!(registries.contains(&s.src.host.as_str()) && registries.contains(&s.dst.host.as_str()), "{doc}");
    let src = doc["registries"].as_array().unwrap().iter().find(|r| r["registry"] == s.src.host.as_str()).unwrap();
    assert!(src["requests"].as_u64().unwrap() > 0, "{src}");
    assert!(doc["last_reload"].is_null());

    // The page: headers, then a reload that names a `<script>`.
    let resp = reqwest::blocking::get(format!("http://127.0.0.1:{}/", s.port)).unwrap();
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.starts_with("default-src 'none'; style-src 'sha256-"), "{csp}");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let page = resp.text().unwrap();
    assert!(page.contains(&format!("{}/missing", s.src.host)) && page.contains("No reload since start"), "{page}");

    let bad = "  - source: \"<script>window.__pwned=1</script>\"\n    target: ocidir://x\n    type: repository\n";
    std::fs::write(s.dir.path().join("regsync.yml"), config(&s.src.host, &s.dst.host, bad)).unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || status(s.port)["last_reload"]["applied"] == false),
        "{}",
        s.server.log()
    );
    let doc = status(s.port);
    assert!(doc["last_reload"]["errors"].to_string().contains("<script>window.__pwned=1</script>"), "{doc}");
    assert_eq!(doc["steps"].as_array().unwrap().len(), 2, "the running config stays");
    let page = http_get(s.port, "/").unwrap().1;
    assert!(page.contains("Last reload rejected"), "{page}");
    assert!(page.contains("&lt;script&gt;window.__pwned=1&lt;/script&gt;"), "{page}");
    assert!(!page.contains("<script>window.__pwned"), "never as markup");
    // Read-only: nothing but GET.
    let post =
        reqwest::blocking::Client::new().post(format!("http://127.0.0.1:{}/status.json", s.port)).send().unwrap();
    assert_eq!(post.status(), 405);
}

#[test]
fn in_a_browser_the_page_updates_itself_and_shows_a_rejected_edit_as_text() {
    let home = playwright_home();
    let s = start();
    let (good, bad) = (s.dir.path().join("good.yml"), s.dir.path().join("bad.yml"));
    let extra = "  - source: ocidir://nowhere\n    target: ocidir://elsewhere\n    type: repository\n";
    std::fs::write(&good, config(&s.src.host, &s.dst.host, extra)).unwrap();
    let broken = "  - source: \"<script>window.__pwned=1</script>\"\n    target: ocidir://x\n    type: repository\n";
    std::fs::write(&bad, config(&s.src.host, &s.dst.host, broken)).unwrap();
    let shots = regsync_tests::repo_root().join("target");
    let script = regsync_tests::repo_root().join("tests/browser/status-page.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{}/", s.port))
        .arg(s.dir.path().join("regsync.yml"))
        .arg(&good)
        .arg(&bad)
        .arg(&shots)
        .env("PLAYWRIGHT_HOME", &home)
        .output()
        .expect("run node");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser checks failed:\n{stdout}\n{stderr}\nserver:\n{}", s.server.log());
    assert_eq!(stdout.trim(), "ok");
    for shot in ["status-applied.png", "status-rejected.png"] {
        let png = std::fs::read(shots.join(shot)).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{shot}: {} bytes", png.len());
    }
}

fn promtool() -> &'static str {
    assert!(Path::new("/usr/bin/promtool").is_file(), "promtool missing: apt-get install prometheus");
    "/usr/bin/promtool"
}

fn promtool_ok(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new(promtool())
        .args(args)
        .current_dir(regsync_tests::repo_root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn the_monitoring_kit_passes_promtool_and_the_live_metrics_are_valid() {
    promtool_ok(&["check", "rules", "examples/monitoring/alerts.yml"], None);
    let tested = promtool_ok(&["test", "rules", "examples/monitoring/alerts_test.yml"], None);
    assert!(tested.contains("SUCCESS"), "{tested}");
    // Every alert has a unit test.
    let rules = std::fs::read_to_string(regsync_tests::repo_root().join("examples/monitoring/alerts.yml")).unwrap();
    let tests =
        std::fs::read_to_string(regsync_tests::repo_root().join("examples/monitoring/alerts_test.yml")).unwrap();
    for alert in rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")) {
        assert!(tests.contains(&format!("alertname: {alert}")), "{alert} has no test");
    }
    // The dashboard is JSON and queries only metrics the server exports.
    let s = start();
    let (_, metrics) = http_get(s.port, "/metrics").unwrap();
    promtool_ok(&["check", "metrics"], Some(&metrics));
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(regsync_tests::repo_root().join("examples/monitoring/dashboard.json")).unwrap(),
    )
    .unwrap();
    // Both query only metrics the server exports (a unit test keeps FAMILIES true).
    for (what, text) in [("dashboard", dashboard.to_string()), ("alerts", rules)] {
        for name in text.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| w.starts_with("regsync_")) {
            assert!(
                regsync::metrics::FAMILIES.contains(&name),
                "the {what} query {name}, which regsync does not export"
            );
        }
    }
    let exported = metrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")).count();
    assert!(exported >= 8, "{metrics}");
    drop(s);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The README's way in: `regsync server` with the quickstart config serves the page.
#[test]
fn the_quickstart_config_serves_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let root = regsync_tests::repo_root();
    copy_dir(&root.join("examples/layouts"), &dir.path().join("examples/layouts"));
    std::fs::copy(root.join("examples/quickstart.yml"), dir.path().join("quickstart.yml")).unwrap();
    let port = free_port();
    let server = ServerProcess::start(dir.path(), &["-c", "quickstart.yml", "--listen", &format!("127.0.0.1:{port}")]);
    assert!(
        wait_for(Duration::from_secs(30), || http_get(port, "/readyz").is_some_and(|(s, _)| s == 200)),
        "{}",
        server.log()
    );
    let doc = status(port);
    for step in doc["steps"].as_array().unwrap() {
        assert_eq!(step["last_run"]["ok"], true, "{doc}");
        assert_eq!(step["schedule"], "@every 1h0m0s");
    }
    let (code, page) = http_get(port, "/").unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("ocidir://examples/layouts/hello:v1 → ocidir://examples/out/hello:v1"), "{page}");
    assert!(dir.path().join("examples/out/hello/index.json").is_file());
}
