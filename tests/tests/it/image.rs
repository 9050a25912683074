//! The container image of `scripts/image.sh`: built from a musl binary of the
//! `image-test` profile (unoptimised, no debug info: the release build is the
//! script's default, and CI has no time for a second optimised build), read
//! back from its OCI layout, run from its own root filesystem, and pushed to
//! a real registry by regsync itself.

use std::path::Path;
use std::process::Command;

use regsync_tests::bin::run_in;
use regsync_tests::fixtures;
use regsync_tests::oci::LayoutReader;
use regsync_tests::registry::Registry;
use serde_json::Value;

/// Build details passed the way a build without `.git` gets them.
const VCS: [(&str, &str); 5] = [
    ("REGSYNC_VCS_TAG", "v0.0.0-imagetest"),
    ("REGSYNC_VCS_REF", "imagetest"),
    ("REGSYNC_VCS_COMMIT", "0123456789abcdef0123456789abcdef01234567"),
    ("REGSYNC_VCS_STATE", "clean"),
    ("REGSYNC_VCS_DATE", "2026-01-02T03:04:05Z"),
];

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// Runs `bin args` in the unpacked image as its user, with its environment:
/// chrooted when we are root (CI), so only the image's own files are there.
fn run_in_image(rootfs: &Path, env: &[String], args: &[&str]) -> std::process::Output {
    let root = rustix::process::geteuid().is_root();
    let mut cmd = if root {
        // By path: the environment below is the image's, whose PATH has no chroot.
        let mut c = Command::new("/usr/sbin/chroot");
        c.arg("--userspec=65532:65532").arg(rootfs).arg("/usr/local/bin/regsync");
        c
    } else {
        Command::new(rootfs.join("usr/local/bin/regsync"))
    };
    cmd.env_clear().args(args);
    for kv in env {
        let (k, v) = kv.split_once('=').unwrap();
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn the_image_builds_runs_from_its_own_root_and_pushes_with_regsync() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("image");
    let mut build = Command::new(regsync_tests::repo_root().join("scripts/image.sh"));
    build.env("REGSYNC_IMAGE_PROFILE", "image-test").env("REGSYNC_IMAGE_OUT", &out);
    for (k, v) in VCS {
        build.env(k, v);
    }
    let built = build.output().unwrap();
    let log = String::from_utf8_lossy(&built.stdout).into_owned() + &String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "scripts/image.sh failed:\n{log}");
    eprintln!("{}", log.lines().find(|l| l.starts_with("image: ")).unwrap_or_default());

    // The layout: one manifest tagged with the version, its config and one layer.
    let layout = LayoutReader::open(out.join("oci"));
    let tags = layout.tags();
    let tag = VCS[0].1;
    let manifest_desc = tags.get(tag).unwrap_or_else(|| panic!("tag {tag} in {tags:?}"));
    let manifest = json(&layout.blob(&manifest_desc.digest).unwrap());
    let config = json(&layout.blob(manifest["config"]["digest"].as_str().unwrap()).unwrap());
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532", "non-root by default");
    assert_eq!(c["Entrypoint"], serde_json::json!(["regsync"]));
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    let labels = &c["Labels"];
    assert_eq!(labels["org.opencontainers.image.version"], tag);
    assert_eq!(labels["org.opencontainers.image.revision"], VCS[2].1);
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    assert!(labels["org.opencontainers.image.source"].as_str().is_some_and(|s| s.starts_with("https://")), "{labels}");
    let env: Vec<String> = c["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert!(env.contains(&"HOME=/home/appuser".to_string()), "{env:?}");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "FROM scratch plus one layer");
    let size: u64 = layers.iter().map(|l| l["size"].as_u64().unwrap()).sum::<u64>()
        + manifest["config"]["size"].as_u64().unwrap()
        + manifest_desc.size;
    eprintln!("image size (image-test binary): {size} bytes compressed");

    // Owners as the tar records them: root everywhere but the user's home.
    let layer = out.join("oci/blobs/sha256").join(layers[0]["digest"].as_str().unwrap().trim_start_matches("sha256:"));
    let listing = Command::new("tar").arg("-tvzf").arg(&layer).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let owner = |path: &str| {
        let line = listing.lines().find(|l| l.ends_with(path)).unwrap_or_else(|| panic!("{path} in\n{listing}"));
        line.split_whitespace().nth(1).unwrap().to_string()
    };
    assert_eq!(owner("./usr/local/bin/regsync"), "0/0");
    assert_eq!(owner("./home/appuser/.docker/config.json"), "65532/65532");
    assert_eq!(owner("./home/appuser/.cache/regsync/plugins/"), "65532/65532");
    assert!(listing.lines().any(|l| l.starts_with("drwxrwxrwt") && l.ends_with("./tmp/")), "{listing}");

    // Unpack it and run from it, as its user, with its environment.
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    let unpacked =
        Command::new("tar").args(["--same-owner", "-xzf"]).arg(&layer).arg("-C").arg(&rootfs).status().unwrap();
    assert!(unpacked.success());
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.lines().any(|l| l.starts_with("appuser:x:65532:65532:") && l.contains(":/home/appuser:")),
        "{passwd}"
    );
    assert_eq!(std::fs::read_to_string(rootfs.join("home/appuser/.docker/config.json")).unwrap().trim(), "{}");
    assert!(std::fs::metadata(rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap().len() > 1000);

    let version = run_in_image(
        &rootfs,
        &env,
        &["version", "--format", "{{.VCSTag}} {{.VCSCommit}} {{.PluginWIT}} {{.Wasmtime}}"],
    );
    let printed = String::from_utf8_lossy(&version.stdout).into_owned();
    assert!(version.status.success(), "{printed}{}", String::from_utf8_lossy(&version.stderr));
    let fields: Vec<&str> = printed.split(' ').collect();
    assert_eq!(fields[..2], [VCS[0].1, VCS[2].1], "the environment's VCS fields: {printed}");
    assert!(fields[2].contains('.') && fields[3].contains('.'), "WIT and wasmtime versions: {printed}");

    // A real `once` from inside the image: a layout in its /tmp to a real registry.
    let registry = Registry::start();
    let index = fixtures::example_layout(&rootfs.join("tmp/hello"));
    let root = rustix::process::geteuid().is_root();
    if root {
        // The image's user writes the layout's temporary files when it copies.
        let chown = Command::new("chown").args(["-R", "65532:65532"]).arg(rootfs.join("tmp/hello")).status();
        assert!(chown.unwrap().success());
    }
    let in_image =
        |p: &str| if root { p.to_string() } else { rootfs.join(p.trim_start_matches('/')).display().to_string() };
    let sync = format!(
        "creds:\n  - registry: {h}\n    tls: disabled\nsync:\n  - source: ocidir://{src}:v1\n    target: {h}/hello:v1\n    type: image\n",
        h = registry.host,
        src = in_image("/tmp/hello")
    );
    std::fs::write(rootfs.join("tmp/regsync.yml"), sync).unwrap();
    let once = run_in_image(&rootfs, &env, &["once", "-c", &in_image("/tmp/regsync.yml")]);
    assert!(
        once.status.success(),
        "{}{}",
        String::from_utf8_lossy(&once.stdout),
        String::from_utf8_lossy(&once.stderr)
    );
    assert_eq!(registry.api().digest_of("hello", "v1").as_deref(), Some(index.digest.as_str()));
    assert!(registry.api().verify_tag("hello", "v1").is_empty());

    // The image itself, pushed by our own regsync from its layout, digests equal.
    let push = format!(
        "creds:\n  - registry: {h}\n    tls: disabled\ndefaults:\n  skipDockerConfig: true\nsync:\n  - source: ocidir://{src}:{tag}\n    target: {h}/tools/regsync:{tag}\n    type: image\n",
        h = registry.host,
        src = out.join("oci").display()
    );
    std::fs::write(work.path().join("push.yml"), push).unwrap();
    let pushed = run_in(work.path(), &["once", "-c", "push.yml"], None);
    assert_eq!(pushed.code, 0, "{}{}", pushed.stdout, pushed.stderr);
    assert_eq!(registry.api().digest_of("tools/regsync", tag).as_deref(), Some(manifest_desc.digest.as_str()));
    assert!(registry.api().verify_tag("tools/regsync", tag).is_empty(), "every blob of the image is in the registry");
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    assert_eq!(registry.api().blob("tools/regsync", config_digest).map(|b| json(&b)), Some(config));
}
