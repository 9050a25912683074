//! Compiled components on disk, keyed by the component's sha256 and the
//! engine's compatibility hash, so large (JavaScript, Python) plugins compile
//! once and then start in milliseconds.

use std::hash::{Hash, Hasher};
use std::path::Path;

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::client::hex;

fn engine_key(engine: &Engine) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The sha256 of a component's bytes.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The component for `bytes` (whose sha256 is `digest`): from the cache when
/// present, else compiled (and stored).
pub fn component(
    engine: &Engine,
    dir: Option<&Path>,
    bytes: &[u8],
    digest: &[u8; 32],
) -> Result<(Component, bool), String> {
    let Some(dir) = dir else {
        return Component::from_binary(engine, bytes).map(|c| (c, false)).map_err(|e| format!("{e:#}"));
    };
    let file = dir.join(format!("{}-{}.cwasm", hex(digest), engine_key(engine)));
    if file.is_file() {
        // SAFETY: the file was written by `precompile_component` of an engine with
        // the same compatibility hash (part of its name), in a directory we own.
        match unsafe { Component::deserialize_file(engine, &file) } {
            Ok(c) => return Ok((c, true)),
            Err(e) => tracing::debug!(file = %file.display(), error = %e, "Ignoring unusable cached plugin"),
        }
    }
    let compiled = engine.precompile_component(bytes).map_err(|e| format!("{e:#}"))?;
    if std::fs::create_dir_all(dir).is_ok() {
        let temp = file.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&temp, &compiled).is_ok() {
            let _ = std::fs::rename(&temp, &file);
        }
    }
    // SAFETY: `compiled` was produced just now by this engine.
    let component = unsafe { Component::deserialize(engine, &compiled) }.map_err(|e| format!("{e:#}"))?;
    Ok((component, false))
}
