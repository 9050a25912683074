//! Token responses of a bearer realm.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regsync::client::registry::auth::parse_token_body;

fuzz_target!(|data: &[u8]| {
    if let Ok(answer) = parse_token_body(data) {
        assert!(!answer.token.is_empty());
    }
});
