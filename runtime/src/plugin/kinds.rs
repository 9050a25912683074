//! The plugin kinds, in one table: for each, the interface a component
//! exports, the world it is built for, the first WIT version that has it,
//! how the runtime uses it (its adapter) and the step key that names it.
//! Everything that asks "what kind is this plugin" reads it from here.

/// A kind of plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// Keeps some of a repository's tags (`filters:`).
    TagFilter,
    /// Adds template functions.
    Template,
    /// Told when a step run starts and ends (`notify:`).
    Notifier,
    /// Allows or denies each image about to be copied (`gates:`).
    Gate,
}

/// What the runtime knows of one kind.
#[derive(Debug)]
pub struct KindInfo {
    /// The kind.
    pub kind: PluginKind,
    /// The interface it exports (`tag-filter`).
    pub interface: &'static str,
    /// The world a component of this kind is built for (`tag-filter-plugin`).
    pub world: &'static str,
    /// The export name in the newest WIT version, as errors name it.
    pub export: &'static str,
    /// The first WIT version with this kind.
    pub since: &'static str,
    /// What a config uses it as, in messages.
    pub noun: &'static str,
    /// How `regsync plugin inspect` lists it.
    pub label: &'static str,
    /// The step key that names plugins of this kind, if one does.
    pub config_key: Option<&'static str>,
    /// How the runtime sees it.
    pub adapter: &'static str,
}

/// Every kind, in the order `plugin inspect` lists them.
pub const KINDS: [KindInfo; 4] = [
    KindInfo {
        kind: PluginKind::TagFilter,
        interface: "tag-filter",
        world: "tag-filter-plugin",
        export: "regsync:plugin/tag-filter@0.2.0",
        since: "0.1.0",
        noun: "tag filter",
        label: "tag filter",
        config_key: Some("filters"),
        adapter: "PluginTagFilter: pipeline::filter::TagFilterExtension",
    },
    KindInfo {
        kind: PluginKind::Template,
        interface: "template-functions",
        world: "template-plugin",
        export: "regsync:plugin/template-functions@0.2.0",
        since: "0.1.0",
        noun: "template plugin",
        label: "template functions",
        config_key: None,
        adapter: "PluginFunctions: template::FunctionProvider",
    },
    KindInfo {
        kind: PluginKind::Notifier,
        interface: "notifier",
        world: "notifier-plugin",
        export: "regsync:plugin/notifier@0.2.0",
        since: "0.1.0",
        noun: "notifier",
        label: "notifier",
        config_key: Some("notify"),
        adapter: "Notifier: pipeline::StepObserver (queued)",
    },
    KindInfo {
        kind: PluginKind::Gate,
        interface: "gate",
        world: "gate-plugin",
        export: "regsync:plugin/gate@0.2.0",
        since: "0.2.0",
        noun: "gate",
        label: "gate",
        config_key: Some("gates"),
        adapter: "PluginGate: pipeline::gate::GateExtension",
    },
];

impl PluginKind {
    /// Its row of [`KINDS`].
    pub fn info(self) -> &'static KindInfo {
        KINDS.iter().find(|k| k.kind == self).expect("every kind has a row")
    }

    /// The kind a `regsync:plugin/<interface>@<version>` export names.
    pub fn of_export(export: &str) -> Option<PluginKind> {
        let (interface, _) = export.strip_prefix("regsync:plugin/")?.split_once('@')?;
        KINDS.iter().find(|k| k.interface == interface).map(|k| k.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_name_their_kind_and_the_table_agrees_with_the_bindings() {
        for k in &KINDS {
            assert_eq!(PluginKind::of_export(k.export), Some(k.kind));
            let newest = crate::plugin::SUPPORTED_WIT.last().unwrap();
            assert!(k.export.ends_with(&format!("@{newest}")), "{}", k.export);
            assert!(crate::plugin::SUPPORTED_WIT.contains(&k.since));
        }
        assert_eq!(PluginKind::of_export("regsync:plugin/gate@0.2.0"), Some(PluginKind::Gate));
        assert_eq!(PluginKind::of_export("regsync:plugin/tag-filter@0.9.0"), Some(PluginKind::TagFilter));
        assert_eq!(PluginKind::of_export("regsync:plugin/host@0.1.0"), None);
        assert_eq!(PluginKind::of_export("wasi:io/streams@0.2.6"), None);
    }
}
