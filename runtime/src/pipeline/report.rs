//! What a run did, per image and per step: the typed result that the
//! commands print and that notifiers and metrics will read.

use std::time::Duration;

use serde::Serialize;

use super::error::{StageError, serialize_errors};

/// What happened to one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Target already had the source digest.
    UpToDate,
    /// Copied (target was missing or different).
    Copied,
    /// Digests matched; referrers, digest tags or `forceRecursive` were refreshed.
    Refreshed,
    /// `--missing`: the target exists, so it was left alone.
    SkippedExists,
    /// The source media type is not in `mediaTypes`.
    SkippedMediaType,
    /// `check`: a copy is needed.
    Stale,
    /// `check`: up to date, but a copy would refresh referrers or digest tags.
    WouldRefresh,
    /// The image failed.
    Failed,
    /// The signature policy refused it (`verify:`, enforce): nothing written.
    Refused,
    /// A gate denied it (`gates:`, enforce): nothing written.
    Denied,
}

impl Outcome {
    /// True for `check` results that ask for a copy.
    pub fn is_stale(self) -> bool {
        matches!(self, Outcome::Stale)
    }
}

/// Counters of one image copy. JSON names say what happened to the blob
/// (`blobs_sent`, `blobs_mounted`, `blobs_present`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CopyStats {
    /// Manifests pushed.
    pub manifests: u64,
    /// Blobs whose bytes were sent.
    #[serde(rename = "blobs_sent")]
    pub blobs_copied: u64,
    /// Blobs mounted from another repository.
    pub blobs_mounted: u64,
    /// Blobs the target already had (or another copy of this run sent).
    #[serde(rename = "blobs_present")]
    pub blobs_skipped: u64,
    /// Bytes sent.
    #[serde(rename = "bytes_sent")]
    pub bytes: u64,
}

impl CopyStats {
    /// Adds another copy's counters.
    pub fn add(&mut self, o: &CopyStats) {
        self.manifests += o.manifests;
        self.blobs_copied += o.blobs_copied;
        self.blobs_mounted += o.blobs_mounted;
        self.blobs_skipped += o.blobs_skipped;
        self.bytes += o.bytes;
    }
}

/// One image of a step.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// Source reference.
    pub source: String,
    /// Target reference.
    pub target: String,
    /// What happened (`action` in JSON output, as before).
    #[serde(rename = "action")]
    pub outcome: Outcome,
    /// Why, for stale and skipped images (`target missing`, `digest differs`, …).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Source digest, when known.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// Copy counters.
    pub stats: CopyStats,
    /// Wall time.
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// The failure, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `RateLimit-Remaining` of the source, when it sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_remaining: Option<i64>,
    /// The source's registry (or layout path), for metrics.
    #[serde(skip)]
    pub source_registry: String,
}

impl ImageReport {
    /// A report for an image that failed before anything was learnt.
    pub fn failed(source: &str, target: &str) -> Self {
        ImageReport {
            source: source.to_string(),
            target: target.to_string(),
            outcome: Outcome::Failed,
            reason: String::new(),
            digest: String::new(),
            stats: CopyStats::default(),
            duration: Duration::ZERO,
            error: None,
            rate_limit_remaining: None,
            source_registry: String::new(),
        }
    }
}

/// One step.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Position in `sync:`.
    pub index: usize,
    /// Step source.
    pub source: String,
    /// Step target.
    pub target: String,
    /// Step type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Images handled, when their reports are kept (see [`StepReport::add`]);
    /// [`StepReport::tally`] counts every image either way.
    pub images: Vec<ImageReport>,
    /// Errors of the step (listing, filters, images), in order; at most
    /// [`ERRORS_KEPT`], the rest counted in `errors_dropped`.
    #[serde(serialize_with = "serialize_errors")]
    pub errors: Vec<StageError>,
    /// Errors beyond [`ERRORS_KEPT`], counted only.
    #[serde(skip_serializing_if = "is_zero")]
    pub errors_dropped: usize,
    /// With `--shard`: the units of work (target repositories) this shard did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub units_owned: Vec<String>,
    /// With `--shard`: the units left to other shards.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub units_skipped: Vec<String>,
    /// Wall time.
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// What every image came to, kept or not.
    #[serde(skip)]
    pub tally: Tally,
}

/// Errors a step report keeps; a storm of failures (a registry gone) beyond
/// this is counted, so a step of many images cannot grow without bound.
pub const ERRORS_KEPT: usize = 1000;

/// What the images of a step came to, counted as each ends, so the counts
/// and totals hold even when the image reports themselves are not kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Images ended, per outcome.
    pub outcomes: std::collections::BTreeMap<Outcome, usize>,
    /// Copy counters of all of them.
    pub totals: CopyStats,
    /// The last `RateLimit-Remaining` seen per source registry.
    pub rate_limits: std::collections::BTreeMap<String, i64>,
}

impl StepReport {
    /// An empty report of step `index`.
    pub fn new(index: usize, source: &str, target: &str, kind: &str) -> Self {
        StepReport {
            index,
            source: source.to_string(),
            target: target.to_string(),
            kind: kind.to_string(),
            images: Vec::new(),
            errors: Vec::new(),
            errors_dropped: 0,
            units_owned: Vec::new(),
            units_skipped: Vec::new(),
            duration: Duration::ZERO,
            tally: Tally::default(),
        }
    }

    /// Counts an image that ended, and keeps its report when `keep`.
    pub fn add(&mut self, image: ImageReport, keep: bool) {
        *self.tally.outcomes.entry(image.outcome).or_default() += 1;
        self.tally.totals.add(&image.stats);
        if let Some(remaining) = image.rate_limit_remaining {
            self.tally.rate_limits.insert(image.source_registry.clone(), remaining);
        }
        if keep {
            self.images.push(image);
        }
    }

    /// Records an error of the step (beyond [`ERRORS_KEPT`], counts it).
    pub fn add_error(&mut self, e: StageError) {
        if self.errors.len() < ERRORS_KEPT {
            self.errors.push(e);
        } else {
            self.errors_dropped += 1;
        }
    }

    /// True when the step had no error.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// Sums the copy counters of all images.
    pub fn totals(&self) -> CopyStats {
        self.tally.totals
    }

    /// How many images ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.tally.outcomes.get(&outcome).copied().unwrap_or(0)
    }

    /// How many images the step handled.
    pub fn image_count(&self) -> usize {
        self.tally.outcomes.values().sum()
    }
}

/// How many images ended which way, for one step or a whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Images the step covered.
    pub images: usize,
    /// Copied (missing or different on the target).
    pub copied: usize,
    /// Up to date, with referrers, digest tags or `forceRecursive` refreshed.
    pub refreshed: usize,
    /// Already up to date.
    pub up_to_date: usize,
    /// Left alone: `--missing` with the target present, or a media type not in `mediaTypes`.
    pub skipped: usize,
    /// `check`: a copy is needed.
    pub stale: usize,
    /// `check`: up to date, but a copy would refresh referrers or digest tags.
    pub would_refresh: usize,
    /// Failures: failed images and failures of the step itself (a listing, a filter).
    pub failed: usize,
    /// Of the failures, images the signature policy refused.
    #[serde(skip_serializing_if = "is_zero")]
    pub refused: usize,
    /// Of the failures, images a gate denied.
    #[serde(skip_serializing_if = "is_zero")]
    pub denied: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Counts {
    /// The counts of one step.
    pub fn of(step: &StepReport) -> Self {
        Counts {
            images: step.image_count(),
            copied: step.count(Outcome::Copied),
            refreshed: step.count(Outcome::Refreshed),
            up_to_date: step.count(Outcome::UpToDate),
            skipped: step.count(Outcome::SkippedExists) + step.count(Outcome::SkippedMediaType),
            stale: step.count(Outcome::Stale),
            would_refresh: step.count(Outcome::WouldRefresh),
            failed: step.errors.len() + step.errors_dropped,
            refused: step.count(Outcome::Refused),
            denied: step.count(Outcome::Denied),
        }
    }

    fn add(&mut self, o: &Counts) {
        self.images += o.images;
        self.copied += o.copied;
        self.refreshed += o.refreshed;
        self.up_to_date += o.up_to_date;
        self.skipped += o.skipped;
        self.stale += o.stale;
        self.would_refresh += o.would_refresh;
        self.failed += o.failed;
        self.refused += o.refused;
        self.denied += o.denied;
    }
}

/// The machine-readable report of `once --format json` and `check --format
/// json`: one document, the run's totals first, then every step with its
/// counts, totals, images and errors.
#[derive(Debug, Serialize)]
pub struct RunReport<'a> {
    /// `once` or `check`.
    pub command: &'static str,
    /// With `--shard`: which shard ran (`1/3`); each step lists the
    /// repositories it did (`units_owned`) and left (`units_skipped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// True when no step had an error.
    pub ok: bool,
    /// Wall time of the whole run.
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// Image counts over all steps.
    pub counts: Counts,
    /// Copy counters over all steps.
    pub totals: CopyStats,
    /// Every step, in config order.
    pub steps: Vec<StepDocument<'a>>,
}

/// One step in a [`RunReport`]: the step's own fields plus its sums.
#[derive(Debug, Serialize)]
pub struct StepDocument<'a> {
    /// The step.
    #[serde(flatten)]
    pub step: &'a StepReport,
    /// Image counts.
    pub counts: Counts,
    /// Copy counters.
    pub totals: CopyStats,
}

impl<'a> RunReport<'a> {
    /// The report of a run of `command` that took `duration`.
    pub fn new(command: &'static str, steps: &'a [StepReport], duration: Duration) -> Self {
        let (mut counts, mut totals) = (Counts::default(), CopyStats::default());
        let steps: Vec<StepDocument<'a>> = steps
            .iter()
            .map(|step| {
                let doc = StepDocument { step, counts: Counts::of(step), totals: step.totals() };
                counts.add(&doc.counts);
                totals.add(&doc.totals);
                doc
            })
            .collect();
        RunReport { command, shard: None, ok: steps.iter().all(|s| s.step.ok()), duration, counts, totals, steps }
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// A human-readable summary of a run, one line per step and a total. It
/// counts failures; what they were was logged when they happened.
pub fn summary(steps: &[StepReport], check: bool) -> String {
    let mut out = String::new();
    let run = RunReport::new(if check { "check" } else { "once" }, steps, Duration::ZERO);
    for doc in &run.steps {
        let (s, c, t) = (doc.step, &doc.counts, &doc.totals);
        if check {
            for i in s.images.iter().filter(|i| {
                matches!(i.outcome, Outcome::Stale | Outcome::WouldRefresh | Outcome::Refused | Outcome::Denied)
            }) {
                let word = match i.outcome {
                    Outcome::Stale => "stale",
                    Outcome::Refused => "refused",
                    Outcome::Denied => "denied",
                    _ => "refresh",
                };
                out += &format!("{word}: {} -> {} ({})\n", i.source, i.target, i.reason);
            }
        } else {
            out += &format!(
                "sync[{}] {} -> {}: {} copied, {} up to date, {} skipped, {} failed{}; {} blobs sent ({}), {} mounted, {} already there\n",
                s.index,
                s.source,
                s.target,
                c.copied + c.refreshed,
                c.up_to_date,
                c.skipped,
                c.failed,
                refused(c),
                t.blobs_copied,
                human_bytes(t.bytes),
                t.blobs_mounted,
                t.blobs_skipped,
            );
        }
    }
    let (c, t) = (&run.counts, &run.totals);
    if check {
        out += &format!("{} of {} images stale, {} failed\n", c.stale, c.images, c.failed);
    } else {
        out += &format!(
            "total: {} copied, {} up to date, {} skipped, {} failed{}; {} sent in {} blobs, {} blobs mounted\n",
            c.copied + c.refreshed,
            c.up_to_date,
            c.skipped,
            c.failed,
            refused(c),
            human_bytes(t.bytes),
            t.blobs_copied,
            t.blobs_mounted
        );
    }
    out
}

/// ` (N refused by the signature policy, M denied by gates)` for those
/// there were; nothing otherwise, so summaries of runs without a policy or
/// gates read as they always have.
fn refused(c: &Counts) -> String {
    let mut parts = Vec::new();
    if c.refused > 0 {
        parts.push(format!("{} refused by the signature policy", c.refused));
    }
    if c.denied > 0 {
        parts.push(format!("{} denied by gates", c.denied));
    }
    if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) }
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_count_refusals_and_denials_apart() {
        let c = |refused, denied| Counts { refused, denied, ..Counts::default() };
        assert_eq!(refused(&c(0, 0)), "");
        assert_eq!(refused(&c(2, 0)), " (2 refused by the signature policy)");
        assert_eq!(refused(&c(0, 3)), " (3 denied by gates)");
        assert_eq!(refused(&c(1, 1)), " (1 refused by the signature policy, 1 denied by gates)");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
