//! Semver ranges (`semverRange`) and the tags they are matched against:
//! first line the range, the rest tags.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regsync::matching::semver::{Constraint, Version};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.lines();
    let Some(range) = lines.next() else { return };
    let constraint = Constraint::parse(range);
    for tag in lines {
        if let (Ok(c), Ok(v)) = (&constraint, Version::parse(tag)) {
            let _ = c.matches(&v);
        }
    }
});
