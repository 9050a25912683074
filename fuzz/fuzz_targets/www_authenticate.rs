//! `WWW-Authenticate` challenges.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regsync::client::registry::auth::parse_challenge;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = std::str::from_utf8(data) {
        let _ = parse_challenge(header);
    }
});
