//! Crash consistency: `regsync once` killed with SIGKILL at 50 random points
//! of a copy (25 into a registry, 25 into an OCI layout) never leaves a tag
//! that names something missing or a layout that is not valid, and a rerun
//! completes the copy. The kill points are spread over the whole length of
//! a copy, measured first on the same data.

use std::path::Path;
use std::time::{Duration, Instant};

use regsync_tests::fixtures::noise;
use regsync_tests::fixtures::{self, AMD64, ARM64};
use regsync_tests::oci::LayoutReader;
use regsync_tests::registry::Registry;

const KILLS: u64 = 25;

/// A source registry holding `app` with twelve two-platform images; tag → digest.
fn source() -> (Registry, tempfile::TempDir, Vec<(String, String)>) {
    let src = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let mut l = fixtures::Layout::create(dir.path().join("layout"));
    for i in 0..12u64 {
        let amd = l.image(AMD64, &[("base", &noise(1, 200_000)), ("top", &noise(10 + i, 250_000))]);
        let arm = l.image(ARM64, &[("base", &noise(2, 200_000)), ("top", &noise(50 + i, 250_000))]);
        let idx = l.index(&[amd, arm], None);
        l.tag(&format!("t{i}"), &idx);
    }
    l.save();
    let layout = LayoutReader::open(dir.path().join("layout"));
    let expected: Vec<(String, String)> = layout.tags().into_iter().map(|(t, d)| (t, d.digest)).collect();
    for (tag, d) in layout.tags() {
        src.api().push_from_layout(&layout, "app", &d, Some(&tag)).unwrap();
    }
    (src, dir, expected)
}

fn write_config(dir: &Path, name: &str, src: &str, extra_creds: &str, target: &str) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "creds:\n  - {{registry: \"{src}\", tls: disabled}}\n{extra_creds}defaults:\n  parallel: 2\n  skipDockerConfig: true\nsync:\n  - {{source: \"{src}/app\", target: \"{target}\", type: repository}}\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// How long a whole copy takes (a copy into `target`, thrown away after).
fn full_copy_time(config: &str) -> Duration {
    let started = Instant::now();
    let run = regsync_tests::bin::run(&["once", "-c", config]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    started.elapsed()
}

/// Starts a copy and kills it (SIGKILL) after `delay`.
fn kill_after(config: &str, delay: Duration) {
    let mut child = std::process::Command::new(regsync_tests::bin::regsync_bin())
        .args(["once", "-c", config, "-v", "error"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
}

/// Kill points spread over `[0, 1.1 × full]`, deterministic.
fn delays(full: Duration) -> impl Iterator<Item = Duration> {
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let span = (full.as_millis() as u64 * 11 / 10).max(50);
    (0..KILLS).map(move |_| {
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        Duration::from_millis(5 + (rng >> 33) % span)
    })
}

#[test]
fn killed_copies_into_a_registry_leave_only_complete_tags() {
    let (src, dir, expected) = source();
    let dst = Registry::start();
    let creds = format!("  - {{registry: \"{}\", tls: disabled}}\n", dst.host);
    let warm_up = write_config(dir.path(), "measure.yml", &src.host, &creds, &format!("{}/measure", dst.host));
    let full = full_copy_time(&warm_up);
    for (k, delay) in delays(full).enumerate() {
        let repo = format!("app{k}");
        let config =
            write_config(dir.path(), &format!("run{k}.yml"), &src.host, &creds, &format!("{}/{repo}", dst.host));
        kill_after(&config, delay);
        let present = dst.api().tags(&repo);
        for tag in &present {
            let problems = dst.api().verify_tag(&repo, tag);
            assert_eq!(problems, Vec::<String>::new(), "kill {k} after {delay:?}: {repo}:{tag} is broken");
        }
        let finish = regsync_tests::bin::run(&["once", "-c", &config]);
        assert_eq!(finish.code, 0, "kill {k}: {}", finish.stderr);
        for (tag, digest) in &expected {
            assert_eq!(
                dst.api().digest_of(&repo, tag).as_ref(),
                Some(digest),
                "kill {k}: {repo}:{tag} after the rerun"
            );
            assert_eq!(dst.api().verify_tag(&repo, tag), Vec::<String>::new());
        }
        eprintln!(
            "registry kill {k}: after {delay:?} of {full:?}, {} of {} tags were in place",
            present.len(),
            expected.len()
        );
    }
}

/// A layout is valid: its marker and `index.json` are there and parse, every
/// file among the blobs is a blob whose name is its digest, and everything a
/// tag reaches is present.
fn check_layout(layout: &Path, when: &str) -> usize {
    if !layout.join("index.json").exists() {
        let blobs = std::fs::read_dir(layout.join("blobs/sha256")).map(|d| d.count()).unwrap_or(0);
        assert_eq!(blobs, 0, "{when}: blobs without an index.json");
        return 0;
    }
    assert!(layout.join("oci-layout").exists(), "{when}: no oci-layout marker");
    let bytes = std::fs::read(layout.join("index.json")).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{when}: index.json does not parse: {e}"));
    assert!(index["manifests"].is_array(), "{when}: {index}");
    let reader = LayoutReader::open(layout);
    assert_eq!(reader.verify(), Vec::<String>::new(), "{when}");
    reader.tags().len()
}

#[test]
fn killed_copies_into_a_layout_leave_it_valid_and_a_rerun_converges() {
    let (src, dir, expected) = source();
    let out = dir.path().join("out");
    let warm_up =
        write_config(dir.path(), "measure.yml", &src.host, "", &format!("ocidir://{}", out.join("measure").display()));
    let full = full_copy_time(&warm_up);
    for (k, delay) in delays(full).enumerate() {
        let layout = out.join(format!("l{k}"));
        let config =
            write_config(dir.path(), &format!("run{k}.yml"), &src.host, "", &format!("ocidir://{}", layout.display()));
        kill_after(&config, delay);
        let present = check_layout(&layout, &format!("kill {k} after {delay:?}"));
        let finish = regsync_tests::bin::run(&["once", "-c", &config]);
        assert_eq!(finish.code, 0, "kill {k}: {}", finish.stderr);
        assert_eq!(check_layout(&layout, &format!("rerun after kill {k}")), expected.len());
        let tags = LayoutReader::open(&layout).tags();
        for (tag, digest) in &expected {
            assert_eq!(tags.get(tag).map(|d| &d.digest), Some(digest), "kill {k}: {tag} after the rerun");
        }
        // What the killed run was writing was swept by the rerun.
        let left: Vec<_> = std::fs::read_dir(layout.join(".regsync-tmp")).into_iter().flatten().flatten().collect();
        assert!(left.is_empty(), "kill {k}: temporary files left: {left:?}");
        eprintln!("layout kill {k}: after {delay:?} of {full:?}, {present} of {} tags were in place", expected.len());
    }
}

#[test]
fn a_failed_copy_into_a_layout_leaves_no_temporary_file_and_old_ones_are_swept() {
    use regsync_tests::proxy::{Fault, FaultProxy, Rule};
    let (src, dir, expected) = source();
    let proxy = FaultProxy::start(&src.url);
    let layout = dir.path().join("out");
    let config = write_config(dir.path(), "corrupt.yml", &proxy.host, "", &format!("ocidir://{}", layout.display()));
    // Every blob read is corrupted on the way: each digest check fails mid-copy.
    proxy.add(Rule::new(Some("GET"), "/blobs/", Fault::Corrupt, 10_000));
    let run = regsync_tests::bin::run(&["once", "-c", &config]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("digest mismatch"), "{}", run.stderr);
    check_layout(&layout, "after the digest mismatches");
    let left: Vec<_> = std::fs::read_dir(layout.join(".regsync-tmp")).into_iter().flatten().flatten().collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");

    // What a killed run (or an older version) left is removed by the next writer;
    // a file another writer holds (locked) is not.
    std::fs::create_dir_all(layout.join(".regsync-tmp")).unwrap();
    std::fs::write(layout.join(".regsync-tmp/4242-0-stale"), b"half a blob").unwrap();
    std::fs::write(layout.join("blobs/sha256/.tmp-4242-1-old"), b"half a blob").unwrap();
    let held = std::fs::File::create(layout.join(".regsync-tmp/4243-0-held")).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let config = write_config(dir.path(), "clean.yml", &src.host, "", &format!("ocidir://{}", layout.display()));
    let run = regsync_tests::bin::run(&["once", "-c", &config]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(check_layout(&layout, "after the clean run"), expected.len());
    assert!(!layout.join(".regsync-tmp/4242-0-stale").exists(), "a stale temporary file is swept");
    assert!(!layout.join("blobs/sha256/.tmp-4242-1-old").exists(), "an old-style one among the blobs too");
    assert!(layout.join(".regsync-tmp/4243-0-held").exists(), "a file being written is left alone");
    drop(held);
}
