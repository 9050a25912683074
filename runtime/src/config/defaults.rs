//! How `defaults:` fill each step (DEF-1 … DEF-10), one small pure function
//! per rule. Steps never take `type`, `source`, `target`, `tags`, `tagSets`,
//! `repos`, `platform` or `platforms` from defaults (DEF-10).

use super::model::{DEFAULT_MEDIA_TYPES, Hooks, RateLimit, ReferrerFilter};
use crate::duration::GoDuration;

/// regsync never waits less than this between rate-limit checks (DEF-4).
pub const MIN_RETRY: GoDuration = GoDuration::from_mins(5);

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
pub fn referrer_filters(
    step: Option<Vec<ReferrerFilter>>,
    default: &Option<Vec<ReferrerFilter>>,
) -> Vec<ReferrerFilter> {
    step.or_else(|| default.clone()).unwrap_or_default()
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
        assert_eq!(referrer_filters(None, &Some(vec![f.clone()])), vec![f.clone()]);
        assert_eq!(referrer_filters(Some(vec![]), &Some(vec![f.clone()])), vec![]);
        assert_eq!(referrer_filters(None, &None), vec![]);
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
