//! Go durations: what parses prints back to the same duration.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regsync::duration::GoDuration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(d) = GoDuration::parse(text) {
        let printed = d.to_string();
        assert_eq!(GoDuration::parse(&printed), Ok(d), "{text:?} printed as {printed:?}");
    }
});
