//! The `plan` stage: what to do with one image, decided from the source and
//! target HEADs exactly as regsync does (IMG-1 … IMG-9). The decision is a
//! pure function; the engine does the lookups and follows it.

use crate::config::StepSpec;

/// What the command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `once`, scheduled server runs: copy what differs.
    Copy,
    /// `once --missing`, the server's first pass: copy only what is absent.
    Missing,
    /// `check`: decide, copy nothing.
    Check,
}

/// The flags of a step that make a matching image still worth a pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshFlags {
    /// `fastCheck`/`fastCopy`: a matching digest ends the check.
    pub fast_check: bool,
    /// `forceRecursive`.
    pub force_recursive: bool,
    /// `referrers`.
    pub referrers: bool,
    /// `digestTags`.
    pub digest_tags: bool,
}

impl RefreshFlags {
    /// The flags of a step.
    pub fn of(spec: &StepSpec) -> Self {
        RefreshFlags {
            fast_check: spec.fast_check,
            force_recursive: spec.force_recursive,
            referrers: spec.referrers,
            digest_tags: spec.digest_tags,
        }
    }

    /// True when a matching digest means nothing to do (IMG-3).
    pub fn match_is_enough(&self) -> bool {
        self.fast_check || !(self.force_recursive || self.referrers || self.digest_tags)
    }
}

/// What the lookups found.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The command's action.
    pub action: Action,
    /// Media type of the source (from its HEAD).
    pub source_media_type: &'a str,
    /// The digest the target should have: the source digest, or the digest of
    /// the filtered index when `platforms` is set.
    pub expected_digest: &'a str,
    /// The target's digest; `None` when it is missing or unreadable (IMG-2).
    pub target_digest: Option<&'a str>,
}

/// The plan for one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Target matches and nothing else is asked (IMG-3).
    UpToDate,
    /// Missing mode and the target exists, even if stale (IMG-4).
    TargetExists,
    /// The source's media type is not in `mediaTypes` (IMG-5).
    UnsupportedMediaType,
    /// Copy; `refresh` when the digests already match (IMG-7).
    Copy {
        /// Digests match; referrers, digest tags or `forceRecursive` ask for a pass.
        refresh: bool,
    },
}

/// IMG-3, IMG-4, IMG-5, IMG-7 in regsync's order.
pub fn decide(o: &Observed, flags: RefreshFlags, media_types: &[String]) -> Decision {
    let matches = o.target_digest == Some(o.expected_digest);
    if matches && flags.match_is_enough() {
        return Decision::UpToDate;
    }
    if o.target_digest.is_some() && o.action == Action::Missing {
        return Decision::TargetExists;
    }
    if !media_types.iter().any(|m| m == o.source_media_type) {
        return Decision::UnsupportedMediaType;
    }
    Decision::Copy { refresh: matches }
}

/// IMG-6, after resolving `platform` to one manifest: a target already at
/// that digest is up to date unless `forceRecursive`. Referrers and digest
/// tags are not refreshed in that case, as in regsync.
pub fn platform_matches(target_digest: Option<&str>, platform_digest: &str, force_recursive: bool) -> bool {
    target_digest == Some(platform_digest) && !force_recursive
}

/// Why a copy is needed, for `check` output.
pub fn reason(target_digest: Option<&str>, refresh: bool, flags: RefreshFlags) -> String {
    match (target_digest, refresh) {
        (None, _) => "target missing".into(),
        (Some(_), false) => "digest differs".into(),
        (Some(_), true) => {
            let mut why = Vec::new();
            if flags.force_recursive {
                why.push("forceRecursive");
            }
            if flags.referrers {
                why.push("referrers");
            }
            if flags.digest_tags {
                why.push("digestTags");
            }
            format!("up to date, refresh of {}", why.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_MEDIA_TYPES;

    const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    const ARTIFACT: &str = "application/vnd.oci.artifact.manifest.v1+json";

    fn types() -> Vec<String> {
        DEFAULT_MEDIA_TYPES.map(String::from).to_vec()
    }

    fn flags(fast: bool, force: bool, referrers: bool, digest_tags: bool) -> RefreshFlags {
        RefreshFlags { fast_check: fast, force_recursive: force, referrers, digest_tags }
    }

    fn check(action: Action, mt: &str, target: Option<&str>, f: RefreshFlags) -> Decision {
        decide(
            &Observed { action, source_media_type: mt, expected_digest: "sha256:a", target_digest: target },
            f,
            &types(),
        )
    }

    /// The IMG table: every combination that changes the outcome.
    #[test]
    fn decision_table_img_3_to_img_7() {
        use Action as A;
        use Decision as D;
        let none = flags(false, false, false, false);
        let refs = flags(false, false, true, false);
        let tags = flags(false, false, false, true);
        let force = flags(false, true, false, false);
        let fast_refs = flags(true, false, true, true);
        let rows: Vec<(Action, &str, Option<&str>, RefreshFlags, Decision)> = vec![
            // IMG-3: a match is enough unless refresh flags ask for more; fastCheck overrides them.
            (A::Copy, INDEX, Some("sha256:a"), none, D::UpToDate),
            (A::Copy, INDEX, Some("sha256:a"), fast_refs, D::UpToDate),
            (A::Copy, INDEX, Some("sha256:a"), refs, D::Copy { refresh: true }),
            (A::Copy, INDEX, Some("sha256:a"), tags, D::Copy { refresh: true }),
            (A::Copy, INDEX, Some("sha256:a"), force, D::Copy { refresh: true }),
            (A::Check, INDEX, Some("sha256:a"), refs, D::Copy { refresh: true }),
            // Target missing or different.
            (A::Copy, INDEX, None, none, D::Copy { refresh: false }),
            (A::Copy, INDEX, Some("sha256:b"), none, D::Copy { refresh: false }),
            (A::Check, INDEX, Some("sha256:b"), none, D::Copy { refresh: false }),
            // IMG-4: missing mode leaves an existing target alone, even a stale one.
            (A::Missing, INDEX, Some("sha256:b"), none, D::TargetExists),
            (A::Missing, INDEX, Some("sha256:a"), refs, D::TargetExists),
            (A::Missing, INDEX, None, none, D::Copy { refresh: false }),
            (A::Missing, INDEX, Some("sha256:a"), none, D::UpToDate),
            // IMG-5: media type, checked after the match and missing rules.
            (A::Copy, ARTIFACT, None, none, D::UnsupportedMediaType),
            (A::Copy, ARTIFACT, Some("sha256:a"), none, D::UpToDate),
            (A::Missing, ARTIFACT, Some("sha256:b"), none, D::TargetExists),
            (A::Copy, ARTIFACT, Some("sha256:a"), refs, D::UnsupportedMediaType),
        ];
        for (i, (action, mt, target, f, want)) in rows.into_iter().enumerate() {
            assert_eq!(check(action, mt, target, f), want, "row {i}");
        }
    }

    #[test]
    fn platform_match_img_6() {
        assert!(platform_matches(Some("sha256:p"), "sha256:p", false));
        assert!(!platform_matches(Some("sha256:p"), "sha256:p", true));
        assert!(!platform_matches(Some("sha256:q"), "sha256:p", false));
        assert!(!platform_matches(None, "sha256:p", false));
    }

    #[test]
    fn reasons() {
        let f = flags(false, false, true, true);
        assert_eq!(reason(None, false, f), "target missing");
        assert_eq!(reason(Some("x"), false, f), "digest differs");
        assert_eq!(reason(Some("x"), true, f), "up to date, refresh of referrers, digestTags");
    }
}
