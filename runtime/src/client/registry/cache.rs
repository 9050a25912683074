//! The manifest cache (HTTP-10): digest-addressed manifests and HEAD answers,
//! kept for `cacheTime`, at most `cacheCount` of each (`mini-moka`, the
//! bounded cache the runtime uses wherever a server could otherwise grow).
//! Tag lookups are never cached, since tags move.

use std::time::Duration;

use mini_moka::sync::Cache;

use crate::client::types::{Manifest, ManifestHead};

/// Bounded, expiring manifest cache.
pub struct ManifestCache {
    manifests: Cache<String, Manifest>,
    heads: Cache<String, ManifestHead>,
}

fn bounded<V: Clone + Send + Sync + 'static>(count: usize, ttl: Duration) -> Cache<String, V> {
    Cache::builder().max_capacity(count as u64).time_to_live(ttl).build()
}

impl ManifestCache {
    /// A cache of `count` entries per kind, each kept for `ttl`.
    pub fn new(count: usize, ttl: Duration) -> Self {
        ManifestCache { manifests: bounded(count, ttl), heads: bounded(count, ttl) }
    }

    /// A cached manifest.
    pub fn manifest(&self, key: &str) -> Option<Manifest> {
        self.manifests.get(&key.to_string())
    }

    /// Caches a manifest.
    pub fn put_manifest(&self, key: String, m: Manifest) {
        self.manifests.insert(key, m);
    }

    /// A cached HEAD answer.
    pub fn head(&self, key: &str) -> Option<ManifestHead> {
        self.heads.get(&key.to_string())
    }

    /// Caches a HEAD answer.
    pub fn put_head(&self, key: String, h: ManifestHead) {
        self.heads.insert(key, h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(d: &str) -> ManifestHead {
        ManifestHead { media_type: "m".into(), digest: d.into(), size: 1, rate_limit: None }
    }

    #[test]
    fn bounded_and_expiring() {
        let c = ManifestCache::new(2, Duration::from_secs(60));
        for i in 0..50 {
            c.put_head(format!("k{i}"), head(&format!("d{i}")));
        }
        let kept = (0..50).filter(|i| c.head(&format!("k{i}")).is_some()).count();
        assert!(kept <= 2, "at most cacheCount entries, kept {kept}");
        c.put_head("k".into(), head("d"));
        assert_eq!(c.head("k").map(|h| h.digest).as_deref(), Some("d"));
        let short = ManifestCache::new(2, Duration::from_millis(20));
        short.put_head("k".into(), head("d"));
        std::thread::sleep(Duration::from_millis(40));
        assert!(short.head("k").is_none(), "expired after cacheTime");
    }
}
