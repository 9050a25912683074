//! regsync: mirror container images between registries and OCI layouts,
//! reading regsync's YAML config unchanged.
//!
//! The library holds everything the `regsync` binary runs; see
//! `ARCHITECTURE.md` at the repository root for the map. Without the
//! default `wasm` feature it builds without the plugin host (wasmtime): the
//! parsers and the sync engine alone, which is what the fuzz targets use.

pub mod artifact;
pub mod cli;
pub mod client;
pub mod config;
pub mod duration;
pub mod logging;
pub mod matching;
pub mod metrics;
pub mod pipeline;
pub mod platform;
#[cfg(feature = "wasm")]
pub mod plugin;
pub mod progress;
pub mod reference;
pub mod schedule;
#[cfg(feature = "wasm")]
pub mod server;
#[cfg(feature = "wasm")]
pub mod setup;
pub mod shard;
pub mod template;
pub mod verify;
pub mod version;
