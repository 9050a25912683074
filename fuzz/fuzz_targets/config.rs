//! The YAML config: decoded and compiled (templates expanded, everything
//! validated); what `regsync config` prints for it must load again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regsync::config;
use regsync::template::Templates;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let templates = Templates::default();
    if let Ok(loaded) = config::load_str(text, "fuzz.yml", &templates) {
        let printed = config::to_yaml(&loaded.config);
        if let Err(e) = config::load_str(&printed, "printed.yml", &templates) {
            panic!("printed config does not load again: {e}\n--- printed:\n{printed}");
        }
    }
});
