//! Host bindings of `regsync:plugin@0.2.0` (frozen in
//! `wit/released/0.2.0/`): the 0.1.0 worlds again, plus `gate-plugin`.
//! The `host` interface is generated once and shared by every world.

#![allow(missing_docs)]

/// `gate-plugin`; also the home of the shared `host` and the `image-reader` interfaces.
pub mod gate {
    wasmtime::component::bindgen!({
        path: "../wit/released/0.2.0/regsync-plugin.wit",
        world: "gate-plugin",
    });
}

/// `tag-filter-plugin`.
pub mod tag_filter {
    wasmtime::component::bindgen!({
        path: "../wit/released/0.2.0/regsync-plugin.wit",
        world: "tag-filter-plugin",
        with: { "regsync:plugin/host": super::gate::regsync::plugin::host },
    });
}

/// `template-plugin`.
pub mod template {
    wasmtime::component::bindgen!({
        path: "../wit/released/0.2.0/regsync-plugin.wit",
        world: "template-plugin",
        with: { "regsync:plugin/host": super::gate::regsync::plugin::host },
    });
}

/// `notifier-plugin`.
pub mod notifier {
    wasmtime::component::bindgen!({
        path: "../wit/released/0.2.0/regsync-plugin.wit",
        world: "notifier-plugin",
        with: { "regsync:plugin/host": super::gate::regsync::plugin::host },
    });
}

pub use gate::regsync::plugin::{host, image_reader};

/// The version these bindings are of.
pub const VERSION: &str = "0.2.0";
