//! How `defaults:` fill each step (DEF-1 … DEF-10), one small pure function
//! per rule. Steps never take `type`, `source`, `target`, `tags`, `tagSets`,
//! `repos`, `platform` or `platforms` from defaults (DEF-10).

use super::model::{DEFAULT_MEDIA_TYPES, Hooks, RateLimit, ReferrerFilter, StepOptions};
use super::raw::{Field, RawCommon};
use crate::duration::GoDuration;

/// regsync never waits less than this between rate-limit checks (DEF-4).
pub const MIN_RETRY: GoDuration = GoDuration::from_mins(5);

fn given<T: Clone>(f: &Field<T>) -> Option<T> {
    f.as_ref().map(|s| s.value.clone())
}

/// A step's own settings merged over `defaults` (DEF-1 … DEF-9); `defaults:`
/// itself is merged over [`StepOptions::default`]. Template fields stay as
/// written; they are expanded later.
pub fn merge(own: &RawCommon, defaults: &StepOptions) -> StepOptions {
    let (schedule, interval) = schedule_and_interval(
        own.schedule.as_ref().map(|s| s.value.as_str()),
        given(&own.interval),
        &defaults.schedule,
        defaults.interval,
    );
    let default_limit = RateLimit { min: defaults.ratelimit.min, retry: clamp_retry(defaults.ratelimit.retry) };
    StepOptions {
        interval,
        schedule,
        backup: text(own.backup.as_ref().map(|s| s.value.as_str()), &defaults.backup),
        ratelimit: rate_limit(given(&own.ratelimit.min), given(&own.ratelimit.retry), default_limit),
        digest_tags: flag(own.digest_tags, defaults.digest_tags),
        referrers: flag(own.referrers, defaults.referrers),
        referrer_slow: flag(own.referrer_slow, defaults.referrer_slow),
        fast_check: flag(own.fast_check, defaults.fast_check),
        force_recursive: flag(own.force_recursive, defaults.force_recursive),
        include_external: flag(own.include_external, defaults.include_external),
        referrer_filters: referrer_filters(own.referrer_filters.clone(), &defaults.referrer_filters),
        referrer_source: text(own.referrer_source.as_ref().map(|s| s.value.as_str()), &defaults.referrer_source),
        referrer_target: text(own.referrer_target.as_ref().map(|s| s.value.as_str()), &defaults.referrer_target),
        media_types: media_types(
            own.media_types.as_ref().map(|l| l.iter().map(|s| s.value.clone()).collect()),
            &defaults.media_types,
        ),
        hooks: hooks(given(&own.hooks), &defaults.hooks),
        notify: match &own.notify {
            Some(list) => list.iter().map(|s| s.value.clone()).collect(),
            None => defaults.notify.clone(),
        },
        // Compiled apart (it reads files); this is the default's until then.
        verify: defaults.verify.clone(),
        gates: defaults.gates.clone(),
    }
}

/// DEF-1, DEF-8: the step's text unless empty, else the default's.
pub fn text(step: Option<&str>, default: &str) -> String {
    match step {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => default.to_string(),
    }
}

/// DEF-2: a step with neither schedule nor interval takes the default schedule
/// if there is one, else the default interval; a step that sets either keeps
/// what it set and takes nothing.
pub fn schedule_and_interval(
    schedule: Option<&str>,
    interval: Option<GoDuration>,
    default_schedule: &str,
    default_interval: GoDuration,
) -> (String, GoDuration) {
    let schedule = schedule.unwrap_or("").to_string();
    let interval = interval.unwrap_or(GoDuration::ZERO);
    if !schedule.is_empty() || !interval.is_zero() {
        return (schedule, interval);
    }
    if !default_schedule.is_empty() {
        (default_schedule.to_string(), GoDuration::ZERO)
    } else {
        (String::new(), default_interval)
    }
}

/// DEF-4 for `defaults:` itself: raise the retry to at least five minutes.
pub fn clamp_retry(retry: GoDuration) -> GoDuration {
    retry.max(MIN_RETRY)
}

/// DEF-3, DEF-4: `min` falls back when 0; `retry` falls back when 0 and is
/// raised to five minutes when below.
pub fn rate_limit(min: Option<i64>, retry: Option<GoDuration>, default: RateLimit) -> RateLimit {
    let min = match min {
        Some(m) if m != 0 => m,
        _ => default.min,
    };
    let retry = match retry {
        Some(r) if !r.is_zero() => r.max(MIN_RETRY),
        _ => default.retry,
    };
    RateLimit { min, retry }
}

/// DEF-5: the step's list, else the defaults' list, else the built-in list.
pub fn media_types(step: Option<Vec<String>>, default: &[String]) -> Vec<String> {
    match step {
        Some(list) if !list.is_empty() => list,
        _ if !default.is_empty() => default.to_vec(),
        _ => DEFAULT_MEDIA_TYPES.iter().map(|s| s.to_string()).collect(),
    }
}

/// DEF-6: an explicit value on the step wins, `false` included.
pub fn flag(step: Option<bool>, default: bool) -> bool {
    step.unwrap_or(default)
}

/// DEF-7: the default applies only when the step has no list at all; an
/// explicit `[]` means "no filters".
pub fn referrer_filters(step: Option<Vec<ReferrerFilter>>, default: &[ReferrerFilter]) -> Vec<ReferrerFilter> {
    step.unwrap_or_else(|| default.to_vec())
}

/// DEF-9: each hook falls back to the default's when the step has none.
pub fn hooks(step: Option<Hooks>, default: &Option<Hooks>) -> Option<Hooks> {
    match (step, default) {
        (None, d) => d.clone(),
        (Some(s), None) => Some(s),
        (Some(s), Some(d)) => Some(Hooks {
            pre: s.pre.or_else(|| d.pre.clone()),
            post: s.post.or_else(|| d.post.clone()),
            unchanged: s.unchanged.or_else(|| d.unchanged.clone()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Hook;

    fn d(s: &str) -> GoDuration {
        GoDuration::parse(s).unwrap()
    }

    fn at<T>(value: T) -> Field<T> {
        Some(super::super::raw::Spanned { value, pos: Default::default() })
    }

    /// One row per rule: the step's own settings, the defaults, and what the
    /// step ends with. (DEF-10: `StepOptions` has no field for `type`,
    /// `source`, `target`, `tags`, `tagSets`, `repos`, `platform(s)`, so
    /// `merge` cannot take them from defaults.)
    fn hook(kind: &str) -> Option<Hook> {
        Some(Hook { kind: kind.into(), params: vec![] })
    }

    #[test]
    fn one_merge_for_every_rule_def_1_to_def_9() {
        let defaults = merge(
            &RawCommon {
                backup: at("bk-{{.Ref.Tag}}".into()),
                schedule: at("15 3 * * *".into()),
                interval: at(d("1h")),
                ratelimit: super::super::raw::RawRateLimit { min: at(100), retry: at(d("1m")) },
                referrers: Some(true),
                referrer_filters: Some(vec![ReferrerFilter { artifact_type: "sbom".into(), ..Default::default() }]),
                referrer_source: at("src-refs".into()),
                media_types: Some(vec![super::super::raw::Spanned { value: "m".into(), pos: Default::default() }]),
                hooks: at(Hooks { pre: hook("dp"), ..Default::default() }),
                ..Default::default()
            },
            &StepOptions::default(),
        );
        assert_eq!(defaults.ratelimit.retry, d("5m"), "DEF-4: the defaults' own retry is raised to 5m");
        type Row = (&'static str, RawCommon, fn(&StepOptions) -> bool);
        let rows: Vec<Row> = vec![
            ("DEF-1 backup inherited", RawCommon::default(), |o| o.backup == "bk-{{.Ref.Tag}}"),
            ("DEF-1 backup own", RawCommon { backup: at("mine".into()), ..Default::default() }, |o| o.backup == "mine"),
            ("DEF-2 schedule inherited", RawCommon::default(), |o| o.schedule == "15 3 * * *" && o.interval.is_zero()),
            ("DEF-2 own interval blocks both", RawCommon { interval: at(d("12h")), ..Default::default() }, |o| {
                o.schedule.is_empty() && o.interval == d("12h")
            }),
            ("DEF-3 min inherited", RawCommon::default(), |o| o.ratelimit.min == 100),
            (
                "DEF-4 own retry raised",
                RawCommon {
                    ratelimit: super::super::raw::RawRateLimit { min: at(5), retry: at(d("3s")) },
                    ..Default::default()
                },
                |o| o.ratelimit.min == 5 && o.ratelimit.retry == d("5m"),
            ),
            ("DEF-5 media types inherited", RawCommon::default(), |o| o.media_types == ["m"]),
            ("DEF-6 flag inherited", RawCommon::default(), |o| o.referrers && !o.digest_tags),
            ("DEF-6 explicit false wins", RawCommon { referrers: Some(false), ..Default::default() }, |o| !o.referrers),
            ("DEF-7 filters inherited", RawCommon::default(), |o| o.referrer_filters.len() == 1),
            ("DEF-7 explicit [] wins", RawCommon { referrer_filters: Some(vec![]), ..Default::default() }, |o| {
                o.referrer_filters.is_empty()
            }),
            ("DEF-8 referrer source inherited", RawCommon::default(), |o| o.referrer_source == "src-refs"),
            ("DEF-9 hooks inherited", RawCommon::default(), |o| o.hooks.as_ref().is_some_and(|h| h.pre == hook("dp"))),
            (
                "DEF-9 each hook falls back on its own",
                RawCommon { hooks: at(Hooks { post: hook("sq"), ..Default::default() }), ..Default::default() },
                |o| o.hooks.as_ref().is_some_and(|h| h.pre == hook("dp") && h.post == hook("sq")),
            ),
        ];
        for (name, own, check) in rows {
            assert!(check(&merge(&own, &defaults)), "{name}");
        }
        let builtin = merge(&RawCommon::default(), &StepOptions::default());
        assert_eq!(builtin.media_types, DEFAULT_MEDIA_TYPES.map(String::from).to_vec(), "DEF-5 built-in list");
        assert_eq!(builtin.ratelimit.retry, d("5m"));
    }

    #[test]
    fn backup_and_referrer_repos_def_1_def_8() {
        assert_eq!(text(None, "bk"), "bk");
        assert_eq!(text(Some(""), "bk"), "bk");
        assert_eq!(text(Some("mine"), "bk"), "mine");
    }

    #[test]
    fn schedule_interval_pair_def_2() {
        assert_eq!(schedule_and_interval(None, None, "15 3 * * *", d("1h")), ("15 3 * * *".into(), GoDuration::ZERO));
        assert_eq!(schedule_and_interval(None, None, "", d("1h")), (String::new(), d("1h")));
        assert_eq!(schedule_and_interval(None, Some(d("12h")), "15 3 * * *", d("1h")), (String::new(), d("12h")));
        assert_eq!(
            schedule_and_interval(Some("0 * * * *"), None, "15 3 * * *", d("1h")),
            ("0 * * * *".into(), GoDuration::ZERO)
        );
        assert_eq!(
            schedule_and_interval(Some("0 * * * *"), Some(d("5m")), "", GoDuration::ZERO),
            ("0 * * * *".into(), d("5m"))
        );
    }

    #[test]
    fn rate_limit_def_3_def_4() {
        let default = RateLimit { min: 100, retry: clamp_retry(d("15m")) };
        assert_eq!(rate_limit(None, None, default), default);
        assert_eq!(rate_limit(Some(0), Some(GoDuration::ZERO), default), default);
        assert_eq!(rate_limit(Some(5), Some(d("1m")), default), RateLimit { min: 5, retry: d("5m") });
        assert_eq!(rate_limit(None, Some(d("3s")), default).retry, d("5m"));
        assert_eq!(rate_limit(None, Some(d("20m")), default).retry, d("20m"));
        assert_eq!(clamp_retry(GoDuration::ZERO), d("5m"));
        assert_eq!(clamp_retry(d("1m")), d("5m"));
    }

    #[test]
    fn media_types_def_5() {
        assert_eq!(media_types(None, &[]), DEFAULT_MEDIA_TYPES.map(String::from).to_vec());
        assert_eq!(media_types(Some(vec![]), &["d".into()]), vec!["d".to_string()]);
        assert_eq!(media_types(Some(vec!["s".into()]), &["d".into()]), vec!["s".to_string()]);
    }

    #[test]
    fn tri_state_flags_def_6() {
        assert!(flag(None, true));
        assert!(!flag(Some(false), true));
        assert!(flag(Some(true), false));
        assert!(!flag(None, false));
    }

    #[test]
    fn referrer_filters_def_7() {
        let f = ReferrerFilter { artifact_type: "sbom".into(), ..Default::default() };
        assert_eq!(referrer_filters(None, std::slice::from_ref(&f)), vec![f.clone()]);
        assert_eq!(referrer_filters(Some(vec![]), std::slice::from_ref(&f)), vec![]);
        assert_eq!(referrer_filters(None, &[]), vec![]);
    }

    #[test]
    fn hooks_def_9() {
        let h = |t: &str| Some(Hook { kind: t.into(), params: vec![] });
        let default = Some(Hooks { pre: h("dp"), post: h("dq"), unchanged: None });
        let merged = hooks(Some(Hooks { pre: h("sp"), ..Default::default() }), &default).unwrap();
        assert_eq!((merged.pre, merged.post, merged.unchanged), (h("sp"), h("dq"), None));
        assert_eq!(hooks(None, &default), default);
    }
}
