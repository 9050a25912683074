//! The `filter` stage: the step's tag and repository filters (pure), the
//! missing-only reduction (REPO-4), and the hook where plugin tag filters run
//! after the built-in ones, in list order.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::config::SyncStep;

/// A tag filter beyond the config's own (a WASM plugin).
pub trait TagFilterHook: Send + Sync {
    /// Who it is, for messages.
    fn name(&self) -> String;
    /// The tags to keep.
    fn filter(&self, repository: &str, tags: Vec<String>) -> Result<Vec<String>, String>;
}

/// The step's filters, then each hook in order.
pub fn tags(
    step: &SyncStep,
    repository: &str,
    available: &[String],
    hooks: &[Arc<dyn TagFilterHook>],
) -> Result<Vec<String>, String> {
    let mut kept = step.compiled.tag_filter.apply(available);
    for hook in hooks {
        kept = hook.filter(repository, kept).map_err(|e| format!("tag filter {}: {e}", hook.name()))?;
    }
    Ok(kept)
}

/// The step's repository filters.
pub fn repositories(step: &SyncStep, available: &[String]) -> Vec<String> {
    step.compiled.repo_filter.apply(available)
}

/// Missing mode (REPO-4): the tags the target lacks, sorted.
pub fn missing_only(source: Vec<String>, target: &[String]) -> Vec<String> {
    let have: BTreeSet<&str> = target.iter().map(String::as_str).collect();
    let mut out: Vec<String> = source.into_iter().filter(|t| !have.contains(t.as_str())).collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tags_are_sorted_repo_4() {
        let source = vec!["v3".to_string(), "v1".into(), "latest".into(), "v2".into()];
        let target = vec!["v1".to_string(), "v9".into()];
        assert_eq!(missing_only(source, &target), vec!["latest", "v2", "v3"]);
    }
}
