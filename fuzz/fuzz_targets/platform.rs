//! Platform strings (`platform:`, `platforms:`), and matching them against each other.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regsync::platform::Platform;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (a, b) = text.split_once('\n').unwrap_or((text, "linux/amd64"));
    if let (Ok(a), Ok(b)) = (Platform::parse(a), Platform::parse(b)) {
        let _ = a.matches(&b);
    }
});
