//! Interruption safety: `regsync once` killed with SIGKILL at random points
//! during uploads never leaves a target tag whose manifest names a missing
//! blob or child, and the next run completes the copy.

use std::time::Duration;

use regsync_tests::fixtures::noise;
use regsync_tests::fixtures::{self, AMD64, ARM64};
use regsync_tests::oci::LayoutReader;
use regsync_tests::registry::Registry;

#[test]
fn killed_runs_leave_only_complete_tags() {
    let src = Registry::start();
    let dst = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let mut l = fixtures::Layout::create(dir.path().join("layout"));
    for i in 0..8u64 {
        let amd = l.image(AMD64, &[("base", &noise(1, 500_000)), ("top", &noise(10 + i, 1_500_000))]);
        let arm = l.image(ARM64, &[("base", &noise(2, 500_000)), ("top", &noise(50 + i, 1_500_000))]);
        let idx = l.index(&[amd, arm], None);
        l.tag(&format!("t{i}"), &idx);
    }
    l.save();
    let layout = LayoutReader::open(dir.path().join("layout"));
    let expected: Vec<(String, String)> = layout.tags().into_iter().map(|(t, d)| (t, d.digest)).collect();
    for (tag, d) in layout.tags() {
        src.api().push_from_layout(&layout, "app", &d, Some(&tag)).unwrap();
    }
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    for seed in 1..=5 {
        let repo = format!("app{seed}");
        let config = dir.path().join(format!("run{seed}.yml"));
        std::fs::write(
            &config,
            format!(
                "creds:\n  - {{registry: \"{s}\", tls: disabled}}\n  - {{registry: \"{d}\", tls: disabled}}\ndefaults:\n  parallel: 4\n  skipDockerConfig: true\nsync:\n  - {{source: \"{s}/app\", target: \"{d}/{repo}\", type: repository}}\n",
                s = src.host,
                d = dst.host
            ),
        )
        .unwrap();
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let delay = Duration::from_millis(20 + (rng >> 33) % 600);
        let mut child = std::process::Command::new(regsync_tests::bin::regsync_bin())
            .args(["once", "-c", &config.display().to_string(), "-v", "error"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let present = dst.api().tags(&repo);
        for tag in &present {
            assert_eq!(
                dst.api().verify_tag(&repo, tag),
                Vec::<String>::new(),
                "seed {seed} (killed after {delay:?}): {repo}:{tag} is broken"
            );
        }
        let finish = regsync_tests::bin::run(&["once", "-c", &config.display().to_string()]);
        assert_eq!(finish.code, 0, "seed {seed}: {}", finish.stderr);
        for (tag, digest) in &expected {
            assert_eq!(
                dst.api().digest_of(&repo, tag).as_ref(),
                Some(digest),
                "seed {seed}: {repo}:{tag} after the rerun"
            );
            assert_eq!(dst.api().verify_tag(&repo, tag), Vec::<String>::new());
        }
        eprintln!("seed {seed}: killed after {delay:?} with {} of {} tags in place", present.len(), expected.len());
    }
}
