//! Host bindings of every released WIT version (today 0.1.0, from
//! `wit/released/0.1.0/`), one module per world. The `host` interface is
//! generated once and shared, so one implementation serves every world.

#![allow(missing_docs)]

/// `tag-filter-plugin`; also the home of the shared `host` interface.
pub mod tag_filter {
    wasmtime::component::bindgen!({
        path: "../wit/released/0.1.0/regsync-plugin.wit",
        world: "tag-filter-plugin",
    });
}

/// `template-plugin`.
pub mod template {
    wasmtime::component::bindgen!({
        path: "../wit/released/0.1.0/regsync-plugin.wit",
        world: "template-plugin",
        with: { "regsync:plugin/host": super::tag_filter::regsync::plugin::host },
    });
}

/// `notifier-plugin`.
pub mod notifier {
    wasmtime::component::bindgen!({
        path: "../wit/released/0.1.0/regsync-plugin.wit",
        world: "notifier-plugin",
        with: { "regsync:plugin/host": super::tag_filter::regsync::plugin::host },
    });
}

pub use tag_filter::regsync::plugin::host;

/// The `regsync:plugin` versions this host loads components of.
pub const SUPPORTED_WIT: &[&str] = &["0.1.0"];

/// The export name of each interface, as a component lists it.
pub const TAG_FILTER_EXPORT: &str = "regsync:plugin/tag-filter@0.1.0";
/// See [`TAG_FILTER_EXPORT`].
pub const TEMPLATE_EXPORT: &str = "regsync:plugin/template-functions@0.1.0";
/// See [`TAG_FILTER_EXPORT`].
pub const NOTIFIER_EXPORT: &str = "regsync:plugin/notifier@0.1.0";
