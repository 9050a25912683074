//! Throughput with `--shard`: 60 small repositories behind a source that
//! answers every request after 25 ms (our fault proxy in front of a real
//! registry: a source that paces each client), copied by 1, 2 and 4 shard
//! processes at once (and 8, and 1 again) into a fresh real registry each time. Prints wall time and
//! speed-up. Run with `cargo run --release -p regsync-tests --example shard_throughput`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use regsync_tests::bin::regsync_bin;
use regsync_tests::fixtures::{self, AMD64};
use regsync_tests::oci::LayoutReader;
use regsync_tests::proxy::{Fault, FaultProxy, Rule};
use regsync_tests::registry::Registry;

const REPOS: usize = 60;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let src = Registry::start();
    for i in 0..REPOS {
        let path = dir.path().join(format!("seed-{i}"));
        let mut l = fixtures::Layout::create(&path);
        let img = l.image(AMD64, &[("f", format!("repo {i}").as_bytes())]);
        l.tag("v1", &img);
        l.save();
        let reader = LayoutReader::open(&path);
        let (tag, desc) = reader.tags().into_iter().next().unwrap();
        src.api().push_from_layout(&reader, &format!("app-{i:02}"), &desc, Some(&tag)).unwrap();
    }
    let proxy = FaultProxy::start(&format!("http://{}", src.host));
    proxy.add(Rule::new(None, "/v2/", Fault::Delay(Duration::from_millis(25)), usize::MAX));
    println!("| shards | wall s | speed-up |");
    println!("|---|---|---|");
    let mut base = None;
    // The single-shard run again at the end: the first run of a fresh machine is slower.
    for n in [1usize, 2, 4, 8, 1] {
        let dst = Registry::start();
        let config = format!(
            "creds:\n  - {{registry: \"{p}\", tls: disabled}}\n  - {{registry: \"{d}\", tls: disabled}}\ndefaults:\n  skipDockerConfig: true\nsync:\n  - source: {p}\n    target: {d}/mirror\n    type: registry\n",
            p = proxy.host,
            d = dst.host
        );
        let path = dir.path().join(format!("n{n}.yml"));
        std::fs::write(&path, config).unwrap();
        let started = Instant::now();
        let children: Vec<_> = (0..n)
            .map(|i| {
                Command::new(regsync_bin())
                    .args(["once", "-c", path.to_str().unwrap(), "--shard", &format!("{i}/{n}"), "-v", "warn"])
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        let wall = started.elapsed().as_secs_f64();
        let speedup = base.map_or(1.0, |b: f64| b / wall);
        base.get_or_insert(wall);
        println!("| {n} | {wall:.2} | {speedup:.2}× |");
    }
}
