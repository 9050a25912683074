//! `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers, one per line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regsync::client::RateLimitInfo;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.splitn(3, '\n');
    let (limit, remaining, reset) = (lines.next(), lines.next(), lines.next());
    let _ = RateLimitInfo::parse(limit, remaining, reset);
});
