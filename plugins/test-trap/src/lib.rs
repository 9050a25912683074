//! Test only: a tag filter that traps, to prove a crash is contained.

use regsync_plugin_sdk::{TagFilter, export_tag_filter};

struct Crash;

impl TagFilter for Crash {
    fn filter_tags(repo: String, _tags: Vec<String>) -> Result<Vec<String>, String> {
        panic!("test-trap always crashes ({repo})")
    }
}

export_tag_filter!(Crash);
