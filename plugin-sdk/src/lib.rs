//! Write regsync plugins in Rust.
//!
//! A plugin is a WebAssembly component that targets one world of
//! the WIT package `regsync:plugin`, whose file this crate carries
//! (`plugin-sdk/wit/`, a copy of the released one that a test keeps equal).
//! It generates the bindings, and gives
//! each kind of plugin a plain trait and an export macro, so a plugin is a
//! type, one `impl` and one macro call. Enable the feature of your kind:
//!
//! | kind           | feature      | trait                | macro                   |
//! |----------------|--------------|----------------------|-------------------------|
//! | tag filter     | `tag-filter` | [`TagFilter`]        | [`export_tag_filter!`]  |
//! | template funcs | `template`   | [`TemplateFunctions`]| [`export_template!`]    |
//! | notifier       | `notifier`   | [`Notifier`]         | [`export_notifier!`]    |
//! | gate           | `gate`       | [`Gate`]             | [`export_gate!`]        |
//!
//! ```ignore
//! use regsync_plugin_sdk::{TagFilter, config, export_tag_filter};
//!
//! struct OnlyStable;
//!
//! impl TagFilter for OnlyStable {
//!     fn filter_tags(_repo: String, tags: Vec<String>) -> Result<Vec<String>, String> {
//!         Ok(tags.into_iter().filter(|t| !t.contains("-rc")).collect())
//!     }
//! }
//!
//! export_tag_filter!(OnlyStable);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm`
//! in `target/wasm32-wasip2/release/` is the component regsync loads. See
//! `plugin-sdk/README.md` for the walk from `cargo new` to a loaded plugin.

/// The WIT package every plugin is built against.
pub const WIT_PACKAGE: &str = "regsync:plugin@0.2.0";

/// The WIT source of the plugin contract, as shipped with this release.
pub const WIT: &str = include_str!("../wit/regsync-plugin.wit");

/// The worlds a plugin may target, one per kind of extension.
pub const WORLDS: [&str; 4] = ["tag-filter-plugin", "template-plugin", "notifier-plugin", "gate-plugin"];

/// Generated bindings, one module per world. Use the traits and macros at
/// the crate root instead; these are public because the macros expand to them.
#[doc(hidden)]
pub mod bindings {
    #[cfg(feature = "tag-filter")]
    pub mod tag_filter {
        wit_bindgen::generate!({
            path: "wit",
            world: "tag-filter-plugin",
            default_bindings_module: "regsync_plugin_sdk::bindings::tag_filter",
            pub_export_macro: true,
            export_macro_name: "__export_tag_filter_world",
        });
    }

    #[cfg(feature = "template")]
    pub mod template {
        wit_bindgen::generate!({
            path: "wit",
            world: "template-plugin",
            default_bindings_module: "regsync_plugin_sdk::bindings::template",
            pub_export_macro: true,
            export_macro_name: "__export_template_world",
        });
    }

    #[cfg(feature = "notifier")]
    pub mod notifier {
        wit_bindgen::generate!({
            path: "wit",
            world: "notifier-plugin",
            default_bindings_module: "regsync_plugin_sdk::bindings::notifier",
            pub_export_macro: true,
            export_macro_name: "__export_notifier_world",
        });
    }

    #[cfg(feature = "gate")]
    pub mod gate {
        wit_bindgen::generate!({
            path: "wit",
            world: "gate-plugin",
            default_bindings_module: "regsync_plugin_sdk::bindings::gate",
            additional_derives: [PartialEq, Eq],
            pub_export_macro: true,
            export_macro_name: "__export_gate_world",
        });
    }
}

#[cfg(all(feature = "gate", not(any(feature = "tag-filter", feature = "template", feature = "notifier"))))]
use bindings::gate::regsync::plugin::host as host_imports;
#[cfg(all(feature = "notifier", not(any(feature = "tag-filter", feature = "template"))))]
use bindings::notifier::regsync::plugin::host as host_imports;
#[cfg(feature = "tag-filter")]
use bindings::tag_filter::regsync::plugin::host as host_imports;
#[cfg(all(feature = "template", not(feature = "tag-filter")))]
use bindings::template::regsync::plugin::host as host_imports;

/// Severity of a log line.
#[cfg(any(feature = "tag-filter", feature = "template", feature = "notifier", feature = "gate"))]
pub use host_imports::Level;

/// Writes a line to regsync's log, tagged with the plugin's name.
#[cfg(any(feature = "tag-filter", feature = "template", feature = "notifier", feature = "gate"))]
pub fn log(level: Level, message: &str) {
    host_imports::log(level, message);
}

/// One of the plugin's settings (the `config:` map of its `plugins:` entry).
#[cfg(any(feature = "tag-filter", feature = "template", feature = "notifier", feature = "gate"))]
pub fn config(key: &str) -> Option<String> {
    host_imports::get_config(key)
}

/// A setting, or `default` when it is not set.
#[cfg(any(feature = "tag-filter", feature = "template", feature = "notifier", feature = "gate"))]
pub fn config_or(key: &str, default: &str) -> String {
    config(key).unwrap_or_else(|| default.to_string())
}

/// A tag filter: decides which tags of a repository are synced. It runs
/// after the step's own `tags:` filters, in the order of the step's `filters:`.
#[cfg(feature = "tag-filter")]
pub trait TagFilter {
    /// The tags to keep: a subset of `tags`, in any order. By default, all.
    fn filter_tags(repo: String, tags: Vec<String>) -> Result<Vec<String>, String> {
        let _ = repo;
        Ok(tags)
    }
}

/// Exports a [`TagFilter`] implementation as the plugin's tag filter.
#[cfg(feature = "tag-filter")]
#[macro_export]
macro_rules! export_tag_filter {
    ($t:ident) => {
        impl $crate::bindings::tag_filter::exports::regsync::plugin::tag_filter::Guest for $t {
            fn filter_tags(
                repo: ::std::string::String,
                tags: ::std::vec::Vec<::std::string::String>,
            ) -> ::std::result::Result<::std::vec::Vec<::std::string::String>, ::std::string::String> {
                <$t as $crate::TagFilter>::filter_tags(repo, tags)
            }
        }
        $crate::bindings::tag_filter::__export_tag_filter_world!($t with_types_in $crate::bindings::tag_filter);
    };
}

/// Template functions, callable by name from every Go template in the config.
#[cfg(feature = "template")]
pub trait TemplateFunctions {
    /// The names this plugin provides.
    fn functions() -> Vec<String>;

    /// Calls `name` with the template's arguments, each as a string.
    fn call(name: String, args: Vec<String>) -> Result<String, String>;
}

/// Exports a [`TemplateFunctions`] implementation.
#[cfg(feature = "template")]
#[macro_export]
macro_rules! export_template {
    ($t:ident) => {
        impl $crate::bindings::template::exports::regsync::plugin::template_functions::Guest for $t {
            fn list_functions() -> ::std::vec::Vec<::std::string::String> {
                <$t as $crate::TemplateFunctions>::functions()
            }
            fn call(
                name: ::std::string::String,
                args: ::std::vec::Vec<::std::string::String>,
            ) -> ::std::result::Result<::std::string::String, ::std::string::String> {
                <$t as $crate::TemplateFunctions>::call(name, args)
            }
        }
        $crate::bindings::template::__export_template_world!($t with_types_in $crate::bindings::template);
    };
}

/// An event about a sync run.
#[cfg(feature = "notifier")]
pub use bindings::notifier::exports::regsync::plugin::notifier::SyncEvent;

/// The event kinds of this WIT version (`SyncEvent::kind`); later versions
/// may add more, which [`Notifier::other`] receives.
#[cfg(feature = "notifier")]
pub mod kinds {
    /// A step run began.
    pub const SYNC_STARTED: &str = "sync-started";
    /// An image was copied (or its referrers or digest tags refreshed).
    pub const IMAGE_COPIED: &str = "image-copied";
    /// An image was already current, or skipped.
    pub const IMAGE_SKIPPED: &str = "image-skipped";
    /// An image failed; `error` says why.
    pub const IMAGE_FAILED: &str = "image-failed";
    /// The signature policy refused an image; `error` says why.
    pub const IMAGE_REFUSED: &str = "image-refused";
    /// A gate denied an image; `error` says which and why.
    pub const IMAGE_DENIED: &str = "image-denied";
    /// A step run ended without errors.
    pub const SYNC_FINISHED: &str = "sync-finished";
    /// A step run ended with errors.
    pub const SYNC_FAILED: &str = "sync-failed";
}

/// A notifier: told when step runs start and end and what each image did.
/// Implement the events you care about; the others are ignored.
#[cfg(feature = "notifier")]
pub trait Notifier {
    /// Every event; by default dispatched to the methods below by `kind`.
    fn notify(event: SyncEvent) -> Result<(), String> {
        match event.kind.as_str() {
            kinds::SYNC_STARTED => Self::sync_started(event),
            kinds::IMAGE_COPIED => Self::image_copied(event),
            kinds::IMAGE_SKIPPED => Self::image_skipped(event),
            kinds::IMAGE_FAILED => Self::image_failed(event),
            kinds::SYNC_FINISHED => Self::sync_finished(event),
            kinds::SYNC_FAILED => Self::sync_failed(event),
            _ => Self::other(event),
        }
    }
    /// A step run began.
    fn sync_started(_event: SyncEvent) -> Result<(), String> {
        Ok(())
    }
    /// An image was copied.
    fn image_copied(_event: SyncEvent) -> Result<(), String> {
        Ok(())
    }
    /// An image was already current, or skipped.
    fn image_skipped(_event: SyncEvent) -> Result<(), String> {
        Ok(())
    }
    /// An image failed (why is in `event.error`).
    fn image_failed(_event: SyncEvent) -> Result<(), String> {
        Ok(())
    }
    /// A step run ended without errors.
    fn sync_finished(_event: SyncEvent) -> Result<(), String> {
        Ok(())
    }
    /// A step run ended with errors (in `event.error`).
    fn sync_failed(_event: SyncEvent) -> Result<(), String> {
        Ok(())
    }
    /// A kind this SDK does not know (sent by a newer regsync): ignored by default.
    fn other(_event: SyncEvent) -> Result<(), String> {
        Ok(())
    }
}

/// The value of detail `name` of an event (see the WIT's `details`).
#[cfg(feature = "notifier")]
pub fn detail<'a>(event: &'a SyncEvent, name: &str) -> Option<&'a str> {
    event.details.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// POSTs `body` to `url`, which must be on the plugin's `allowHosts`; the HTTP status.
#[cfg(feature = "notifier")]
pub fn http_post(url: &str, content_type: &str, body: &str) -> Result<u16, String> {
    bindings::notifier::regsync::plugin::outbound_http::post(url, content_type, body)
}

/// Exports a [`Notifier`] implementation.
#[cfg(feature = "notifier")]
#[macro_export]
macro_rules! export_notifier {
    ($t:ident) => {
        impl $crate::bindings::notifier::exports::regsync::plugin::notifier::Guest for $t {
            fn notify(event: $crate::SyncEvent) -> ::std::result::Result<(), ::std::string::String> {
                <$t as $crate::Notifier>::notify(event)
            }
        }
        $crate::bindings::notifier::__export_notifier_world!($t with_types_in $crate::bindings::notifier);
    };
}

/// What a gate is shown of an image about to be copied.
#[cfg(feature = "gate")]
pub use bindings::gate::exports::regsync::plugin::gate::{Decision, ImageFacts, Referrer, Signer};

/// A gate: allows or denies each image a step is about to copy. It runs
/// after the signature policy and before anything is written; a denial
/// under `mode: enforce` keeps the image out and fails the run.
#[cfg(feature = "gate")]
pub trait Gate {
    /// The verdict on one image.
    fn decide(facts: ImageFacts) -> Decision;
}

/// Reads a referrer of the image being judged (an SBOM, an attestation):
/// its manifest with `layer` none, else that layer's blob; at most
/// `max_bytes`. Any other digest is refused.
#[cfg(feature = "gate")]
pub fn read_referrer(digest: &str, layer: Option<u32>, max_bytes: u64) -> Result<Vec<u8>, String> {
    bindings::gate::regsync::plugin::image_reader::read_referrer(digest, layer, max_bytes)
}

/// The value of `name` in a list of name/value pairs (annotations, labels, details).
#[cfg(feature = "gate")]
pub fn lookup<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Exports a [`Gate`] implementation.
#[cfg(feature = "gate")]
#[macro_export]
macro_rules! export_gate {
    ($t:ident) => {
        impl $crate::bindings::gate::exports::regsync::plugin::gate::Guest for $t {
            fn decide(facts: $crate::ImageFacts) -> $crate::Decision {
                <$t as $crate::Gate>::decide(facts)
            }
        }
        $crate::bindings::gate::__export_gate_world!($t with_types_in $crate::bindings::gate);
    };
}

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
