//! Tag filter: keeps the newest `count` tags by semantic-version order.
//!
//! Settings (`config:` in the plugin's entry):
//! - `count` — how many tags to keep (default 5, or `KEEP_LATEST_COUNT` at build time);
//! - `prerelease` — `"false"` drops pre-releases such as `2.0.0-rc.1` (default `"true"`).
//!
//! Tags are read leniently, as people write them: a leading `v`, and missing
//! minor or patch numbers (`v1.2` is 1.2.0). Tags that are not versions at all
//! (`latest`, `main`) are dropped; put them in the step's `tags.allow` of
//! another step if they should be synced too. Ties (`1.2` and `1.2.0`) keep
//! their original order.

use std::cmp::Ordering;

use regsync_plugin_sdk::{Level, TagFilter, config, export_tag_filter, log};

/// The plugin.
pub struct KeepLatest;

/// `count` when the config sets none.
const DEFAULT_COUNT: &str = match option_env!("KEEP_LATEST_COUNT") {
    Some(c) => c,
    None => "5",
};

/// A tag read as a semantic version; borrowed, so reading 10,000 tags allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version<'a> {
    /// Major, minor and patch numbers (missing ones are 0).
    pub core: [u64; 3],
    /// The pre-release after `-`, or "".
    pub pre: &'a str,
}

fn number(part: &str) -> Option<u64> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) || (part.len() > 1 && part.starts_with('0')) {
        return None;
    }
    part.parse().ok()
}

/// Reads a tag as a version, if it is one: `v1.2.3`, `1.2`, `v2`, `1.0.0-rc.1`.
pub fn version_of(tag: &str) -> Option<Version<'_>> {
    let bare = tag.strip_prefix('v').unwrap_or(tag);
    let (core_text, pre) = match bare.split_once('-') {
        Some((c, p)) => (c, p),
        None => (bare, ""),
    };
    let mut core = [0u64; 3];
    let mut parts = core_text.split('.');
    for (i, slot) in core.iter_mut().enumerate() {
        match parts.next() {
            Some(p) => *slot = number(p)?,
            None if i > 0 => break,
            None => return None,
        }
    }
    if parts.next().is_some() {
        return None;
    }
    let valid_pre =
        pre.split('.').all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if bare.contains('-') && !valid_pre {
        return None;
    }
    Some(Version { core, pre })
}

/// Semantic-version precedence of two pre-releases ("" is a release, above any pre-release).
fn compare_pre(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    let mut xs = a.split('.');
    let mut ys = b.split('.');
    loop {
        let (x, y) = match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => (x, y),
        };
        let order = match (x.bytes().all(|c| c.is_ascii_digit()), y.bytes().all(|c| c.is_ascii_digit())) {
            // Numeric identifiers compare as numbers: by length first, then digits.
            (true, true) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
}

impl Ord for Version<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.core.cmp(&other.core).then_with(|| compare_pre(self.pre, other.pre))
    }
}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The newest `count` versions among `tags`, newest first; ties keep their order.
pub fn keep_latest(tags: Vec<String>, count: usize, prerelease: bool) -> Vec<String> {
    let mut versions: Vec<(Version<'_>, usize)> = tags
        .iter()
        .enumerate()
        .filter_map(|(i, t)| version_of(t).map(|v| (v, i)))
        .filter(|(v, _)| prerelease || v.pre.is_empty())
        .collect();
    let newest_first = |a: &(Version<'_>, usize), b: &(Version<'_>, usize)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
    // Only the first `count` need sorting: partition around the count-th, then sort those.
    if count < versions.len() {
        versions.select_nth_unstable_by(count, newest_first);
        versions.truncate(count);
    }
    versions.sort_unstable_by(newest_first);
    let keep: Vec<usize> = versions.iter().map(|(_, i)| *i).collect();
    let mut tags: Vec<Option<String>> = tags.into_iter().map(Some).collect();
    keep.into_iter().filter_map(|i| tags[i].take()).collect()
}

impl TagFilter for KeepLatest {
    fn filter_tags(repo: String, tags: Vec<String>) -> Result<Vec<String>, String> {
        let count = config("count").unwrap_or_else(|| DEFAULT_COUNT.into());
        let count: usize = count.trim().parse().map_err(|_| format!("count must be a whole number, got {count:?}"))?;
        let prerelease = config("prerelease").is_none_or(|p| p.trim() != "false");
        let kept = keep_latest(tags, count, prerelease);
        log(Level::Debug, &format!("{repo}: keeping {}", kept.join(", ")));
        Ok(kept)
    }
}

export_tag_filter!(KeepLatest);

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn newest_by_semver_not_by_text() {
        let all = tags(&["v1.9.0", "v1.10.0", "v1.2", "latest", "v2.0.0-rc.1", "v0.9.9", "1.10.1"]);
        assert_eq!(keep_latest(all.clone(), 3, true), tags(&["v2.0.0-rc.1", "1.10.1", "v1.10.0"]));
        assert_eq!(keep_latest(all, 3, false), tags(&["1.10.1", "v1.10.0", "v1.9.0"]));
    }

    #[test]
    fn lenient_versions() {
        assert_eq!(version_of("v1"), Some(Version { core: [1, 0, 0], pre: "" }));
        assert_eq!(version_of("1.2"), Some(Version { core: [1, 2, 0], pre: "" }));
        assert_eq!(version_of("1.2-alpine"), Some(Version { core: [1, 2, 0], pre: "alpine" }));
        for bad in ["1.2.3.4", "latest", "v", "1..2", "01.2.3", "1.2.", "1.2.3-", "1.2.3-a..b", "1.2.3+b"] {
            assert!(version_of(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn pre_release_precedence_follows_semver() {
        // The order semver.org gives as its example, oldest first.
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        let mut shuffled = tags(&order);
        shuffled.reverse();
        shuffled.swap(1, 5);
        let mut expected = tags(&order);
        expected.reverse();
        assert_eq!(keep_latest(shuffled, 8, true), expected);
    }

    #[test]
    fn ties_keep_their_order_and_count_bounds_work() {
        assert_eq!(keep_latest(tags(&["1.2", "v1.2.0", "1.2.0"]), 2, true), tags(&["1.2", "v1.2.0"]));
        assert!(keep_latest(tags(&["1.0.0"]), 0, true).is_empty());
        assert_eq!(keep_latest(tags(&["1.0.0", "2.0.0"]), 10, true), tags(&["2.0.0", "1.0.0"]));
    }
}
