//! Host bindings, one module per released `regsync:plugin` WIT version,
//! each generated from its frozen copy under `wit/released/<version>/` (as
//! Spin and Zed's extension host keep one bindings module per version). A new
//! version is one more module beside `v0_1_0` and one more entry in
//! [`SUPPORTED_WIT`]; the kinds table (`super::kinds`) names the exports.

pub mod v0_1_0;

pub use v0_1_0::{host, notifier, tag_filter, template};

/// The `regsync:plugin` versions this host loads components of.
pub const SUPPORTED_WIT: &[&str] = &[v0_1_0::VERSION];
