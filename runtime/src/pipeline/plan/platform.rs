//! `platform`: the one child of an index a step copies (IMG-6), remembered
//! per index digest in a bounded map, unlike regsync's (a server runs for
//! months and sees a new index digest with every upstream release).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::client::{Client, ClientError, Descriptor, ErrorKind, Manifest, Result};
use crate::platform::Platform;
use crate::reference::Reference;

/// Entries the cache keeps.
pub const CACHE_ENTRIES: usize = 4096;

/// A small bounded map: the oldest entry goes when full.
pub struct Bounded<V> {
    map: HashMap<String, V>,
    order: VecDeque<String>,
    limit: usize,
}

impl<V: Clone> Bounded<V> {
    /// An empty map holding at most `limit` entries.
    pub fn new(limit: usize) -> Self {
        Bounded { map: HashMap::new(), order: VecDeque::new(), limit }
    }

    /// A value.
    pub fn get(&self, k: &str) -> Option<V> {
        self.map.get(k).cloned()
    }

    /// Stores a value.
    pub fn put(&mut self, k: String, v: V) {
        if self.map.insert(k.clone(), v).is_none() {
            self.order.push_back(k);
            while self.order.len() > self.limit {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

/// Index digest + platform → the chosen child.
pub struct PlatformCache {
    chosen: Mutex<Bounded<Descriptor>>,
}

impl Default for PlatformCache {
    fn default() -> Self {
        PlatformCache { chosen: Mutex::new(Bounded::new(CACHE_ENTRIES)) }
    }
}

impl PlatformCache {
    /// The child for `wanted` of the index `src` names (pinned to its digest).
    /// `list` is the index when the caller already has it; otherwise it is
    /// fetched unless remembered.
    pub async fn resolve(
        &self,
        client: &Client,
        src: &Reference,
        list: Option<&Manifest>,
        wanted: &Platform,
    ) -> Result<Descriptor> {
        let key = format!("{}|{wanted}", src.digest);
        if let Some(d) = self.chosen.lock().expect("poisoned").get(&key) {
            return Ok(d);
        }
        let fetched;
        let list = match list {
            Some(l) => l,
            None => {
                fetched = client.manifest_get(src).await.inspect_err(|e| {
                    tracing::error!(source = %src.common_name(), error = %e, "Failed to get source manifest");
                })?;
                &fetched
            }
        };
        let doc = list.doc().map_err(|e| ClientError::new(ErrorKind::Invalid, src.common_name(), e.to_string()))?;
        let Some(chosen) = wanted.select(&doc.manifests) else {
            let available: Vec<String> = doc
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref().map(|p| Platform::from_descriptor(p).to_string()))
                .collect();
            tracing::warn!(platform = %wanted, platforms = ?available, "Platform could not be found in source manifest list");
            return Err(ClientError::new(
                ErrorKind::NotFound,
                src.common_name(),
                format!("platform {wanted} not found"),
            ));
        };
        self.chosen.lock().expect("poisoned").put(key, chosen.clone());
        Ok(chosen.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_map_forgets_the_oldest() {
        let mut b = Bounded::new(2);
        b.put("a".into(), 1);
        b.put("b".into(), 2);
        b.put("c".into(), 3);
        assert_eq!((b.get("a"), b.get("b"), b.get("c")), (None, Some(2), Some(3)));
    }
}
