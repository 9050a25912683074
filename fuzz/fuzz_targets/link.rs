//! `Link` headers of paged listings, and the URL their target resolves to.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regsync::client::registry::urls::{join, next_link};

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    if let Some(target) = next_link(header) {
        let _ = join("http://127.0.0.1:5000/v2/app/tags/list?n=100", &target);
    }
});
