//! A page of `tags/list` or `_catalog`: never more names than the room left.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regsync::client::registry::listing::parse_page;

fuzz_target!(|data: &[u8]| {
    let Some((&room, body)) = data.split_first() else { return };
    let mut out = Vec::new();
    if parse_page(body, "tags", room as usize, &mut out).is_ok() {
        assert!(out.len() <= room as usize);
    }
    assert!(out.len() <= room as usize + 1);
});
