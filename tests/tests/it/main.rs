//! Integration tests, one binary with a module per area (ripgrep's layout).

mod behaviour_ids;
mod behaviours;
mod cli;
mod client;
mod client_auth;
mod client_faults;
mod compat;
mod config_golden;
mod engine_process;
mod engine_referrers;
mod engine_stress;
mod engine_work;
mod fixtures;
mod harness;
mod image;
mod interrupt;
mod kubernetes;
mod module_graph;
mod nothing_blocks;
mod plugin_harness;
mod plugin_oci;
mod plugins;
mod progress;
mod server;
mod sync_cli;
mod wit_freeze;
