//! The decision of the `plan` stage, pure: from what the lookups found to a
//! typed [`Plan`] (IMG-3 … IMG-9, COPY-7, COPY-12). No IO here; every rule
//! is a row in the tables below.

use crate::config::StepSpec;

/// What the command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `once`, scheduled server runs: copy what differs.
    Copy,
    /// `once --missing`, the server's first pass: copy only what is absent.
    Missing,
    /// `check`: decide, copy nothing.
    Check,
}

/// The flags of a step that make a matching image still worth a look.
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
            fast_check: spec.options.fast_check,
            force_recursive: spec.options.force_recursive,
            referrers: spec.options.referrers,
            digest_tags: spec.options.digest_tags,
        }
    }

    /// True when a matching digest means nothing to do (IMG-3).
    pub fn match_is_enough(&self) -> bool {
        self.fast_check || !(self.force_recursive || self.referrers || self.digest_tags)
    }
}

/// What the top-level lookups found.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The command's action.
    pub action: Mode,
    /// Media type of the source (from its HEAD).
    pub source_media_type: &'a str,
    /// The digest the target should have: the source digest, or the digest of
    /// the filtered index when `platforms` is set.
    pub expected_digest: &'a str,
    /// The target's digest; `None` when it is missing or unreadable (IMG-2).
    pub target_digest: Option<&'a str>,
}

/// Why an image is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyReason {
    /// Nothing at the target name.
    TargetMissing,
    /// The target holds another digest.
    DigestDiffers,
    /// Digests match, `forceRecursive` re-pushes everything (COPY-12).
    Forced,
}

/// One piece of work on an image whose digest already matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// The target lacks referrers of this manifest (a source digest).
    Referrers(String),
    /// The target lacks this digest tag or holds another manifest under it.
    DigestTag(String),
}

/// The plan for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The target matches, and so do its referrers and digest tags where asked (IMG-3).
    UpToDate,
    /// `platform` picked the manifest the target already has (IMG-6).
    PlatformUpToDate,
    /// Missing mode and the target exists, even if stale (IMG-4).
    TargetExists,
    /// The source's media type is not in `mediaTypes` (IMG-5).
    UnsupportedMediaType,
    /// Copy the image graph, tag last.
    Copy(CopyReason),
    /// The digest matches; only this work is needed (never empty).
    Refresh(Vec<Work>),
}

/// The first decision, from the two HEADs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum First {
    /// Decided.
    Done(Plan),
    /// The digest matches and referrers or digest tags must be compared first.
    CompareExtras,
}

/// IMG-3, IMG-4, IMG-5, IMG-7 in regsync's order.
pub fn first(o: &Observed, flags: RefreshFlags, media_types: &[String]) -> First {
    let matches = o.target_digest == Some(o.expected_digest);
    if matches && flags.match_is_enough() {
        return First::Done(Plan::UpToDate);
    }
    if o.target_digest.is_some() && o.action == Mode::Missing {
        return First::Done(Plan::TargetExists);
    }
    if !media_types.iter().any(|m| m == o.source_media_type) {
        return First::Done(Plan::UnsupportedMediaType);
    }
    match (o.target_digest, matches) {
        (None, _) => First::Done(Plan::Copy(CopyReason::TargetMissing)),
        (Some(_), false) => First::Done(Plan::Copy(CopyReason::DigestDiffers)),
        (Some(_), true) if flags.force_recursive => First::Done(Plan::Copy(CopyReason::Forced)),
        (Some(_), true) => First::CompareExtras,
    }
}

/// IMG-6, after resolving `platform` to one manifest: a target already at
/// that digest is up to date unless `forceRecursive`. Referrers and digest
/// tags are not refreshed in that case, as in regsync.
pub fn platform_matches(target_digest: Option<&str>, platform_digest: &str, force_recursive: bool) -> bool {
    target_digest == Some(platform_digest) && !force_recursive
}

/// How the referrers of one manifest compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrersSeen {
    /// The subject (a source digest).
    pub subject: String,
    /// The target lists every referrer the filters keep.
    pub in_sync: bool,
}

/// How one digest tag compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestTagSeen {
    /// The tag.
    pub tag: String,
    /// What the source tag names.
    pub source: String,
    /// What the target tag names, if it exists.
    pub target: Option<String>,
}

/// The second decision, for a matching image: exactly what differs.
pub fn refresh(referrers: &[ReferrersSeen], digest_tags: &[DigestTagSeen]) -> Plan {
    let mut work: Vec<Work> =
        referrers.iter().filter(|r| !r.in_sync).map(|r| Work::Referrers(r.subject.clone())).collect();
    work.extend(
        digest_tags
            .iter()
            .filter(|t| t.target.as_deref() != Some(t.source.as_str()))
            .map(|t| Work::DigestTag(t.tag.clone())),
    );
    if work.is_empty() { Plan::UpToDate } else { Plan::Refresh(work) }
}

/// Why a copy is needed, for `check` output.
pub fn reason(plan: &Plan) -> String {
    match plan {
        Plan::Copy(CopyReason::TargetMissing) => "target missing".into(),
        Plan::Copy(CopyReason::DigestDiffers) => "digest differs".into(),
        Plan::Copy(CopyReason::Forced) => "up to date, forceRecursive".into(),
        Plan::Refresh(work) => {
            let referrers = work.iter().filter(|w| matches!(w, Work::Referrers(_))).count();
            let tags = work.len() - referrers;
            let mut parts = Vec::new();
            if referrers > 0 {
                parts.push(format!("referrers of {referrers} manifest{}", if referrers == 1 { "" } else { "s" }));
            }
            if tags > 0 {
                parts.push(format!("{tags} digest tag{}", if tags == 1 { "" } else { "s" }));
            }
            format!("up to date, missing {}", parts.join(" and "))
        }
        Plan::UnsupportedMediaType => "media type not in mediaTypes".into(),
        Plan::UpToDate | Plan::PlatformUpToDate | Plan::TargetExists => String::new(),
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

    fn check(action: Mode, mt: &str, target: Option<&str>, f: RefreshFlags) -> First {
        first(
            &Observed { action, source_media_type: mt, expected_digest: "sha256:a", target_digest: target },
            f,
            &types(),
        )
    }

    /// The IMG table: every combination that changes the outcome.
    #[test]
    fn first_decision_img_3_to_img_7() {
        use CopyReason as R;
        use First::{CompareExtras as Extras, Done};
        use Mode as A;
        let none = flags(false, false, false, false);
        let refs = flags(false, false, true, false);
        let tags = flags(false, false, false, true);
        let force = flags(false, true, false, false);
        let fast_refs = flags(true, false, true, true);
        let rows: Vec<(Mode, &str, Option<&str>, RefreshFlags, First)> = vec![
            // IMG-3: a match is enough unless refresh flags ask for more; fastCheck overrides them.
            (A::Copy, INDEX, Some("sha256:a"), none, Done(Plan::UpToDate)),
            (A::Copy, INDEX, Some("sha256:a"), fast_refs, Done(Plan::UpToDate)),
            (A::Copy, INDEX, Some("sha256:a"), refs, Extras),
            (A::Copy, INDEX, Some("sha256:a"), tags, Extras),
            (A::Check, INDEX, Some("sha256:a"), refs, Extras),
            // COPY-12: forceRecursive re-pushes a matching image.
            (A::Copy, INDEX, Some("sha256:a"), force, Done(Plan::Copy(R::Forced))),
            // Target missing or different.
            (A::Copy, INDEX, None, none, Done(Plan::Copy(R::TargetMissing))),
            (A::Copy, INDEX, Some("sha256:b"), none, Done(Plan::Copy(R::DigestDiffers))),
            (A::Check, INDEX, Some("sha256:b"), refs, Done(Plan::Copy(R::DigestDiffers))),
            // IMG-4: missing mode leaves an existing target alone, even a stale one.
            (A::Missing, INDEX, Some("sha256:b"), none, Done(Plan::TargetExists)),
            (A::Missing, INDEX, Some("sha256:a"), refs, Done(Plan::TargetExists)),
            (A::Missing, INDEX, None, none, Done(Plan::Copy(R::TargetMissing))),
            (A::Missing, INDEX, Some("sha256:a"), none, Done(Plan::UpToDate)),
            // IMG-5: media type, checked after the match and missing rules.
            (A::Copy, ARTIFACT, None, none, Done(Plan::UnsupportedMediaType)),
            (A::Copy, ARTIFACT, Some("sha256:a"), none, Done(Plan::UpToDate)),
            (A::Missing, ARTIFACT, Some("sha256:b"), none, Done(Plan::TargetExists)),
            (A::Copy, ARTIFACT, Some("sha256:a"), refs, Done(Plan::UnsupportedMediaType)),
        ];
        for (i, (action, mt, target, f, want)) in rows.into_iter().enumerate() {
            assert_eq!(check(action, mt, target, f), want, "row {i}");
        }
    }

    /// A matching image is refreshed for exactly what differs, else up to date.
    #[test]
    fn refresh_names_exactly_what_differs() {
        let seen = |s: &str, in_sync| ReferrersSeen { subject: s.into(), in_sync };
        let tag = |t: &str, src: &str, tgt: Option<&str>| DigestTagSeen {
            tag: t.into(),
            source: src.into(),
            target: tgt.map(str::to_string),
        };
        let rows: Vec<(Vec<ReferrersSeen>, Vec<DigestTagSeen>, Plan)> = vec![
            (vec![], vec![], Plan::UpToDate),
            (
                vec![seen("sha256:a", true), seen("sha256:c1", true)],
                vec![tag("t.sig", "sha256:s", Some("sha256:s"))],
                Plan::UpToDate,
            ),
            (
                vec![seen("sha256:a", true), seen("sha256:c1", false)],
                vec![],
                Plan::Refresh(vec![Work::Referrers("sha256:c1".into())]),
            ),
            (vec![], vec![tag("t.sig", "sha256:s", None)], Plan::Refresh(vec![Work::DigestTag("t.sig".into())])),
            (
                vec![],
                vec![tag("t.sig", "sha256:s", Some("sha256:old"))],
                Plan::Refresh(vec![Work::DigestTag("t.sig".into())]),
            ),
            (
                vec![seen("sha256:a", false)],
                vec![tag("t.att", "sha256:s", None), tag("t.sig", "sha256:s", Some("sha256:s"))],
                Plan::Refresh(vec![Work::Referrers("sha256:a".into()), Work::DigestTag("t.att".into())]),
            ),
        ];
        for (i, (refs, tags, want)) in rows.into_iter().enumerate() {
            assert_eq!(refresh(&refs, &tags), want, "row {i}");
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
        assert_eq!(reason(&Plan::Copy(CopyReason::TargetMissing)), "target missing");
        assert_eq!(reason(&Plan::Copy(CopyReason::DigestDiffers)), "digest differs");
        let work = vec![Work::Referrers("a".into()), Work::DigestTag("t".into()), Work::DigestTag("u".into())];
        assert_eq!(reason(&Plan::Refresh(work)), "up to date, missing referrers of 1 manifest and 2 digest tags");
    }
}
