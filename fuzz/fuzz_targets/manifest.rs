//! Manifest, index and config JSON as a registry serves them: whether it is a
//! manifest at all, the fields we read, and what we build from it (the
//! platform-filtered index, fallback referrers indexes).
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use regsync::client::registry::referrers::choose_fallback;
use regsync::client::{Descriptor, MT_OCI_MANIFEST, Manifest, fallback_index_with, manifest_media_type};
use regsync::pipeline::context::filter_index;
use regsync::platform::Platform;

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (std::str::from_utf8(&data[..i]).ok(), &data[i + 1..]),
        None => (None, data),
    };
    let Ok(media_type) = manifest_media_type(content_type, body) else { return };
    let m = Manifest::new(&media_type, Bytes::copy_from_slice(body));
    let doc = m.doc().expect("accepted as a manifest, so its fields parse");
    let _ = doc.subject.as_ref().map(|s| s.digest.len());
    let platforms = [None, Platform::parse("linux/amd64").ok()];
    let _ = filter_index(&m, &platforms);
    let referrer = Descriptor::new(MT_OCI_MANIFEST, &m.digest, body.len() as u64);
    let _ = fallback_index_with(Some(&m), std::slice::from_ref(&referrer));
    let _ = choose_fallback(Some(&m), std::slice::from_ref(&referrer), Some(&m));
});
