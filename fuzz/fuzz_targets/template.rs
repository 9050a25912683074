//! Go templates: parsed and run against the data a sync step gets; output
//! is bounded (`template::OUTPUT_LIMIT`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use regsync::template::{MapBuilder, OUTPUT_LIMIT, Templates};

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else { return };
    let sync = MapBuilder::default()
        .str("Source", "registry.example/library/alpine")
        .str("Target", "mirror.example:5000/alpine")
        .str("Type", "repository")
        .strs("Tags", &["3.19".into(), "latest".into()])
        .build();
    let data = MapBuilder::default().value("Sync", sync).build();
    if let Ok(out) = Templates::default().render("fuzz", source, &data) {
        assert!(out.len() <= OUTPUT_LIMIT.max(source.len()), "output of {} bytes", out.len());
    }
});
