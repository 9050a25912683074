//! The manifest cache (HTTP-10): digest-addressed manifests and HEAD answers,
//! kept for `cacheTime`, at most `cacheCount` of each. Tag lookups are never
//! cached, since tags move.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::client::types::{Manifest, ManifestHead};

struct Bounded<V> {
    entries: HashMap<String, (Instant, V)>,
    order: VecDeque<String>,
}

impl<V: Clone> Bounded<V> {
    fn new() -> Self {
        Bounded { entries: HashMap::new(), order: VecDeque::new() }
    }

    fn get(&self, key: &str, ttl: Duration) -> Option<V> {
        self.entries.get(key).filter(|(at, _)| at.elapsed() < ttl).map(|(_, v)| v.clone())
    }

    fn put(&mut self, key: String, value: V, count: usize) {
        if self.entries.insert(key.clone(), (Instant::now(), value)).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > count {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }
}

/// Bounded, expiring manifest cache.
pub struct ManifestCache {
    count: usize,
    ttl: Duration,
    manifests: Mutex<Bounded<Manifest>>,
    heads: Mutex<Bounded<ManifestHead>>,
}

impl ManifestCache {
    /// A cache of `count` entries per kind, each kept for `ttl`.
    pub fn new(count: usize, ttl: Duration) -> Self {
        ManifestCache { count, ttl, manifests: Mutex::new(Bounded::new()), heads: Mutex::new(Bounded::new()) }
    }

    /// A cached manifest.
    pub fn manifest(&self, key: &str) -> Option<Manifest> {
        self.manifests.lock().expect("cache poisoned").get(key, self.ttl)
    }

    /// Caches a manifest.
    pub fn put_manifest(&self, key: String, m: Manifest) {
        self.manifests.lock().expect("cache poisoned").put(key, m, self.count);
    }

    /// A cached HEAD answer.
    pub fn head(&self, key: &str) -> Option<ManifestHead> {
        self.heads.lock().expect("cache poisoned").get(key, self.ttl)
    }

    /// Caches a HEAD answer.
    pub fn put_head(&self, key: String, h: ManifestHead) {
        self.heads.lock().expect("cache poisoned").put(key, h, self.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_and_expires() {
        let c = ManifestCache::new(2, Duration::from_secs(60));
        for i in 0..3 {
            c.put_head(
                format!("k{i}"),
                ManifestHead { media_type: "m".into(), digest: format!("d{i}"), size: 1, rate_limit: None },
            );
        }
        assert!(c.head("k0").is_none());
        assert_eq!(c.head("k2").unwrap().digest, "d2");
        let short = ManifestCache::new(2, Duration::ZERO);
        short.put_head(
            "k".into(),
            ManifestHead { media_type: "m".into(), digest: "d".into(), size: 1, rate_limit: None },
        );
        assert!(short.head("k").is_none());
    }
}
