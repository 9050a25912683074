//! Golden files: compare output with a checked-in file; `REGSYNC_BLESS=1`
//! rewrites the file instead.

use std::path::Path;

/// Asserts `actual` equals the file at `path`, or writes it when blessing.
pub fn check(path: &Path, actual: &str) {
    if std::env::var_os("REGSYNC_BLESS").is_some() {
        std::fs::write(path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|_| panic!("{} is missing; run with REGSYNC_BLESS=1 to create it", path.display()));
    assert!(
        expected == actual,
        "{} differs (REGSYNC_BLESS=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}
