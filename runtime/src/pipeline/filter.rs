//! The `filter` stage: the step's tag and repository filters (pure), the
//! missing-only reduction (REPO-4), and the extension point where plugin tag filters run
//! after the built-in ones, in list order.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::config::SyncStep;

/// A tag filter beyond the config's own (a WASM plugin).
pub trait TagFilterExtension: Send + Sync {
    /// Who it is, for messages.
    fn name(&self) -> String;
    /// The tags to keep. Errors name the extension (they reach the user as they are).
    fn filter(&self, repository: &str, tags: Vec<String>) -> Result<Vec<String>, String>;
}

/// The step's filters, then each extension in order.
pub fn tags(
    step: &SyncStep,
    repository: &str,
    available: &[String],
    extensions: &[Arc<dyn TagFilterExtension>],
) -> Result<Vec<String>, String> {
    let mut kept = step.compiled.tag_filter.apply(available);
    for extension in extensions {
        let offered: BTreeSet<String> = kept.iter().cloned().collect();
        let returned = extension.filter(repository, kept)?;
        // An extension may reorder or drop tags, never invent them: a tag that is not
        // in the source would fail later with a less clear error.
        let (known, invented): (Vec<String>, Vec<String>) = returned.into_iter().partition(|t| offered.contains(t));
        if !invented.is_empty() {
            tracing::warn!(filter = extension.name(), tags = ?invented, "Tag filter returned tags it was not given, ignoring them");
        }
        kept = dedup(known);
    }
    Ok(kept)
}

fn dedup(tags: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    tags.into_iter().filter(|t| seen.insert(t.clone())).collect()
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
