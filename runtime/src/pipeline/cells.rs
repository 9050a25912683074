//! The run's memory of what it asked and wrote: once-cells by key (the first
//! caller does the work, concurrent callers wait for its answer), bounded in
//! count and weight so that a run over a repository with a hundred thousand
//! tags does not keep a hundred thousand answers.
//!
//! Keys are kept as 128-bit hashes of their text: a few bytes instead of a
//! `registry/repository:tag` string per entry. When the bounds are reached
//! the oldest entries are dropped; a dropped entry only costs asking again.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// A shared once-cell.
pub type Cell<T> = Arc<OnceCell<T>>;

/// A key: two independent 64-bit hashes of the text, so that two keys of
/// one run colliding is out of reach (about 1e-27 for a million keys).
pub type Key = u128;

/// The [`Key`] of a text.
pub fn key(text: &str) -> Key {
    let half = |salt: u8| {
        let mut h = DefaultHasher::new();
        salt.hash(&mut h);
        text.hash(&mut h);
        h.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

struct Entry<T> {
    cell: Cell<T>,
    weight: usize,
}

struct Inner<T> {
    map: HashMap<Key, Entry<T>>,
    /// Insertion order, oldest first; may name keys removed since.
    order: VecDeque<Key>,
    weight: usize,
}

/// Once-cells by key, at most `cap` of them and `budget` in total weight.
pub struct CellMap<T> {
    inner: Mutex<Inner<T>>,
    cap: usize,
    budget: usize,
}

impl<T> CellMap<T> {
    /// A map of at most `cap` entries weighing at most `budget` together.
    pub fn new(cap: usize, budget: usize) -> Self {
        CellMap {
            inner: Mutex::new(Inner { map: HashMap::new(), order: VecDeque::new(), weight: 0 }),
            cap: cap.max(1),
            budget,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        self.inner.lock().expect("run state poisoned")
    }

    /// The cell of `key`, a new empty one if there is none.
    pub fn cell(&self, key: Key) -> Cell<T> {
        let mut inner = self.lock();
        if let Some(e) = inner.map.get(&key) {
            return e.cell.clone();
        }
        let cell = Cell::default();
        self.insert_locked(&mut inner, key, cell.clone());
        cell
    }

    /// The cell of `key`, if there is one.
    pub fn get(&self, key: Key) -> Option<Cell<T>> {
        self.lock().map.get(&key).map(|e| e.cell.clone())
    }

    /// Puts `cell` under `key`, replacing what was there.
    pub fn insert(&self, key: Key, cell: Cell<T>) {
        let mut inner = self.lock();
        self.insert_locked(&mut inner, key, cell);
    }

    fn insert_locked(&self, inner: &mut Inner<T>, key: Key, cell: Cell<T>) {
        if let Some(old) = inner.map.insert(key, Entry { cell, weight: 0 }) {
            inner.weight -= old.weight;
        }
        inner.order.push_back(key);
        self.evict(inner);
    }

    /// Records what the (now filled) cell of `key` weighs.
    pub fn weigh(&self, key: Key, weight: usize) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        if let Some(e) = inner.map.get_mut(&key) {
            inner.weight = inner.weight - e.weight + weight;
            e.weight = weight;
        }
        self.evict(inner);
    }

    fn evict(&self, inner: &mut Inner<T>) {
        while inner.map.len() > self.cap || inner.weight > self.budget {
            let Some(oldest) = inner.order.pop_front() else { break };
            if let Some(e) = inner.map.remove(&oldest) {
                inner.weight -= e.weight;
            }
        }
        // Keys removed by other means linger in the order; drop them now and then.
        if inner.order.len() > 2 * self.cap + 64 {
            let map = &inner.map;
            inner.order.retain(|k| map.contains_key(k));
        }
    }

    /// Drops `key`'s cell if it is still `failed` (a failed lookup is asked
    /// again by the next caller), not one that replaced it meanwhile.
    pub fn forget_if(&self, key: Key, failed: &Cell<T>) {
        let mut inner = self.lock();
        if inner.map.get(&key).is_some_and(|e| Arc::ptr_eq(&e.cell, failed))
            && let Some(e) = inner.map.remove(&key)
        {
            inner.weight -= e.weight;
        }
    }

    /// Drops `key`'s cell.
    #[cfg(test)]
    pub fn remove(&self, key: Key) {
        let mut inner = self.lock();
        if let Some(e) = inner.map.remove(&key) {
            inner.weight -= e.weight;
        }
    }

    /// How many cells there are.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_cells_go_when_the_count_is_reached() {
        let m: CellMap<u32> = CellMap::new(3, usize::MAX);
        let cells: Vec<_> = (0..5).map(|i| m.cell(key(&i.to_string()))).collect();
        assert_eq!(m.len(), 3);
        assert!(m.get(key("0")).is_none() && m.get(key("1")).is_none());
        assert!(Arc::ptr_eq(&m.get(key("4")).unwrap(), &cells[4]));
        assert!(Arc::ptr_eq(&m.cell(key("2")), &cells[2]), "a present cell is shared");
    }

    #[test]
    fn the_oldest_cells_go_when_the_weight_is_reached() {
        let m: CellMap<u32> = CellMap::new(100, 10);
        for i in 0..4 {
            m.cell(key(&i.to_string()));
            m.weigh(key(&i.to_string()), 4);
        }
        assert_eq!(m.len(), 2, "4 + 4 fit in 10, a third does not");
        assert!(m.get(key("3")).is_some() && m.get(key("2")).is_some());
    }

    #[test]
    fn a_failed_cell_is_forgotten_only_if_still_there() {
        let m: CellMap<u32> = CellMap::new(10, usize::MAX);
        let failed = m.cell(key("a"));
        let replacement = Cell::default();
        m.insert(key("a"), replacement.clone());
        m.forget_if(key("a"), &failed);
        assert!(Arc::ptr_eq(&m.get(key("a")).unwrap(), &replacement));
        m.forget_if(key("a"), &replacement);
        assert!(m.get(key("a")).is_none());
    }

    #[test]
    fn lingering_order_entries_stay_bounded() {
        let m: CellMap<u32> = CellMap::new(4, usize::MAX);
        for i in 0..1000 {
            let k = key(&i.to_string());
            m.cell(k);
            m.remove(k);
        }
        assert!(m.lock().order.len() <= 2 * 4 + 65);
    }

    #[test]
    fn keys_of_different_texts_differ() {
        let keys: std::collections::HashSet<Key> = (0..10_000).map(|i| key(&format!("r/app:t{i}"))).collect();
        assert_eq!(keys.len(), 10_000);
        assert_eq!(key("a"), key("a"));
    }
}
