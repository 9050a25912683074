//! Prometheus metrics of a server: runs, images, bytes and blobs per step,
//! last success, duration and schedule interval, source rate limits, reload
//! outcomes, and plugin failures. `examples/monitoring/` has a dashboard and
//! alert rules over these names.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::pipeline::{Outcome, StepReport};

/// Identifies a step.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    /// Step source.
    pub source: String,
    /// Step target.
    pub target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    source: String,
    target: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ImageLabels {
    source: String,
    target: String,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BlobLabels {
    source: String,
    target: String,
    how: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistryLabels {
    registry: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    plugin: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric family the server exports, as scrapers see their names
/// (counters with `_total`). The dashboard and alerts of
/// `examples/monitoring/` use only these; a test keeps the list true.
pub const FAMILIES: &[&str] = &[
    "regsync_runs_total",
    "regsync_images_total",
    "regsync_copied_bytes_total",
    "regsync_blobs_total",
    "regsync_step_last_success_timestamp_seconds",
    "regsync_step_last_duration_seconds",
    "regsync_source_ratelimit_remaining",
    "regsync_reloads_total",
    "regsync_step_interval_seconds",
    "regsync_config_last_reload_successful",
    "regsync_plugin_failures_total",
];

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    images: Family<ImageLabels, Counter>,
    bytes: Family<StepLabels, Counter>,
    blobs: Family<BlobLabels, Counter>,
    last_success: Family<StepLabels, FloatGauge>,
    last_duration: Family<StepLabels, FloatGauge>,
    rate_limit: Family<RegistryLabels, Gauge>,
    reloads: Family<ResultLabels, Counter>,
    interval: Family<StepLabels, FloatGauge>,
    reload_ok: Gauge,
    plugin_failures: Family<PluginLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Metrics {
    /// The families, each series labelled `shard="I/N"` when this process is one shard.
    pub fn new(shard: Option<crate::shard::Shard>) -> Self {
        let labels = shard.map(|s| (std::borrow::Cow::Borrowed("shard"), std::borrow::Cow::Owned(s.to_string())));
        let mut registry = Registry::with_prefix_and_labels("regsync", labels.into_iter());
        let m = Metrics {
            runs: Family::default(),
            images: Family::default(),
            bytes: Family::default(),
            blobs: Family::default(),
            last_success: Family::default(),
            last_duration: Family::default(),
            rate_limit: Family::default(),
            reloads: Family::default(),
            interval: Family::default(),
            reload_ok: Gauge::default(),
            plugin_failures: Family::default(),
            registry: Registry::default(),
        };
        m.reload_ok.set(1);
        registry.register("runs", "Step runs, by result (ok or error)", m.runs.clone());
        registry.register("images", "Images handled, by action", m.images.clone());
        registry.register("copied_bytes", "Bytes of blobs sent", m.bytes.clone());
        registry.register("blobs", "Blobs by how they reached the target (copied, mounted, skipped)", m.blobs.clone());
        registry.register(
            "step_last_success_timestamp_seconds",
            "Unix time of the step's last run without errors",
            m.last_success.clone(),
        );
        registry.register("step_last_duration_seconds", "Duration of the step's last run", m.last_duration.clone());
        registry.register(
            "source_ratelimit_remaining",
            "Pulls left at a source registry, from RateLimit-Remaining",
            m.rate_limit.clone(),
        );
        registry.register("reloads", "Config reloads, by result (applied or rejected)", m.reloads.clone());
        registry.register(
            "step_interval_seconds",
            "Seconds between a step's scheduled runs (for cron, between its next two)",
            m.interval.clone(),
        );
        registry.register(
            "config_last_reload_successful",
            "1 when the last config reload was applied (or none happened), 0 when it was rejected",
            m.reload_ok.clone(),
        );
        registry.register(
            "plugin_failures",
            "Plugin calls that trapped, timed out, ran out of memory or returned an error",
            m.plugin_failures.clone(),
        );
        Metrics { registry, ..m }
    }
}

fn action_label(a: Outcome) -> &'static str {
    match a {
        Outcome::UpToDate => "up-to-date",
        Outcome::Copied => "copied",
        Outcome::Refreshed => "refreshed",
        Outcome::SkippedExists | Outcome::SkippedMediaType => "skipped",
        Outcome::Stale | Outcome::WouldRefresh => "stale",
        Outcome::Failed => "failed",
        Outcome::Refused => "refused",
        Outcome::Denied => "denied",
    }
}

impl Metrics {
    /// Counts one finished run of a step.
    pub fn record(&self, report: &StepReport) {
        let (source, target) = (report.source.clone(), report.target.clone());
        let step = StepLabels { source: source.clone(), target: target.clone() };
        let result = if report.ok() { "ok" } else { "error" };
        self.runs
            .get_or_create(&RunLabels { source: source.clone(), target: target.clone(), result: result.into() })
            .inc();
        for (outcome, n) in &report.tally.outcomes {
            let action = action_label(*outcome).to_string();
            self.images
                .get_or_create(&ImageLabels { source: source.clone(), target: target.clone(), action })
                .inc_by(*n as u64);
        }
        for (registry, remaining) in &report.tally.rate_limits {
            self.rate_limit.get_or_create(&RegistryLabels { registry: registry.clone() }).set(*remaining);
        }
        let totals = report.totals();
        self.bytes.get_or_create(&step).inc_by(totals.bytes);
        for (how, n) in
            [("copied", totals.blobs_copied), ("mounted", totals.blobs_mounted), ("skipped", totals.blobs_skipped)]
        {
            self.blobs
                .get_or_create(&BlobLabels { source: source.clone(), target: target.clone(), how: how.into() })
                .inc_by(n);
        }
        self.last_duration.get_or_create(&step).set(report.duration.as_secs_f64());
        if report.ok() {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            self.last_success.get_or_create(&step).set(now.as_secs_f64());
        }
    }

    /// Counts a reload.
    pub fn reload(&self, applied: bool) {
        let result = if applied { "applied" } else { "rejected" };
        self.reloads.get_or_create(&ResultLabels { result: result.into() }).inc();
        self.reload_ok.set(i64::from(applied));
    }

    /// How often a step is scheduled to run.
    pub fn step_interval(&self, source: &str, target: &str, every: std::time::Duration) {
        let step = StepLabels { source: source.to_string(), target: target.to_string() };
        self.interval.get_or_create(&step).set(every.as_secs_f64());
    }

    /// The exposition in the classic Prometheus text format (0.0.4), for
    /// scrapers and tools that do not ask for OpenMetrics (`promtool check
    /// metrics`, curl): counters are described under their `_total` name,
    /// and OpenMetrics' `# UNIT` and `# EOF` lines are left out.
    pub fn encode_prometheus(&self) -> String {
        to_prometheus_text(&self.encode())
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        // Plugins count their failures themselves; bring the counters level.
        for (plugin, count) in plugin_failures() {
            let counter = self.plugin_failures.get_or_create(&PluginLabels { plugin });
            counter.inc_by(count.saturating_sub(counter.get()));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Failed plugin calls by plugin name, for the process's life: counted
/// where calls fail (`plugin/`), exported as `regsync_plugin_failures_total`.
static PLUGIN_FAILURES: std::sync::LazyLock<std::sync::Mutex<std::collections::BTreeMap<String, u64>>> =
    std::sync::LazyLock::new(Default::default);

/// One failed call of `plugin` (a trap, a timeout, a limit, an error it returned).
pub fn count_plugin_failure(plugin: &str) {
    *PLUGIN_FAILURES.lock().expect("poisoned").entry(plugin.to_string()).or_default() += 1;
}

fn plugin_failures() -> std::collections::BTreeMap<String, u64> {
    PLUGIN_FAILURES.lock().expect("poisoned").clone()
}

/// OpenMetrics text as Prometheus text 0.0.4.
fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        openmetrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let described = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(described.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{CopyStats, ImageReport};
    use std::time::Duration;

    #[test]
    fn the_families_list_is_what_is_exported() {
        let m = Metrics::default();
        let mut report = StepReport::new(0, "r:5000/a", "r:5001/a", "repository");
        report.add(
            ImageReport {
                source: "r:5000/a:v1".into(),
                target: "r:5001/a:v1".into(),
                outcome: Outcome::Copied,
                rate_limit_remaining: Some(7),
                source_registry: "r:5000".into(),
                ..ImageReport::failed("r:5000/a:v1", "r:5001/a:v1")
            },
            false,
        );
        m.record(&report);
        m.reload(false);
        m.step_interval("r:5000/a", "r:5001/a", Duration::from_secs(3600));
        count_plugin_failure("probe");
        let text = m.encode_prometheus();
        let exported: Vec<&str> =
            text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
        assert_eq!(exported, FAMILIES, "{text}");
    }

    #[test]
    fn prometheus_text_describes_counters_under_their_sample_names() {
        let om = "# HELP regsync_runs Step runs.\n# TYPE regsync_runs counter\nregsync_runs_total{a=\"b\"} 1\n# HELP regsync_x X.\n# TYPE regsync_x gauge\n# UNIT regsync_x seconds\nregsync_x 2\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP regsync_runs_total Step runs.\n# TYPE regsync_runs_total counter\nregsync_runs_total{a=\"b\"} 1\n# HELP regsync_x X.\n# TYPE regsync_x gauge\nregsync_x 2\n"
        );
    }

    #[test]
    fn records_runs_and_encodes_text() {
        let m = Metrics::default();
        let mut report = StepReport::new(0, "r:5000/a", "r:5001/a", "repository");
        report.add(
            ImageReport {
                source: "r:5000/a:v1".into(),
                target: "r:5001/a:v1".into(),
                outcome: Outcome::Copied,
                reason: String::new(),
                digest: String::new(),
                stats: CopyStats { manifests: 1, blobs_copied: 2, blobs_mounted: 1, blobs_skipped: 0, bytes: 300 },
                duration: Duration::from_millis(5),
                error: None,
                rate_limit_remaining: Some(42),
                source_registry: "r:5000".into(),
            },
            false,
        );
        report.duration = Duration::from_millis(7);
        m.record(&report);
        m.reload(false);
        let text = m.encode();
        assert!(text.contains(r#"regsync_runs_total{source="r:5000/a",target="r:5001/a",result="ok"} 1"#), "{text}");
        assert_eq!(action_label(Outcome::Refused), "refused");
        assert_eq!(action_label(Outcome::Denied), "denied");
        assert!(text.contains(r#"regsync_copied_bytes_total{source="r:5000/a",target="r:5001/a"} 300"#));
        assert!(text.contains(r#"regsync_blobs_total{source="r:5000/a",target="r:5001/a",how="mounted"} 1"#));
        assert!(text.contains(r#"regsync_source_ratelimit_remaining{registry="r:5000"} 42"#));
        assert!(text.contains(r#"regsync_reloads_total{result="rejected"} 1"#));
        assert!(text.contains("regsync_step_last_success_timestamp_seconds"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_shard_labels_every_series() {
        let m = Metrics::new(Some(crate::shard::Shard { index: 1, count: 3 }));
        m.reload(true);
        let text = m.encode();
        assert!(text.contains(r#"regsync_reloads_total{shard="1/3",result="applied"} 1"#), "{text}");
        assert!(!Metrics::default().encode().contains("shard="));
    }
}
