//! Test only: a tag filter that never returns, to prove the deadline.

use regsync_plugin_sdk::{TagFilter, export_tag_filter};

struct Spin;

impl TagFilter for Spin {
    fn filter_tags(_repo: String, tags: Vec<String>) -> Result<Vec<String>, String> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
            if n == u64::MAX {
                return Ok(tags);
            }
        }
    }
}

export_tag_filter!(Spin);
