//! Host bindings of `regsync:plugin@0.1.0` (frozen in
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

/// The version these bindings are of.
pub const VERSION: &str = "0.1.0";
