//! Per-key async locks (shared or exclusive) that forget a key once nobody
//! holds or waits for it, so a server that writes millions of tags over
//! months keeps only the locks in use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

/// Locks by name.
#[derive(Default)]
pub struct KeyedLocks {
    map: Mutex<HashMap<String, Arc<RwLock<()>>>>,
}

enum Held {
    Shared(#[allow(dead_code)] OwnedRwLockReadGuard<()>),
    Exclusive(#[allow(dead_code)] OwnedRwLockWriteGuard<()>),
}

/// Holds one key's lock until dropped.
pub struct KeyGuard<'a> {
    locks: &'a KeyedLocks,
    key: String,
    held: Option<Held>,
}

impl KeyedLocks {
    fn entry(&self, key: &str) -> Arc<RwLock<()>> {
        self.map.lock().expect("lock map poisoned").entry(key.to_string()).or_default().clone()
    }

    /// Waits for `key`'s lock, exclusively.
    pub async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let held = Held::Exclusive(self.entry(key).write_owned().await);
        KeyGuard { locks: self, key: key.to_string(), held: Some(held) }
    }

    /// Waits for `key`'s lock, shared with other readers.
    pub async fn read(&self, key: &str) -> KeyGuard<'_> {
        let held = Held::Shared(self.entry(key).read_owned().await);
        KeyGuard { locks: self, key: key.to_string(), held: Some(held) }
    }

    /// Takes several locks without deadlocking against another caller doing
    /// the same: in key order, each key once (exclusive wins over shared).
    pub async fn lock_all(&self, exclusive: &[String], shared: &[String]) -> Vec<KeyGuard<'_>> {
        let mut keys: Vec<(&String, bool)> =
            exclusive.iter().map(|k| (k, true)).chain(shared.iter().map(|k| (k, false))).collect();
        keys.sort_by(|a, b| a.0.cmp(b.0).then(b.1.cmp(&a.1)));
        keys.dedup_by(|later, first| later.0 == first.0);
        let mut guards = Vec::with_capacity(keys.len());
        for (k, excl) in keys {
            guards.push(if excl { self.lock(k).await } else { self.read(k).await });
        }
        guards
    }

    /// Keys currently held or waited for.
    pub fn len(&self) -> usize {
        self.map.lock().expect("lock map poisoned").len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut map = self.locks.map.lock().expect("lock map poisoned");
        // Only the map's own reference left: nobody holds or waits for this key.
        if map.get(&self.key).is_some_and(|l| Arc::strong_count(l) == 1) {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_forgotten_when_released_and_exclusive_while_held() {
        let locks = Arc::new(KeyedLocks::default());
        let first = locks.lock("a").await;
        let l2 = locks.clone();
        let waiter = tokio::spawn(async move {
            let _g = l2.read("a").await;
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "a reader waits for the writer");
        drop(first);
        waiter.await.unwrap();
        let (r1, r2) = (locks.read("b").await, locks.read("b").await);
        assert_eq!(locks.len(), 1, "readers share");
        drop((r1, r2));
        assert!(locks.is_empty(), "released keys are forgotten");
    }

    #[tokio::test]
    async fn taking_many_in_key_order_does_not_deadlock() {
        let locks = Arc::new(KeyedLocks::default());
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let l = locks.clone();
                tokio::spawn(async move {
                    for _ in 0..50 {
                        let (a, b) = if i % 2 == 0 { ("x", "y") } else { ("y", "x") };
                        let _g = l.lock_all(&[a.to_string()], &[b.to_string(), a.to_string()]).await;
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            tokio::time::timeout(std::time::Duration::from_secs(5), t).await.unwrap().unwrap();
        }
        assert!(locks.is_empty());
    }
}
