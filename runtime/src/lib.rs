//! regsync: mirror container images between registries and OCI layouts,
//! reading regsync's YAML config unchanged.
//!
//! The library holds everything the `regsync` binary runs; see
//! `ARCHITECTURE.md` at the repository root for the map.

pub mod cli;
pub mod client;
pub mod config;
pub mod duration;
pub mod logging;
pub mod matching;
pub mod metrics;
pub mod pipeline;
pub mod platform;
pub mod plugin;
pub mod progress;
pub mod reference;
pub mod schedule;
pub mod server;
pub mod setup;
pub mod shard;
pub mod template;
pub mod version;
