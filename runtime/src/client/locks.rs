//! Per-key async locks that forget a key once nobody holds or waits for it,
//! so a server that writes millions of tags over months keeps only the
//! locks in use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// Locks by name.
#[derive(Default)]
pub struct KeyedLocks {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Holds one key's lock until dropped.
pub struct KeyGuard<'a> {
    locks: &'a KeyedLocks,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    /// Waits for `key`'s lock.
    pub async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let lock = self.map.lock().expect("lock map poisoned").entry(key.to_string()).or_default().clone();
        let guard = lock.lock_owned().await;
        KeyGuard { locks: self, key: key.to_string(), guard: Some(guard) }
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
        drop(self.guard.take());
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
            let _g = l2.lock("a").await;
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "a second holder waits");
        drop(first);
        waiter.await.unwrap();
        assert!(locks.is_empty(), "released keys are forgotten");
    }
}
