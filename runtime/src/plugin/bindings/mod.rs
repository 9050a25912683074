//! Host bindings, one module per released `regsync:plugin` WIT version,
//! each generated from its frozen copy under `wit/released/<version>/` (as
//! Spin and Zed's extension host keep one bindings module per version). A new
//! version is one more module and one more entry in [`SUPPORTED_WIT`]; the
//! kinds table (`super::kinds`) says from which version each kind exists.

pub mod v0_1_0;
pub mod v0_2_0;

/// The `regsync:plugin` versions this host loads components of, oldest first.
pub const SUPPORTED_WIT: &[&str] = &[v0_1_0::VERSION, v0_2_0::VERSION];

/// A component's handle for one world, in the WIT version it was built for.
pub enum Versioned<A, B> {
    /// Built against 0.1.0.
    V0_1(A),
    /// Built against 0.2.0.
    V0_2(B),
}
