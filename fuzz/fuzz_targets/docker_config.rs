//! Docker `config.json`: `auths` (base64 `user:pass`), `credHelpers`, `credsStore`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regsync::client::registry::hosts::docker_config_hosts;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = docker_config_hosts(text);
    }
});
