//! Plugins seen through the runtime's extension points: a tag-filter plugin
//! as a filter-stage hook, a template plugin as a template function
//! provider, a gate plugin as the gate stage's extension.

use std::sync::Arc;

use super::Plugin;

/// Runs a plugin call that may take up to its deadline without stalling the
/// async worker it was made from.
fn off_async<T>(call: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(call),
        _ => call(),
    }
}

/// A tag-filter plugin as a pipeline hook.
pub struct PluginTagFilter(pub Arc<Plugin>);

impl crate::pipeline::filter::TagFilterExtension for PluginTagFilter {
    fn name(&self) -> String {
        format!("plugin \"{}\"", self.0.name())
    }

    fn filter(&self, repository: &str, tags: Vec<String>) -> Result<Vec<String>, String> {
        off_async(|| self.0.filter_tags(repository, &tags)).map_err(|e| e.to_string())
    }
}

/// A template plugin as a source of template functions.
pub struct PluginFunctions(pub Arc<Plugin>);

impl crate::template::FunctionProvider for PluginFunctions {
    fn provider_name(&self) -> String {
        format!("plugin \"{}\"", self.0.name())
    }

    fn functions(&self) -> Vec<String> {
        self.0.functions().to_vec()
    }

    fn call(&self, function: &str, args: &[String]) -> Result<String, String> {
        off_async(|| self.0.call_function(function, args)).map_err(|e| e.to_string())
    }
}

/// A gate plugin as the pipeline's gate stage sees it.
pub struct PluginGate(pub Arc<Plugin>);

impl crate::pipeline::gate::GateExtension for PluginGate {
    fn decide(
        &self,
        facts: &crate::pipeline::gate::ImageFacts,
        settings: &std::collections::BTreeMap<String, String>,
        reader: Arc<dyn crate::pipeline::gate::ReferrerReader>,
    ) -> Result<crate::pipeline::gate::Decision, String> {
        self.0.decide(facts, settings, reader).map_err(|e| e.to_string())
    }
}
