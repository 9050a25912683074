//! Helpers for writing regsync plugins in Rust.
//!
//! A plugin is a WebAssembly component that targets one of the worlds in
//! `wit/regsync-plugin.wit` (`tag-filter-plugin`, `template-plugin`,
//! `notifier-plugin`). This crate carries that contract so guest crates and
//! the host agree on one copy of it; the bindings and trait helpers are added
//! with the plugin host.

/// The WIT package every plugin is built against.
pub const WIT_PACKAGE: &str = "regsync:plugin@0.1.0";

/// The WIT source of the plugin contract, as shipped with this release.
pub const WIT: &str = include_str!("../../wit/regsync-plugin.wit");

/// The worlds a plugin may target, one per kind of extension.
pub const WORLDS: [&str; 3] = ["tag-filter-plugin", "template-plugin", "notifier-plugin"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wit_declares_the_package_and_every_world() {
        assert!(WIT.contains(&format!("package {WIT_PACKAGE};")));
        for world in WORLDS {
            assert!(WIT.contains(&format!("world {world} {{")), "missing world {world}");
        }
    }
}
