//! Requests, failures and the last rate limit seen, per registry, for the
//! server's status page. Process-wide: a reload rebuilds the client, and
//! the counts are of the process, as a metric's are.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use chrono::{DateTime, Utc};

use super::RateLimitInfo;

/// The counters of one registry.
#[derive(Default)]
pub struct HostStats {
    requests: AtomicU64,
    errors: AtomicU64,
    rate_limit: Mutex<Option<(i64, Option<DateTime<Utc>>)>>,
}

impl HostStats {
    /// One request sent; `failed` when no answer came or it was a 429 or 5xx.
    pub fn request(&self, failed: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The registry's `RateLimit-*` headers on an answer.
    pub fn rate_limit(&self, info: &RateLimitInfo) {
        let reset = info.reset.map(|s| Utc::now() + chrono::Duration::seconds(s));
        *self.rate_limit.lock().expect("poisoned") = Some((info.remaining, reset));
    }
}

static HOSTS: LazyLock<Mutex<BTreeMap<String, Arc<HostStats>>>> = LazyLock::new(Default::default);

/// The counters of `registry`, made on first use.
pub fn for_registry(registry: &str) -> Arc<HostStats> {
    HOSTS.lock().expect("poisoned").entry(registry.to_string()).or_default().clone()
}

/// What a status page shows of one registry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegistryStats {
    /// The registry, as configured (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Requests sent (each retry counts).
    pub requests: u64,
    /// Of those, the ones that got no answer, a 429 or a 5xx.
    pub errors: u64,
    /// Pulls left, from the last `RateLimit-Remaining` seen.
    pub rate_limit_remaining: Option<i64>,
    /// When the window resets, from the last `RateLimit-Reset` seen.
    pub rate_limit_reset: Option<DateTime<Utc>>,
}

/// Every registry talked to so far, by name.
pub fn snapshot() -> Vec<RegistryStats> {
    HOSTS
        .lock()
        .expect("poisoned")
        .iter()
        .map(|(registry, s)| {
            let limit = *s.rate_limit.lock().expect("poisoned");
            RegistryStats {
                registry: registry.clone(),
                requests: s.requests.load(Ordering::Relaxed),
                errors: s.errors.load(Ordering::Relaxed),
                rate_limit_remaining: limit.map(|l| l.0),
                rate_limit_reset: limit.and_then(|l| l.1),
            }
        })
        .collect()
}
