//! regclient's `TestProcess` (TEST-A, 31 cases, state carried from case to
//! case) and `TestProcessRef` (TEST-B), ported against real `docker-registry`
//! processes and OCI layouts, on our generated fixtures and, when present,
//! on regclient's own layouts from `../shared/fixtures/regclient/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regsync::client::Client;
use regsync::config::{self, Loaded};
use regsync::pipeline::{Mode, Outcome, Pipeline, PipelineOptions, StepReport};
use regsync::reference::Reference;
use regsync::template::Templates;
use regsync_tests::fixtures;
use regsync_tests::oci::{LayoutReader, fallback_tag};
use regsync_tests::registry::{Registry, RegistryOptions};

use crate::client::rt;

/// The digests the cases assert, read from whichever testrepo is in use.
struct Digests {
    tags: BTreeMap<String, String>,
    v1_children: Vec<String>,
    v2_amd64: String,
    external: Vec<String>,
}

impl Digests {
    fn of(testrepo: &Path, external: &Path) -> Self {
        let layout = LayoutReader::open(testrepo);
        let tags: BTreeMap<String, String> = layout.tags().into_iter().map(|(t, d)| (t, d.digest)).collect();
        let index = |d: &str| -> serde_json::Value { serde_json::from_slice(&layout.blob(d).unwrap()).unwrap() };
        let platform_children = |d: &str| -> Vec<(String, String)> {
            index(d)["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    let p = &m["platform"];
                    (
                        format!("{}/{}", p["os"].as_str().unwrap_or(""), p["architecture"].as_str().unwrap_or("")),
                        m["digest"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        };
        let v1_children = platform_children(&tags["v1"])
            .into_iter()
            .filter(|(p, _)| p == "linux/amd64" || p == "linux/arm64")
            .map(|(_, d)| d)
            .collect();
        let v2_amd64 = platform_children(&tags["v2"]).into_iter().find(|(p, _)| p == "linux/amd64").unwrap().1;
        let ext = LayoutReader::open(external);
        let fallback = &ext.tags()[&fallback_tag(&tags["v2"])];
        let external =
            serde_json::from_slice::<serde_json::Value>(&ext.blob(&fallback.digest).unwrap()).unwrap()["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["digest"].as_str().unwrap().to_string())
                .collect();
        Digests { tags, v1_children, v2_amd64, external }
    }

    fn t(&self, tag: &str) -> String {
        self.tags[tag].clone()
    }
}

struct Env {
    reg: Registry,
    ro: Registry,
    testrepo: PathBuf,
    _work: tempfile::TempDir,
    d: Digests,
}

/// Seeds a registry with every tag (and kept untagged manifest) of a layout.
fn seed(reg: &Registry, layout_dir: &Path, repo: &str) {
    let layout = LayoutReader::open(layout_dir);
    for entry in layout.index()["manifests"].as_array().unwrap() {
        let desc = regsync_tests::oci::Descriptor::from_json(entry);
        let tag = entry["annotations"][fixtures::REF_NAME].as_str();
        reg.api().push_from_layout(&layout, repo, &desc, tag).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("blobs/sha256")).unwrap();
    for name in ["oci-layout", "index.json"] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
    for entry in std::fs::read_dir(from.join("blobs/sha256")).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join("blobs/sha256").join(entry.file_name())).unwrap();
    }
}

impl Env {
    fn new(testrepo: &Path, external: &Path) -> Env {
        regsync_tests::init_logging();
        let reg = Registry::start();
        let ro = Registry::start_with(RegistryOptions { read_only: true, ..RegistryOptions::default() });
        seed(&reg, testrepo, "testrepo");
        seed(&reg, external, "external");
        let work = tempfile::tempdir().unwrap();
        let local = work.path().join("testrepo");
        copy_dir(testrepo, &local);
        Env { d: Digests::of(testrepo, external), reg, ro, testrepo: local, _work: work }
    }

    fn load(&self, step: &str, defaults: &str) -> Result<Loaded, config::ConfigError> {
        let yaml = format!(
            "creds:\n  - registry: {reg}\n    tls: disabled\n  - registry: {ro}\n    tls: disabled\ndefaults:\n  parallel: 1\n  skipDockerConfig: true\n{defaults}sync:\n{step}",
            reg = self.reg.host,
            ro = self.ro.host,
        );
        config::load_str(&yaml, "case.yml", &Templates::default())
    }

    fn run(&self, step: &str, action: Mode, abort: bool) -> StepReport {
        let loaded = self.load(step, "").unwrap_or_else(|e| panic!("{e}"));
        rt().block_on(async {
            let client = Client::from_config(&loaded.config, "regsync-test".into()).await;
            let engine = Pipeline::new(
                &loaded.config,
                client,
                PipelineOptions { abort_on_error: abort, ..PipelineOptions::default() },
            );
            engine.run_step(&loaded.config.sync[0], action).await
        })
    }

    fn ok(&self, step: &str, action: Mode) -> StepReport {
        let r = self.run(step, action, false);
        assert!(r.ok(), "{step}\n{:?}", r.errors);
        r
    }

    fn tag(&self, repo: &str, tag: &str) -> Option<String> {
        self.reg.api().digest_of(repo, tag)
    }

    fn has(&self, repo: &str, digest: &str) -> bool {
        self.reg.api().manifest(repo, digest).is_some()
    }
}

fn image(src: &str, tgt: &str, extra: &str) -> String {
    format!("  - source: {src}\n    target: {tgt}\n    type: image\n{extra}")
}

fn repository(src: &str, tgt: &str, extra: &str) -> String {
    format!("  - source: {src}\n    target: {tgt}\n    type: repository\n{extra}")
}

/// TEST-A, in order; each case sees what the earlier ones left.
fn test_process(env: &Env) {
    let (h, d) = (&env.reg.host, &env.d);
    let tr = format!("{h}/testrepo");
    // 1 Mode Missing
    env.ok(&image(&format!("{tr}:v1"), &format!("{h}/test1:latest"), ""), Mode::Missing);
    assert_eq!(env.tag("test1", "latest"), Some(d.t("v1")));
    for child in &d.v1_children {
        assert!(env.has("test1", child), "v1 child {child}");
    }
    assert!(!env.has("test1", &d.t("v2")) && !env.has("test1", &d.t("a1")) && !env.has("test1", &d.t("a2")));
    // 2 RepoCopy
    env.ok(&repository(&tr, &format!("{h}/test2"), ""), Mode::Copy);
    for t in ["v1", "v2", "v3"] {
        assert_eq!(env.tag("test2", t), Some(d.t(t)), "test2:{t}");
    }
    // 3 ReadOnly Error Abort
    let r = env.run(&repository(&tr, &format!("{}/testro", env.ro.host), ""), Mode::Copy, true);
    assert!(!r.ok(), "writes to a read-only registry fail");
    assert!(
        r.errors[0].to_string().contains("unsupported") || r.errors[0].to_string().contains("http"),
        "{:?}",
        r.errors
    );
    assert!(r.images.len() < env.d.tags.len(), "abort stops early: {} images", r.images.len());
    // 4 Overwrite
    env.ok(&image(&format!("{tr}:v2"), &format!("{h}/test1:latest"), ""), Mode::Copy);
    assert_eq!(env.tag("test1", "latest"), Some(d.t("v2")));
    assert!(!env.has("test1", &d.t("a1")) && !env.has("test1", &d.t("a2")), "referrers off");
    // 5 Fast Check
    let flags = "    fastCheck: true\n    referrers: true\n    digestTags: true\n";
    let r = env.ok(&image(&format!("{tr}:v2"), &format!("{h}/test1:latest"), flags), Mode::Copy);
    assert_eq!(r.images[0].outcome, Outcome::UpToDate);
    assert!(!env.has("test1", &d.t("a1")) && !env.has("test1", &d.t("a2")), "fast path skips referrers");
    // 6 Mode Check
    let flags = "    referrers: true\n    digestTags: true\n";
    let r = env.ok(&image(&format!("{tr}:v1"), &format!("{h}/test1:latest"), flags), Mode::Check);
    assert_eq!(r.images[0].outcome, Outcome::Stale);
    assert_eq!(env.tag("test1", "latest"), Some(d.t("v2")));
    // 7 Mode Missing Exists
    env.ok(&image(&format!("{tr}:v1"), &format!("{h}/test1:latest"), "    referrers: true\n"), Mode::Missing);
    assert_eq!(env.tag("test1", "latest"), Some(d.t("v2")));
    assert!(!env.has("test1", &d.t("a1")));
    // 8 RepoTagFilterAllow
    env.ok(&repository(&tr, &format!("{h}/test3"), "    tags:\n      allow: [v1, v3, latest]\n"), Mode::Copy);
    assert_eq!((env.tag("test3", "v1"), env.tag("test3", "v3")), (Some(d.t("v1")), Some(d.t("v3"))));
    assert!(env.tag("test3", "v2").is_none() && !env.has("test3", &d.t("v2")));
    // 9 RepoTagFilterDeny
    env.ok(&repository(&tr, &format!("{h}/test4"), "    tags:\n      deny: [v2, old]\n"), Mode::Copy);
    assert_eq!((env.tag("test4", "v1"), env.tag("test4", "v3")), (Some(d.t("v1")), Some(d.t("v3"))));
    assert!(env.tag("test4", "v2").is_none() && !env.has("test4", &d.t("v2")));
    // 10 RepoSemver
    env.ok(&repository(&tr, &format!("{h}/testsemver"), "    tags:\n      semverRange: [\">=v2\"]\n"), Mode::Copy);
    assert_eq!((env.tag("testsemver", "v2"), env.tag("testsemver", "v3")), (Some(d.t("v2")), Some(d.t("v3"))));
    for t in ["v1", "a1", "a2", "a3", "b1", "b2", "b3", "loop"] {
        assert!(env.tag("testsemver", t).is_none(), "testsemver:{t}");
    }
    // 11 RepoTagSet
    env.ok(&repository(&tr, &format!("{h}/testset"), "    tagSets:\n      - allow: [\"a.*\", loop]\n"), Mode::Copy);
    for t in ["a1", "a2", "a3", "loop"] {
        assert_eq!(env.tag("testset", t), Some(d.t(t)), "testset:{t}");
    }
    for t in ["v1", "b1", "b2", "b3"] {
        assert!(env.tag("testset", t).is_none(), "testset:{t}");
    }
    // 12–14 Missing setup
    env.ok(&image(&format!("{tr}:v2"), &format!("{h}/test-missing:v1"), ""), Mode::Copy);
    env.ok(&image(&format!("{tr}:v2"), &format!("{h}/test-missing:v1.1"), ""), Mode::Copy);
    env.ok(&image(&format!("{tr}:v3"), &format!("{h}/test-missing:v3"), ""), Mode::Copy);
    assert_eq!(env.tag("test-missing", "v1"), Some(d.t("v2")));
    assert!(!env.has("test-missing", &d.t("v1")));
    // 15 Missing
    env.ok(
        &repository(&tr, &format!("{h}/test-missing"), "    tags:\n      allow: [v1, v2, v3, latest]\n"),
        Mode::Missing,
    );
    assert_eq!(env.tag("test-missing", "v1"), Some(d.t("v2")), "missing mode does not overwrite");
    assert_eq!(env.tag("test-missing", "v2"), Some(d.t("v2")));
    assert_eq!(env.tag("test-missing", "v3"), Some(d.t("v3")));
    assert!(!env.has("test-missing", &d.t("v1")));
    // 16 ImageDigestTags (ocidir → ocidir)
    let local = env.testrepo.display().to_string();
    let out = env._work.path().join("test5").display().to_string();
    env.ok(
        &image(&format!("ocidir://{local}:v1"), &format!("ocidir://{out}:v1"), "    digestTags: true\n"),
        Mode::Copy,
    );
    let test5 = LayoutReader::open(&out).tags();
    assert_eq!(test5["v1"].digest, d.t("v1"));
    let meta = format!("{}.{}.meta", fallback_tag(&d.t("v1")), &d.t("v3")["sha256:".len().."sha256:".len() + 16]);
    assert_eq!(test5[&meta].digest, d.t("v3"), "digest tag {meta}");
    // 17 ImageReferrers Fast
    let flags = "    fastCheck: true\n    referrers: true\n    referrerFilters: []\n";
    env.ok(&image(&format!("{tr}:v2"), &format!("{h}/test-referrer:v2"), flags), Mode::Copy);
    for (what, digest) in
        [("v2", d.t("v2")), ("v2 amd64", d.v2_amd64.clone()), ("SBOM", d.t("a1")), ("signature", d.t("a2"))]
    {
        assert!(env.has("test-referrer", &digest), "{what}");
    }
    assert!(!env.has("test-referrer", &d.t("v1")) && !env.has("test-referrer", &d.t("v3")));
    // 18 ImageReferrers with a filter
    let flags = "    referrers: true\n    referrerFilters:\n      - artifactType: application/example.sbom\n";
    env.ok(&image(&format!("{tr}:v2"), &format!("{h}/test-referrer2:v2"), flags), Mode::Copy);
    assert!(env.has("test-referrer2", &d.t("a1")) && !env.has("test-referrer2", &d.t("a2")));
    // 19 ImageReferrersExtSrc
    let flags = format!("    referrers: true\n    referrerSource: {h}/external\n");
    env.ok(&image(&format!("{tr}:v2"), &format!("{h}/test-referrer3:v2"), &flags), Mode::Copy);
    for ext in &d.external {
        assert!(env.has("test-referrer3", ext), "external SBOM {ext}");
    }
    assert!(!env.has("test-referrer3", &d.t("a1")) && !env.has("test-referrer3", &d.t("a2")));
    // 20 ImageReferrersExtBoth
    let flags =
        format!("    referrers: true\n    referrerSource: {h}/external\n    referrerTarget: {h}/test-referrer4-tgt\n");
    env.ok(&image(&format!("{tr}:v2"), &format!("{h}/test-referrer4:v2"), &flags), Mode::Copy);
    for ext in &d.external {
        assert!(env.has("test-referrer4-tgt", ext) && !env.has("test-referrer4", ext), "external SBOM {ext}");
    }
    // 21 Backup
    env.ok(&image(&format!("{tr}:v3"), &format!("{h}/test1:latest"), "    backup: old\n"), Mode::Copy);
    assert_eq!((env.tag("test1", "latest"), env.tag("test1", "old")), (Some(d.t("v3")), Some(d.t("v2"))));
    // 22 BackupFormat
    let flags = format!("    backup: \"{h}/backups:{{{{.Ref.Tag}}}}\"\n");
    env.ok(&image(&format!("{tr}:v1"), &format!("{h}/test1:latest"), &flags), Mode::Copy);
    assert_eq!(env.tag("test1", "latest"), Some(d.t("v1")));
    assert_eq!(env.tag("backups", "latest"), Some(d.t("v3")));
    // 23 Image Self Digest Tag
    let mirror_tag = fallback_tag(&d.t("mirror"));
    env.ok(
        &image(&format!("ocidir://{local}:mirror"), &format!("{h}/test-mirror:mirror"), "    digestTags: true\n"),
        Mode::Copy,
    );
    assert_eq!(env.tag("test-mirror", "mirror"), Some(d.t("mirror")));
    assert_eq!(env.tag("test-mirror", &mirror_tag), Some(d.t("mirror")), "self-referencing digest tag");
    // 24 Image Loop
    env.ok(&image(&format!("{tr}:loop"), &format!("{h}/test-loop:loop"), "    referrers: true\n"), Mode::Copy);
    assert_eq!(env.tag("test-loop", "loop"), Some(d.t("loop")));
    assert!(env.has("test-loop", &d.t("child")));
    // 25 MissingImage
    let r = env.run(&image(&format!("{h}/testmissing:v1"), &format!("{h}/test-x:v1"), ""), Mode::Copy, false);
    assert!(r.errors[0].to_string().contains("not found"), "{:?}", r.errors);
    // 26 MissingRepository
    let r = env.run(
        &repository(&format!("ocidir://{}/testmissing", env._work.path().display()), &format!("{h}/test-x"), ""),
        Mode::Copy,
        false,
    );
    assert!(r.errors[0].to_string().contains("No such file or directory"), "{:?}", r.errors);
    // 27–30 invalid references and 31 an invalid type: rejected when the config loads.
    for step in [
        image("InvalidTestmissing:v1:garbage", &format!("{h}/test-x:v1"), ""),
        image(&format!("{h}/testrepo:v1"), "InvalidTestmissing:v1:garbage", ""),
        repository("InvalidTestmissing:garbage", &format!("{h}/test-x"), ""),
        repository(&tr, "InvalidTestmissing:garbage", ""),
    ] {
        let err = env.load(&step, "").unwrap_err().to_string();
        assert!(err.contains("invalid reference") || err.contains("must not include a tag"), "{err}");
    }
    let err =
        env.load(&format!("  - source: {tr}\n    target: {h}/x\n    type: invalid\n"), "").unwrap_err().to_string();
    assert!(err.contains("unknown type \"invalid\""), "{err}");
}

/// TEST-B: processRef on OCI layouts.
fn test_process_ref(env: &Env) {
    let local = env.testrepo.display().to_string();
    let dest = env._work.path().join("testdest").display().to_string();
    let loaded = env.load(&repository(&format!("ocidir://{local}"), &format!("ocidir://{dest}"), ""), "").unwrap();
    let step = &loaded.config.sync[0];
    let client = rt().block_on(Client::from_config(&loaded.config, "t".into()));
    let engine = Pipeline::new(&loaded.config, client, PipelineOptions::default());
    let r = |s: &str| Reference::parse(s).unwrap();
    rt().block_on(async {
        let empty = engine
            .process_image(step, r(&format!("ocidir://{local}")), r(&format!("ocidir://{dest}")), Mode::Copy)
            .await;
        assert!(empty.error.as_deref().unwrap_or("").contains("not found"), "no latest: {:?}", empty.error);
        let check = engine
            .process_image(step, r(&format!("ocidir://{local}:v1")), r(&format!("ocidir://{dest}:tgt")), Mode::Check)
            .await;
        assert_eq!(check.outcome, Outcome::Stale);
        assert!(!Path::new(&dest).join("index.json").exists() || !LayoutReader::open(&dest).tags().contains_key("tgt"));
        let copy = engine
            .process_image(step, r(&format!("ocidir://{local}:v1")), r(&format!("ocidir://{dest}:tgt")), Mode::Copy)
            .await;
        assert_eq!(copy.outcome, Outcome::Copied, "{:?}", copy.error);
        let missing = engine
            .process_image(step, r(&format!("ocidir://{local}:v2")), r(&format!("ocidir://{dest}:tgt")), Mode::Missing)
            .await;
        assert_eq!(missing.outcome, Outcome::SkippedExists);
    });
    assert_eq!(LayoutReader::open(&dest).tags()["tgt"].digest, env.d.t("v1"));
    assert_eq!(LayoutReader::open(&dest).verify(), Vec::<String>::new());
}

#[test]
fn test_a_and_b_on_generated_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    let repo = fixtures::testrepo_layout(&dir.path().join("testrepo"));
    fixtures::external_layout(&dir.path().join("external"), &repo.v2);
    let env = Env::new(&dir.path().join("testrepo"), &dir.path().join("external"));
    test_process(&env);
    test_process_ref(&env);
}

#[test]
fn test_a_and_b_on_regclient_layouts() {
    let (Some(testrepo), Some(external)) =
        (regsync_tests::shared::regclient_layout("testrepo"), regsync_tests::shared::regclient_layout("external"))
    else {
        return;
    };
    let env = Env::new(&testrepo, &external);
    test_process(&env);
    test_process_ref(&env);
}
