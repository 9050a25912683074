//! Live progress of `once` in a real pseudo-terminal (tmux): a 200 MiB blob
//! goes to a real registry through a relay that caps the upload at 50 MB/s,
//! and the screen is read while it moves. Without a terminal, or with
//! `--logopt json`, nothing is drawn.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use regsync_tests::bin::{regsync_bin, run_in};
use regsync_tests::fixtures::{self, Layout, MT_CONFIG, MT_MANIFEST};
use regsync_tests::oci::sha256_digest;
use regsync_tests::registry::Registry;
use regsync_tests::slowlink::SlowLink;
use serde_json::json;

const BIG: usize = 200 << 20;

/// A layout holding one image with a 200 MiB layer, tagged `v1`.
fn big_image(dir: &Path, seed: u64) -> String {
    let mut l = Layout::create(dir);
    // Repeated noise: the bytes only have to be many and not all alike.
    let layer = fixtures::noise(seed, 1 << 20).repeat(BIG >> 20);
    let layer = l.blob("application/vnd.oci.image.layer.v1.tar", &layer);
    let config = json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
    });
    let config = l.json_blob(MT_CONFIG, &config);
    let manifest = json!({
        "schemaVersion": 2, "mediaType": MT_MANIFEST,
        "config": config.to_json(), "layers": [layer.to_json()],
    });
    let manifest = l.json_blob(MT_MANIFEST, &manifest);
    l.tag("v1", &manifest);
    l.save();
    manifest.digest
}

/// A tmux server of our own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let socket = format!("regsync-progress-{}-{}", std::process::id(), &sha256_digest(command.as_bytes())[7..15]);
        let t = Tmux { socket };
        // The pane stays after the command ends so the final screen can be read.
        let script = format!("{command}; echo \"__exit=$?\"; sleep 600");
        let ok = t.cmd(&["new-session", "-d", "-x", "300", "-y", "48", "sh", "-c", &script]).status.success();
        assert!(ok, "tmux new-session");
        t
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux").arg("-L").arg(&self.socket).args(args).env_remove("TMUX").output().expect("run tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p"]).stdout).into_owned()
    }

    /// Screens captured every 100 ms until the command has exited.
    fn watch(&self, limit: Duration) -> Vec<String> {
        let started = Instant::now();
        let mut frames = Vec::new();
        while started.elapsed() < limit {
            let s = self.screen();
            let done = s.contains("__exit=");
            frames.push(s);
            if done {
                return frames;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the command did not end within {limit:?}; last screen:\n{}", frames.last().unwrap());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// `sent 12.50 MiB at …`: the bytes the totals line shows, in MiB.
fn sent_mib(screen: &str) -> Option<f64> {
    let line = screen.lines().find(|l| l.trim_start().starts_with("sent "))?;
    let mut words = line.split_whitespace().skip(1);
    let (n, unit) = (words.next()?.parse::<f64>().ok()?, words.next()?);
    Some(match unit {
        "B" => n / 1048576.0,
        "KiB" => n / 1024.0,
        "MiB" => n,
        "GiB" => n * 1024.0,
        _ => return None,
    })
}

fn setup(dir: &Path, link: &SlowLink, repo: &str) -> String {
    big_image(&dir.join("big"), 11);
    let config = format!(
        "creds:\n  - registry: {link}\n    tls: disabled\ndefaults:\n  skipDockerConfig: true\nsync:\n  - source: ocidir://big:v1\n    target: {link}/{repo}:v1\n    type: image\n",
        link = link.host
    );
    std::fs::write(dir.join("regsync.yml"), config).unwrap();
    format!("cd {} && {} once -c regsync.yml", dir.display(), regsync_bin().display())
}

#[test]
fn a_terminal_shows_bytes_moving_and_keeps_the_summary_whole() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start();
    let link = SlowLink::start(&registry.host, 50_000_000);
    let command = setup(dir.path(), &link, "big");
    let tmux = Tmux::start(&command);
    let frames = tmux.watch(Duration::from_secs(120));
    let last = frames.last().unwrap();
    assert!(last.contains("__exit=0"), "{last}");

    // Bytes moving: the totals line grows across frames, a blob bar shows its size.
    let sent: Vec<f64> = frames.iter().filter_map(|f| sent_mib(f)).collect();
    let distinct = sent.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(distinct >= 3, "the sent bytes grew only {distinct} times: {sent:?}\n{}", frames[frames.len() / 2]);
    assert!(sent.iter().any(|&s| s > 10.0 && s < 190.0), "a frame mid-copy: {sent:?}");
    let mid = frames
        .iter()
        .filter(|f| sent_mib(f).is_some_and(|s| s > 10.0 && s < 190.0))
        .min_by_key(|f| (sent_mib(f).unwrap() - 100.0).abs() as u64)
        .unwrap();
    assert!(mid.contains("images 0/1"), "images done / found:\n{mid}");
    assert!(mid.contains("sha256:") && mid.contains("/200.00 MiB"), "the large blob's bar:\n{mid}");
    eprintln!("a frame mid-copy:\n{}", mid.trim_end());

    // The final screen: bars gone, log lines and the summary whole.
    eprintln!("the final screen:\n{}", last.trim_end());
    assert!(sent_mib(last).is_none() && !last.contains("images 1/1"), "bars are cleared:\n{last}");
    let summary: Vec<&str> = last.lines().filter(|l| l.starts_with("sync[0] ") || l.starts_with("total: ")).collect();
    assert_eq!(summary.len(), 2, "{last}");
    assert!(
        summary[0].ends_with(
            "1 copied, 0 up to date, 0 skipped, 0 failed; 2 blobs sent (200.0 MiB), 0 mounted, 0 already there"
        ),
        "{last}"
    );
    assert!(
        summary[1].starts_with("total: 1 copied, 0 up to date, 0 skipped, 0 failed; 200.0 MiB sent in 2 blobs"),
        "{last}"
    );
    assert!(
        last.lines().any(|l| l.contains("msg=\"Copy layer\"") && l.starts_with("time=")),
        "log lines intact:\n{last}"
    );
    assert!(registry.api().verify_tag("big", "v1").is_empty());
}

#[test]
fn no_terminal_or_json_logs_draw_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start();
    let link = SlowLink::start(&registry.host, 100_000_000);
    let command = setup(dir.path(), &link, "piped");
    // stderr is a pipe: plain log lines, no terminal control sequences.
    let r = run_in(dir.path(), &["once", "-c", "regsync.yml"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains('\x1b') && !r.stderr.contains('\r'), "{:?}", r.stderr);
    assert!(r.stderr.lines().all(|l| l.starts_with("time=")), "{}", r.stderr);

    // A terminal with --logopt json: JSON lines only, no bars.
    let json = command.replace("once -c regsync.yml", "once --logopt json -c regsync.yml");
    std::fs::write(
        dir.path().join("regsync.yml"),
        std::fs::read_to_string(dir.path().join("regsync.yml")).unwrap().replace("/piped:v1", "/json:v1"),
    )
    .unwrap();
    let tmux = Tmux::start(&json);
    let frames = tmux.watch(Duration::from_secs(120));
    assert!(frames.last().unwrap().contains("__exit=0"), "{}", frames.last().unwrap());
    for f in &frames {
        assert!(sent_mib(f).is_none() && !f.contains("images "), "no progress with JSON logs:\n{f}");
    }
    assert!(frames.last().unwrap().lines().any(|l| l.starts_with("{\"time\":")), "{}", frames.last().unwrap());
}
