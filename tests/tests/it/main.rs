//! Integration tests, one binary with a module per area (ripgrep's layout).

mod cli;
mod compat;
mod config_golden;
mod fixtures;
mod harness;
