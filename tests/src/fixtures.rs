//! A generator of OCI image layouts for tests: single images, multi-platform
//! indexes, artifacts with a `subject` (referrers), referrers fallback tags,
//! digest tags, and an index that contains its own referrer. Output is
//! deterministic: the same calls give the same bytes and digests.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

use crate::oci::{self, Descriptor};

/// OCI image index media type.
pub const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest media type.
pub const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config media type.
pub const MT_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Gzip layer media type.
pub const MT_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The empty config of artifacts.
pub const MT_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The tag annotation in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A platform triple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// OS.
    pub os: &'static str,
    /// Architecture.
    pub arch: &'static str,
    /// Variant, or "".
    pub variant: &'static str,
}

/// `linux/amd64`
pub const AMD64: Platform = Platform { os: "linux", arch: "amd64", variant: "" };
/// `linux/arm64`
pub const ARM64: Platform = Platform { os: "linux", arch: "arm64", variant: "" };
/// `linux/arm/v7`
pub const ARMV7: Platform = Platform { os: "linux", arch: "arm", variant: "v7" };
/// `linux/arm/v6`
pub const ARMV6: Platform = Platform { os: "linux", arch: "arm", variant: "v6" };

impl Platform {
    fn json(&self) -> Value {
        let mut p = json!({"architecture": self.arch, "os": self.os});
        if !self.variant.is_empty() {
            p["variant"] = json!(self.variant);
        }
        p
    }
}

/// Deterministic xorshift bytes from `seed`: gzip cannot shrink them, so a
/// layer made of them is about `size` bytes, and different seeds never share blobs.
pub fn noise(seed: u64, size: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A tar holding one file; fixed metadata keeps it deterministic.
pub fn tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..107].copy_from_slice(b"0000644");
    header[108..115].copy_from_slice(b"0000000");
    header[116..123].copy_from_slice(b"0000000");
    header[124..135].copy_from_slice(format!("{:011o}", content.len()).as_bytes());
    header[136..147].copy_from_slice(b"00000000000");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(content);
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    tar
}

/// Gzip with a zero mtime, so output depends on the input only.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(bytes).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

/// An OCI layout being written.
pub struct Layout {
    dir: PathBuf,
    entries: Vec<Value>,
}

impl Layout {
    /// Starts a layout in `dir` (created if missing).
    pub fn create(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("create layout dir");
        std::fs::write(dir.join("oci-layout"), b"{\"imageLayoutVersion\":\"1.0.0\"}").expect("write oci-layout");
        Layout { dir, entries: Vec::new() }
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores bytes as a blob and describes them.
    pub fn blob(&mut self, media_type: &str, bytes: &[u8]) -> Descriptor {
        let digest = oci::sha256_digest(bytes);
        let path = self.dir.join("blobs/sha256").join(&digest["sha256:".len()..]);
        std::fs::write(path, bytes).expect("write blob");
        Descriptor::new(media_type, &digest, bytes.len() as u64)
    }

    /// Stores a JSON document (manifest, index, config) as a blob.
    pub fn json_blob(&mut self, media_type: &str, doc: &Value) -> Descriptor {
        let bytes = serde_json::to_vec(doc).expect("serialise json");
        self.blob(media_type, &bytes)
    }

    /// A single-platform image: a config and one layer per entry of `files`.
    pub fn image(&mut self, platform: Platform, files: &[(&str, &[u8])]) -> Descriptor {
        self.image_made(platform, files, Some("2024-01-01T00:00:00Z"), &[])
    }

    /// [`Self::image`] with its config's `created` (none: left out) and labels.
    pub fn image_made(
        &mut self,
        platform: Platform,
        files: &[(&str, &[u8])],
        created: Option<&str>,
        labels: &[(&str, &str)],
    ) -> Descriptor {
        let tars: Vec<Vec<u8>> = files.iter().map(|(name, content)| tar(name, content)).collect();
        let layers: Vec<Descriptor> = tars.iter().map(|t| self.blob(MT_LAYER, &gzip(t))).collect();
        let diff_ids: Vec<String> = tars.iter().map(|t| oci::sha256_digest(t)).collect();
        let mut config = platform.json();
        if let Some(created) = created {
            config["created"] = json!(created);
        }
        config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
        config["config"] = if labels.is_empty() {
            json!({})
        } else {
            json!({ "Labels": labels.iter().copied().collect::<BTreeMap<&str, &str>>() })
        };
        let config = self.json_blob(MT_CONFIG, &config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": config.to_json(),
            "layers": layers.iter().map(Descriptor::to_json).collect::<Vec<_>>(),
        });
        let mut desc = self.json_blob(MT_MANIFEST, &manifest);
        desc.platform = Some(platform.json());
        desc
    }

    /// An index of `children` (their platforms are listed).
    pub fn index(&mut self, children: &[Descriptor], subject: Option<&Descriptor>) -> Descriptor {
        let mut doc = json!({
            "schemaVersion": 2,
            "mediaType": MT_INDEX,
            "manifests": children.iter().map(Descriptor::to_json).collect::<Vec<_>>(),
        });
        if let Some(s) = subject {
            doc["subject"] = s.without_platform().to_json();
        }
        self.json_blob(MT_INDEX, &doc)
    }

    /// An artifact manifest (OCI image manifest with `artifactType`), optionally
    /// referring to `subject`.
    pub fn artifact(
        &mut self,
        artifact_type: &str,
        subject: Option<&Descriptor>,
        payloads: &[(&str, &[u8])],
        annotations: &[(&str, &str)],
    ) -> Descriptor {
        let config = self.blob(MT_EMPTY, b"{}");
        let layers: Vec<Descriptor> = payloads.iter().map(|(mt, bytes)| self.blob(mt, bytes)).collect();
        let annotations: BTreeMap<&str, &str> = annotations.iter().copied().collect();
        let mut doc = json!({
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "artifactType": artifact_type,
            "config": config.to_json(),
            "layers": layers.iter().map(Descriptor::to_json).collect::<Vec<_>>(),
        });
        if let Some(s) = subject {
            doc["subject"] = s.without_platform().to_json();
        }
        if !annotations.is_empty() {
            doc["annotations"] = json!(annotations);
        }
        let mut desc = self.json_blob(MT_MANIFEST, &doc);
        desc.artifact_type = Some(artifact_type.to_string());
        desc.annotations = annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        desc
    }

    /// The referrers fallback tag `sha256-<hex>` of `subject`: an index listing `referrers`,
    /// as a registry without the referrers API holds it.
    pub fn referrers_tag(&mut self, subject: &Descriptor, referrers: &[Descriptor]) -> Descriptor {
        let listed: Vec<Descriptor> = referrers.iter().map(Descriptor::without_platform).collect();
        let index = self.index(&listed, None);
        self.tag(&oci::fallback_tag(&subject.digest), &index);
        index
    }

    /// Names `desc` with a tag in `index.json`.
    pub fn tag(&mut self, tag: &str, desc: &Descriptor) {
        self.entries.retain(|e| e["annotations"][REF_NAME] != json!(tag));
        let mut entry = desc.without_platform().to_json();
        entry["annotations"] = json!({ REF_NAME: tag });
        self.entries.push(entry);
    }

    /// Lists `desc` in `index.json` without a tag, so it is kept but not named.
    pub fn keep(&mut self, desc: &Descriptor) {
        self.entries.push(desc.without_platform().to_json());
    }

    /// Writes `index.json`.
    pub fn save(&self) {
        let index = json!({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": self.entries});
        std::fs::write(self.dir.join("index.json"), serde_json::to_vec_pretty(&index).expect("serialise"))
            .expect("write index.json");
    }
}

/// One repository of a workload shaped like the benchmark's `medium`, small:
/// `tags` tags, every third an index of two platforms, all sharing a base
/// layer; every fourth signed (an artifact with a `subject` and the
/// `sha256-<hex>` fallback tag listing it, as a registry without the
/// referrers API holds them), and every fifth with a cosign-style digest tag
/// `sha256-<hex>.att`. `seed` keeps repositories apart; the base is shared.
pub fn signed_repository(dir: &Path, seed: u64, tags: usize) -> Layout {
    let mut l = Layout::create(dir);
    let base = noise(1, 20_000);
    for i in 0..tags as u64 {
        let top = noise(seed * 1000 + i, 2_000);
        let image = if i % 3 == 0 {
            let amd = l.image(AMD64, &[("base", &base), ("top", &top)]);
            let arm = l.image(ARM64, &[("base", &base), ("top", &top), ("arm", b"arm")]);
            l.index(&[amd, arm], None)
        } else {
            l.image(AMD64, &[("base", &base), ("top", &top)])
        };
        l.tag(&format!("t{i}"), &image);
        if i % 4 == 1 {
            let sig = l.artifact(
                "application/vnd.example.signature",
                Some(&image),
                &[("application/octet-stream", format!("sig {seed} {i}").as_bytes())],
                &[("org.example.signer", "ci")],
            );
            l.referrers_tag(&image, &[sig]);
        }
        if i % 5 == 2 {
            let att = l.artifact(
                "application/vnd.example.attestation",
                None,
                &[("application/json", format!("{{\"att\":\"{seed}-{i}\"}}").as_bytes())],
                &[],
            );
            l.tag(&format!("{}.att", oci::fallback_tag(&image.digest)), &att);
        }
    }
    l.save();
    l
}

/// The example layout shipped in `examples/`: one tag `v1`, a two-platform
/// image with a small text file in each.
pub fn example_layout(dir: &Path) -> Descriptor {
    let mut l = Layout::create(dir);
    let amd = l.image(AMD64, &[("hello.txt", b"hello from linux/amd64\n")]);
    let arm = l.image(ARM64, &[("hello.txt", b"hello from linux/arm64\n")]);
    let index = l.index(&[amd, arm], None);
    l.tag("v1", &index);
    l.save();
    index
}

/// Shapes the sync engine must handle, in one layout:
/// - `single`: a single-platform image;
/// - `multi`: a two-platform index, with an SBOM and a signature referrer
///   (and the `sha256-<hex>` fallback tag listing them);
/// - `sha256-<multi hex>.sig`: a digest tag pointing at the signature;
/// - `loop`: an index that lists `child` and whose subject is `child`, so
///   `child`'s referrer is the index that contains it.
pub struct Shapes {
    /// `single`
    pub single: Descriptor,
    /// `multi`
    pub multi: Descriptor,
    /// The SBOM referrer of `multi`.
    pub sbom: Descriptor,
    /// The signature referrer of `multi`.
    pub signature: Descriptor,
    /// `child`
    pub child: Descriptor,
    /// `loop`
    pub looped: Descriptor,
}

/// Writes [`Shapes`] to `dir`.
pub fn shapes_layout(dir: &Path) -> Shapes {
    let mut l = Layout::create(dir);
    let single = l.image(AMD64, &[("a.txt", b"single")]);
    l.tag("single", &single);
    let amd = l.image(AMD64, &[("m.txt", b"multi amd64")]);
    let arm = l.image(ARMV7, &[("m.txt", b"multi arm/v7")]);
    let multi = l.index(&[amd, arm], None);
    l.tag("multi", &multi);
    let sbom = l.artifact("application/example.sbom", Some(&multi), &[("application/json", b"{\"sbom\":1}")], &[]);
    let signature =
        l.artifact("application/example.signature", Some(&multi), &[("application/octet-stream", b"sig")], &[]);
    l.referrers_tag(&multi, &[sbom.clone(), signature.clone()]);
    l.tag(&format!("{}.sig", oci::fallback_tag(&multi.digest)), &signature);
    let child = l.image(AMD64, &[("c.txt", b"child")]);
    l.tag("child", &child);
    let looped = l.index(std::slice::from_ref(&child), Some(&child));
    l.tag("loop", &looped);
    l.referrers_tag(&child, std::slice::from_ref(&looped));
    l.save();
    Shapes { single, multi, sbom, signature, child, looped }
}

/// The shapes of regclient's `testrepo` layout (FIX-1), generated: tags v1,
/// v2, v3 (indexes), b1–b3 (four-platform bases), a1/a2 (the SBOM and
/// signature referrers of v2), a3 (multi-layer artifact), ai (index of a1 and
/// a2), a-example (artifact with a data field), the digest tag
/// `sha256-<v1>.<v3[..16]>.meta` → v3, child and loop, mirror and its self
/// digest tag, and referrers fallback tags.
pub struct TestRepo {
    /// v1 index.
    pub v1: Descriptor,
    /// v2 index.
    pub v2: Descriptor,
    /// v3 index.
    pub v3: Descriptor,
}

fn four_platform(l: &mut Layout, name: &str) -> Descriptor {
    let children: Vec<Descriptor> = [AMD64, ARM64, ARMV7, ARMV6]
        .iter()
        .map(|p| l.image(*p, &[(name, format!("{name} {}/{}{}", p.os, p.arch, p.variant).as_bytes())]))
        .collect();
    l.index(&children, None)
}

/// Writes the testrepo shapes to `dir`.
pub fn testrepo_layout(dir: &Path) -> TestRepo {
    let mut l = Layout::create(dir);
    // v1: two platforms plus two attestation manifests (unknown/unknown).
    let v1_amd = l.image(AMD64, &[("v1", b"v1 amd64")]);
    let v1_arm = l.image(ARM64, &[("v1", b"v1 arm64")]);
    let mut attestations = Vec::new();
    for (i, child) in [&v1_amd, &v1_arm].into_iter().enumerate() {
        let mut a = l.artifact(
            "application/vnd.in-toto+json",
            None,
            &[("application/vnd.in-toto+json", format!("{{\"attestation\":{i}}}").as_bytes())],
            &[("vnd.docker.reference.type", "attestation-manifest"), ("vnd.docker.reference.digest", &child.digest)],
        );
        a.platform = Some(serde_json::json!({"architecture": "unknown", "os": "unknown"}));
        attestations.push(a);
    }
    let v1 = l.index(&[v1_amd, v1_arm, attestations[0].clone(), attestations[1].clone()], None);
    l.tag("v1", &v1);
    // v2: three platforms, SBOM and signature referrers, per-platform referrers.
    let v2_children: Vec<Descriptor> = [AMD64, ARM64, ARMV7]
        .iter()
        .map(|p| l.image(*p, &[("v2", format!("v2 {}{}", p.arch, p.variant).as_bytes())]))
        .collect();
    let v2 = l.index(&v2_children, None);
    l.tag("v2", &v2);
    let sbom = l.artifact("application/example.sbom", Some(&v2), &[("application/json", b"{\"sbom\":\"v2\"}")], &[]);
    let sig =
        l.artifact("application/example.signature", Some(&v2), &[("application/octet-stream", b"v2 signature")], &[]);
    l.tag("a1", &sbom);
    l.tag("a2", &sig);
    l.referrers_tag(&v2, &[sbom.clone(), sig.clone()]);
    for child in &v2_children {
        let arms = l.artifact(
            "application/example.arms",
            Some(child),
            &[("text/plain", format!("arms {}", child.digest).as_bytes())],
            &[],
        );
        l.referrers_tag(child, &[arms]);
    }
    // v3: four platforms, two SBOMs pushed by digest without a fallback tag.
    let v3 = four_platform(&mut l, "v3");
    l.tag("v3", &v3);
    for n in 0..2 {
        let s = l.artifact(
            "application/example.sbom",
            Some(&v3),
            &[("application/json", format!("{{\"sbom\":{n}}}").as_bytes())],
            &[],
        );
        l.keep(&s);
    }
    for b in ["b1", "b2", "b3"] {
        let d = four_platform(&mut l, b);
        l.tag(b, &d);
    }
    let a3 = l.artifact(
        "application/example.multi",
        None,
        &[("text/plain", b"part one"), ("text/plain", b"part two"), ("text/plain", b"part three")],
        &[],
    );
    l.tag("a3", &a3);
    let ai = l.index(&[sbom.without_platform(), sig.without_platform()], None);
    l.tag("ai", &ai);
    let example = l.artifact("application/example.data", None, &[], &[("org.example.data", "inline")]);
    l.tag("a-example", &example);
    let v3_hex = &v3.digest["sha256:".len()..];
    l.tag(&format!("{}.{}.meta", oci::fallback_tag(&v1.digest), &v3_hex[..16]), &v3);
    let child = l.image(AMD64, &[("child", b"child")]);
    l.tag("child", &child);
    let looped = l.index(std::slice::from_ref(&child), Some(&child));
    l.tag("loop", &looped);
    l.referrers_tag(&child, std::slice::from_ref(&looped));
    let mirror = l.image(AMD64, &[("mirror", b"mirror")]);
    l.tag("mirror", &mirror);
    l.tag(&oci::fallback_tag(&mirror.digest), &mirror);
    l.save();
    TestRepo { v1, v2, v3 }
}

/// regclient's `external` layout (FIX-2): two SBOM referrers of `v2` with
/// `preference` annotations 1 and 2, and their fallback tag.
pub fn external_layout(dir: &Path, v2: &Descriptor) {
    let mut l = Layout::create(dir);
    let a3 = l.artifact(
        "application/example.sbom",
        Some(v2),
        &[("application/json", b"{\"external\":3}")],
        &[("preference", "1")],
    );
    let a4 = l.artifact(
        "application/example.sbom",
        Some(v2),
        &[("application/json", b"{\"external\":4}")],
        &[("preference", "2")],
    );
    l.referrers_tag(v2, &[a3, a4]);
    l.save();
}
