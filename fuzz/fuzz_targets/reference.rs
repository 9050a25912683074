//! Image references: what parses prints back to a reference that parses to the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regsync::reference::Reference;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(r) = Reference::parse(text) {
        let name = r.common_name();
        let again = Reference::parse(&name).unwrap_or_else(|e| panic!("{text:?} -> {name:?} does not parse: {e}"));
        assert_eq!(again.common_name(), name, "{text:?}");
    }
});
