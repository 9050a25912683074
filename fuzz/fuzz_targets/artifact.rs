//! The manifest of a plugin artifact (`ref:` in `plugins:`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use regsync::artifact::component_layer;

fuzz_target!(|data: &[u8]| {
    let _ = component_layer(data, "application/vnd.oci.image.manifest.v1+json");
});
