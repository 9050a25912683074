//! Tag and repository filters: pure functions from a list of names to the
//! names to sync (FILT-1 … FILT-4, SEMVER-*, REPO-2). No IO happens here.

pub(crate) mod pattern;
pub mod semver;

use regex::Regex;
use serde::Serialize;

use self::semver::{Constraint, SemverError, Version};

/// One set of tag filters as written in the config (`tags:` or a `tagSets:` entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagFilterSpec {
    /// Patterns a tag must match (any of them), if there are any.
    pub allow: Vec<String>,
    /// Patterns that remove a tag (any of them).
    pub deny: Vec<String>,
    /// Version ranges; a tag is kept when it satisfies any of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub semver_range: Vec<String>,
}

impl TagFilterSpec {
    /// True when the set filters anything (REPO-2: an empty `tags:` adds no set).
    pub fn is_active(&self) -> bool {
        !(self.allow.is_empty() && self.deny.is_empty() && self.semver_range.is_empty())
    }
}

/// Repository filters for `type: registry` (`repos:`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RepoFilterSpec {
    /// Patterns a repository must match (any of them), if there are any.
    pub allow: Vec<String>,
    /// Patterns that remove a repository.
    pub deny: Vec<String>,
}

/// Which list of a filter spec an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterField {
    /// `allow`
    Allow,
    /// `deny`
    Deny,
    /// `semverRange`
    SemverRange,
}

impl FilterField {
    /// The YAML key.
    pub fn key(self) -> &'static str {
        match self {
            FilterField::Allow => "allow",
            FilterField::Deny => "deny",
            FilterField::SemverRange => "semverRange",
        }
    }
}

/// A pattern or range that does not compile; texts as regsync's (FILT-2, SEMVER-3).
#[derive(Debug, Clone, thiserror::Error)]
pub enum FilterError {
    /// Bad allow regex.
    #[error("invalid allow pattern \"{pattern}\": {reason}")]
    Allow {
        /// The pattern as written.
        pattern: String,
        /// What the regex parser said.
        reason: String,
    },
    /// Bad deny regex.
    #[error("invalid deny pattern \"{pattern}\": {reason}")]
    Deny {
        /// The pattern as written.
        pattern: String,
        /// What the regex parser said.
        reason: String,
    },
    /// Bad semver range.
    #[error("invalid semver range \"{range}\": {source}")]
    Semver {
        /// The range as written.
        range: String,
        /// The parse error.
        source: SemverError,
    },
}

/// A problem in one element of a filter spec.
#[derive(Debug, Clone)]
pub struct FilterIssue {
    /// The list the element is in.
    pub field: FilterField,
    /// Its index in that list.
    pub index: usize,
    /// What is wrong.
    pub error: FilterError,
}

/// One compiled tag set: semverRange, then allow, then deny (FILT-4).
#[derive(Debug, Clone)]
pub struct TagSet {
    ranges: Vec<Constraint>,
    allow: Vec<Regex>,
    deny: Vec<Regex>,
}

fn compile_patterns(patterns: &[String], field: FilterField, issues: &mut Vec<FilterIssue>) -> Vec<Regex> {
    let mut out = Vec::with_capacity(patterns.len());
    for (index, p) in patterns.iter().enumerate() {
        match pattern::compile_anchored(p) {
            Ok(re) => out.push(re),
            Err(reason) => {
                let pattern = p.clone();
                let error = match field {
                    FilterField::Deny => FilterError::Deny { pattern, reason },
                    _ => FilterError::Allow { pattern, reason },
                };
                issues.push(FilterIssue { field, index, error });
            }
        }
    }
    out
}

impl TagSet {
    /// Compiles a spec, reporting every bad element, not just the first.
    pub fn compile(spec: &TagFilterSpec) -> Result<Self, Vec<FilterIssue>> {
        let mut issues = Vec::new();
        let mut ranges = Vec::new();
        for (index, range) in spec.semver_range.iter().enumerate() {
            // Empty entries are skipped, as in regsync; all-empty means no range filter.
            if range.is_empty() {
                continue;
            }
            match Constraint::parse(range) {
                Ok(c) => ranges.push(c),
                Err(source) => issues.push(FilterIssue {
                    field: FilterField::SemverRange,
                    index,
                    error: FilterError::Semver { range: range.clone(), source },
                }),
            }
        }
        let allow = compile_patterns(&spec.allow, FilterField::Allow, &mut issues);
        let deny = compile_patterns(&spec.deny, FilterField::Deny, &mut issues);
        if issues.is_empty() { Ok(TagSet { ranges, allow, deny }) } else { Err(issues) }
    }

    /// Keeps the tags this set selects, in input order.
    pub fn apply<'a>(&self, tags: &'a [String]) -> Vec<&'a str> {
        tags.iter().map(String::as_str).filter(|t| self.keeps(t)).collect()
    }

    fn keeps(&self, tag: &str) -> bool {
        if !self.ranges.is_empty() {
            let Ok(version) = Version::parse(tag) else {
                return false;
            };
            if !self.ranges.iter().any(|c| c.matches(&version)) {
                return false;
            }
        }
        (self.allow.is_empty() || self.allow.iter().any(|re| re.is_match(tag)))
            && !self.deny.iter().any(|re| re.is_match(tag))
    }
}

/// All tag sets of a step, OR-ed together (REPO-2).
#[derive(Debug, Clone, Default)]
pub struct TagFilter {
    sets: Vec<TagSet>,
}

impl TagFilter {
    /// A filter from compiled sets: `tagSets` in order, then `tags` if active.
    pub fn new(sets: Vec<TagSet>) -> Self {
        TagFilter { sets }
    }

    /// The union of what each set keeps, first-seen order, no duplicates.
    /// With no sets every tag is kept.
    pub fn apply(&self, tags: &[String]) -> Vec<String> {
        if self.sets.is_empty() {
            return tags.to_vec();
        }
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for set in &self.sets {
            for tag in set.apply(tags) {
                if seen.insert(tag) {
                    out.push(tag.to_string());
                }
            }
        }
        out
    }
}

/// Compiled `repos:` filters: allow (if any) then deny (FILT-3).
#[derive(Debug, Clone, Default)]
pub struct RepoFilter {
    allow: Vec<Regex>,
    deny: Vec<Regex>,
}

impl RepoFilter {
    /// Compiles a spec, reporting every bad pattern.
    pub fn compile(spec: &RepoFilterSpec) -> Result<Self, Vec<FilterIssue>> {
        let mut issues = Vec::new();
        let allow = compile_patterns(&spec.allow, FilterField::Allow, &mut issues);
        let deny = compile_patterns(&spec.deny, FilterField::Deny, &mut issues);
        if issues.is_empty() { Ok(RepoFilter { allow, deny }) } else { Err(issues) }
    }

    /// True when a repository passes the filters.
    pub fn keeps(&self, repo: &str) -> bool {
        (self.allow.is_empty() || self.allow.iter().any(|re| re.is_match(repo)))
            && !self.deny.iter().any(|re| re.is_match(repo))
    }

    /// The repositories that pass, in input order.
    pub fn apply(&self, repos: &[String]) -> Vec<String> {
        repos.iter().filter(|r| self.keeps(r)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn spec(semver: &[&str], allow: &[&str], deny: &[&str]) -> TagFilterSpec {
        TagFilterSpec { allow: strings(allow), deny: strings(deny), semver_range: strings(semver) }
    }

    /// regclient's TestFilterListVersionScheme table (TEST-C), every row.
    #[test]
    fn test_c_filter_list_version_scheme() {
        let v16 = ["v1", "v2", "v3", "v4", "v5", "v6"];
        let rows: Vec<(&str, TagFilterSpec, Vec<&str>, Vec<&str>)> = vec![
            (
                "semver with multiple ranges and deny",
                spec(&[">=1.0.0 <2.0.0", ">=4.0.0"], &[], &[".*-rc.*"]),
                vec!["1.0.0", "1.5.0-rc1", "2.0.0", "4.0.0", "4.1.0-rc2", "5.0.0"],
                vec!["1.0.0", "4.0.0", "5.0.0"],
            ),
            (
                "semver filters non-semver tags",
                spec(&[">=1.0.0"], &[], &[]),
                vec!["latest", "dev", "1.0.0", "1.5.0", "main"],
                vec!["1.0.0", "1.5.0"],
            ),
            (
                "semver with allow/deny combination",
                spec(&[">=1.0.0 <3.0.0"], &[], &[".*-rc.*"]),
                vec!["1.0.0", "1.5.0-rc1", "2.0.0", "2.1.0-rc2", "3.0.0"],
                vec!["1.0.0", "2.0.0"],
            ),
            (
                "no version range (backward compatibility)",
                spec(&[], &[r"v[0-9]+\.[0-9]+\.[0-9]+"], &[]),
                vec!["v1.0.0", "v1.5.0", "latest", "dev"],
                vec!["v1.0.0", "v1.5.0"],
            ),
            ("empty result when no matches", spec(&[">=5.0.0"], &[], &[]), vec!["1.0.0", "2.0.0", "3.0.0"], vec![]),
            (
                "multiple ranges skip middle versions",
                spec(&[">=1.0.0 <1.20.0", ">=1.22.0"], &[], &[]),
                vec!["1.0.0", "1.19.0", "1.20.0", "1.21.0", "1.22.0", "1.23.0"],
                vec!["1.0.0", "1.19.0", "1.22.0", "1.23.0"],
            ),
            (
                "version range with allow filter",
                spec(&[">=1.0.0"], &["v.*"], &[]),
                vec!["1.0.0", "v1.5.0", "v2.0.0", "3.0.0"],
                vec!["v1.5.0", "v2.0.0"],
            ),
            ("empty version range array", spec(&[], &[], &[]), vec!["1.0.0", "2.0.0"], vec!["1.0.0", "2.0.0"]),
            (
                "semver with suffix alpine",
                spec(&[">=1.0.0 <2.0.0"], &[], &[]),
                vec!["v1.2.3-alpine3.21", "v1.5.0-alpine3.20", "v2.0.0-alpine3.21", "v0.9.0-alpine3.19"],
                vec!["v1.2.3-alpine3.21", "v1.5.0-alpine3.20", "v2.0.0-alpine3.21"],
            ),
            (
                "semver with suffix scratch",
                spec(&[">=5.0.0"], &[], &[]),
                vec!["v5-scratch", "v4-scratch", "v6-scratch", "v5.1-scratch"],
                vec!["v6-scratch", "v5.1-scratch"],
            ),
            (
                "semver with suffix mixed",
                spec(&[">=1.0.0 <3.0.0"], &[], &[]),
                vec!["v1.0.0", "v1.5.0-alpine", "v2.0.0-scratch", "v2.5.1-debian", "v3.0.0-alpine"],
                vec!["v1.0.0", "v1.5.0-alpine", "v2.0.0-scratch", "v2.5.1-debian", "v3.0.0-alpine"],
            ),
            ("semver major version only", spec(&[">=2 <5"], &[], &[]), v16.to_vec(), vec!["v2", "v3", "v4"]),
            (
                "semver major.minor only",
                spec(&[">=1.5 <2.0"], &[], &[]),
                vec!["v1.4", "v1.5", "v1.6", "v1.9", "v2.0", "v2.1"],
                vec!["v1.5", "v1.6", "v1.9"],
            ),
            (
                "semver mixed version formats",
                spec(&[">=1.0.0 <3.0.0"], &[], &[]),
                vec!["v1", "v1.5", "v1.5.0", "v2", "v2.0", "v2.0.0", "v3", "v3.0.0"],
                vec!["v1", "v1.5", "v1.5.0", "v2", "v2.0", "v2.0.0"],
            ),
            (
                "semver with deny on suffixes",
                spec(&[">=1.0.0"], &[], &[".*-alpine.*"]),
                vec!["v1.0.0", "v1.2.3-alpine3.21", "v2.0.0-scratch", "v2.5.0-alpine3.20"],
                vec!["v1.0.0", "v2.0.0-scratch"],
            ),
            (
                "semver + allow adds non-semver tags",
                spec(&[">=1.0.0 <2.0.0"], &["latest", "edge"], &[]),
                vec!["0.9.0", "1.0.0", "1.5.0", "2.0.0", "latest", "edge", "dev"],
                vec![],
            ),
            (
                "semver + allow + deny combines all filters",
                spec(&[">=1.0.0"], &["latest", "stable"], &[".*-rc.*", "latest"]),
                vec!["1.0.0", "1.5.0-rc1", "2.0.0", "latest", "stable", "dev"],
                vec![],
            ),
            (
                "allow without semver still works",
                spec(&[], &[r"v[0-9]+\.[0-9]+"], &[]),
                vec!["v1.0", "v1.5", "v2.0", "latest", "edge"],
                vec!["v1.0", "v1.5", "v2.0"],
            ),
            (
                "semver + allow with overlapping matches",
                spec(&[">=1.0.0"], &[r"v[0-9]+\.[0-9]+\.[0-9]+"], &[]),
                vec!["v1.0.0", "v1.5.0", "v2.0.0", "latest"],
                vec!["v1.0.0", "v1.5.0", "v2.0.0"],
            ),
        ];
        assert_eq!(rows.len(), 19);
        for (name, spec, input, expected) in rows {
            let set = TagSet::compile(&spec).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(set.apply(&strings(&input)), expected, "{name}");
        }
    }

    #[test]
    fn empty_range_entries_are_skipped_semver_3() {
        let set = TagSet::compile(&spec(&["", ""], &[], &[])).unwrap();
        assert_eq!(set.apply(&strings(&["latest", "1.0"])), vec!["latest", "1.0"]);
    }

    #[test]
    fn tag_sets_are_unioned_in_first_seen_order_repo_2() {
        let a = TagSet::compile(&spec(&[], &["a.*", "loop"], &[])).unwrap();
        let b = TagSet::compile(&spec(&[">=2"], &[], &[])).unwrap();
        let filter = TagFilter::new(vec![a, b]);
        let tags = strings(&["v1", "a1", "v3", "loop", "a2", "v2"]);
        assert_eq!(filter.apply(&tags), vec!["a1", "loop", "a2", "v3", "v2"]);
        assert_eq!(TagFilter::default().apply(&tags), tags);
    }

    #[test]
    fn every_bad_element_is_reported_filt_2() {
        let issues = TagSet::compile(&spec(&[">= 1", "1.0", "1.x"], &["(", "fine"], &["["])).unwrap_err();
        let found: Vec<(FilterField, usize)> = issues.iter().map(|i| (i.field, i.index)).collect();
        assert_eq!(
            found,
            vec![
                (FilterField::SemverRange, 0),
                (FilterField::SemverRange, 2),
                (FilterField::Allow, 0),
                (FilterField::Deny, 0)
            ]
        );
        assert!(issues[2].error.to_string().starts_with("invalid allow pattern \"(\": "));
        assert!(issues[3].error.to_string().starts_with("invalid deny pattern \"[\": "));
        assert!(issues[0].error.to_string().starts_with("invalid semver range \">= 1\": "));
    }

    #[test]
    fn repo_filters_filt_3() {
        let f = RepoFilter::compile(&RepoFilterSpec { allow: strings(&[r"team-x/.*"]), deny: strings(&[".*backup"]) })
            .unwrap();
        let repos = strings(&["team-x/app", "team-x/app-backup", "team-y/app", "team-x"]);
        assert_eq!(f.apply(&repos), vec!["team-x/app"]);
        assert_eq!(RepoFilter::default().apply(&repos), repos);
    }
}
