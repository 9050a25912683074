//! Test only: a tag filter that allocates without bound, to prove the memory limit.

use regsync_plugin_sdk::{TagFilter, export_tag_filter};

struct Hoard;

impl TagFilter for Hoard {
    fn filter_tags(_repo: String, tags: Vec<String>) -> Result<Vec<String>, String> {
        let mut held: Vec<Vec<u8>> = Vec::new();
        loop {
            held.push(vec![1u8; 1 << 20]);
            if std::hint::black_box(held.len()) == usize::MAX {
                return Ok(tags);
            }
        }
    }
}

export_tag_filter!(Hoard);
