//! Behaviour IDs (IMG-6, DEF-4 …) resolve inside the repository: every ID
//! cited in code, tests or docs has a line in `docs/behaviour.md`, and every
//! test that file names exists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;
use regsync_tests::repo_root;

/// The areas of the behaviour checklist the IDs come from.
const PREFIXES: &[&str] = &[
    "BAK", "CFG", "CLI", "CLIENT", "COPY", "DEF", "DOC", "FILT", "FIX", "HOST", "HTTP", "IMG", "ISS", "LOG", "MODE",
    "PAR", "PROV", "REF", "REG", "REPO", "RL", "SEMVER", "SIG", "SRV", "TPL", "TYPE", "YAML",
];

const SCANNED: &[&str] =
    &["runtime/src", "tests/src", "tests/tests", "plugin-sdk", "plugins", "examples", "bench", "wit", "scripts"];
const SCANNED_FILES: &[&str] = &["ARCHITECTURE.md", "README.md"];
const EXTENSIONS: &[&str] = &["rs", "md", "yml", "yaml", "toml", "wit", "py", "sh"];

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') && name != "node_modules" {
                files_under(&path, out);
            }
        } else if path.extension().is_some_and(|e| EXTENSIONS.contains(&e.to_string_lossy().as_ref())) {
            out.push(path);
        }
    }
}

/// Every ID cited, with one place that cites it. Test function names cite
/// IDs in snake case (`…_cli_11`).
fn cited_ids(root: &Path) -> BTreeMap<String, String> {
    let alternatives = PREFIXES.join("|");
    let upper = Regex::new(&format!(r"\b({alternatives})-(\d+)\b")).unwrap();
    let lower = Regex::new(&format!(r"_({})_(\d+)\b", alternatives.to_lowercase())).unwrap();
    let in_fn_name = Regex::new(&format!(r"\bfn\s+\w*?((?:_(?:{})_\d+)+)\b", alternatives.to_lowercase())).unwrap();
    let mut files = Vec::new();
    for dir in SCANNED {
        files_under(&root.join(dir), &mut files);
    }
    files.extend(SCANNED_FILES.iter().map(|f| root.join(f)));
    let mut cited = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let shown = file.strip_prefix(root).unwrap_or(&file).display().to_string();
        for (n, line) in text.lines().enumerate() {
            let place = format!("{shown}:{}", n + 1);
            for c in upper.captures_iter(line) {
                cited.entry(format!("{}-{}", &c[1], &c[2])).or_insert_with(|| place.clone());
            }
            for name in in_fn_name.captures_iter(line) {
                for c in lower.captures_iter(&name[1]) {
                    cited.entry(format!("{}-{}", c[1].to_uppercase(), &c[2])).or_insert_with(|| place.clone());
                }
            }
        }
    }
    cited
}

fn behaviour_doc(root: &Path) -> String {
    std::fs::read_to_string(root.join("docs/behaviour.md")).expect("docs/behaviour.md")
}

#[test]
fn every_cited_behaviour_id_has_a_line_in_docs_behaviour_md() {
    let root = repo_root();
    let doc = behaviour_doc(&root);
    let row = Regex::new(r"(?m)^\| ([A-Z]+-\d+) \|").unwrap();
    let documented: Vec<String> = row.captures_iter(&doc).map(|c| c[1].to_string()).collect();
    let cited = cited_ids(&root);
    assert!(cited.len() > 50, "the scan found the IDs: {cited:?}");
    let missing: Vec<String> = cited
        .iter()
        .filter(|(id, _)| !documented.contains(id))
        .map(|(id, place)| format!("{id} (cited at {place})"))
        .collect();
    assert_eq!(missing, Vec::<String>::new(), "IDs without a line in docs/behaviour.md");
    let mut seen = std::collections::BTreeSet::new();
    let twice: Vec<&String> = documented.iter().filter(|id| !seen.insert(*id)).collect();
    assert_eq!(twice, Vec::<&String>::new(), "IDs with two lines");
}

#[test]
fn every_test_docs_behaviour_md_names_exists() {
    let root = repo_root();
    let doc = behaviour_doc(&root);
    // In a row's last cell, `module::function` is an integration test; a bare
    // `function` is a unit test in the `runtime/src/….rs` file named before it.
    let token = Regex::new(r"(runtime/src/[a-z0-9_/]+\.rs)|`([a-z_]+)::([a-z0-9_]+)`|`([a-z0-9_]+)`").unwrap();
    let has_fn =
        |file: &Path, name: &str| std::fs::read_to_string(file).is_ok_and(|text| text.contains(&format!("fn {name}(")));
    let (mut named, mut missing) = (0, Vec::new());
    for row in doc.lines().filter(|l| l.starts_with("| ") && l.contains('-')) {
        let shown_by = row.trim_end_matches('|').rsplit('|').next().unwrap_or_default();
        let mut file: Option<String> = None;
        for c in token.captures_iter(shown_by) {
            if let Some(path) = c.get(1) {
                file = Some(path.as_str().to_string());
            } else if let (Some(module), Some(function)) = (c.get(2), c.get(3)) {
                named += 1;
                if !has_fn(&root.join(format!("tests/tests/it/{}.rs", module.as_str())), function.as_str()) {
                    missing.push(format!("{}::{}", module.as_str(), function.as_str()));
                }
            } else if let Some(function) = c.get(4) {
                named += 1;
                match &file {
                    Some(f) if has_fn(&root.join(f), function.as_str()) => {}
                    _ => missing.push(format!("{} {}", file.as_deref().unwrap_or("(no file)"), function.as_str())),
                }
            }
        }
    }
    assert!(named > 100, "the doc names tests ({named})");
    assert_eq!(missing, Vec::<String>::new(), "tests named in docs/behaviour.md that do not exist");
}
