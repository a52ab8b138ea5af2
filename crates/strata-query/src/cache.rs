//! A least-recently-used cache bounded by bytes, for bloom shards and Parquet footers. Blocks
//! are immutable, so entries never go stale; they only make room.

use std::hash::Hash;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

/// LRU cache of `Arc<V>` whose total size stays under a byte budget.
pub(crate) struct ByteCache<K: Hash + Eq, V> {
    inner: Mutex<Inner<K, V>>,
    budget: usize,
}

struct Inner<K: Hash + Eq, V> {
    entries: LruCache<K, (Arc<V>, usize)>,
    bytes: usize,
}

impl<K: Hash + Eq + Clone, V> ByteCache<K, V> {
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: LruCache::unbounded(),
                bytes: 0,
            }),
            budget,
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<Arc<V>> {
        self.inner
            .lock()
            .entries
            .get(key)
            .map(|(v, _)| Arc::clone(v))
    }

    /// Inserts `value` of `size` bytes, evicting the least recently used entries to stay within
    /// budget. A value larger than the whole budget is not cached.
    pub(crate) fn insert(&self, key: K, value: Arc<V>, size: usize) {
        if size > self.budget {
            return;
        }
        let mut inner = self.inner.lock();
        if let Some((_, old)) = inner.entries.put(key, (value, size)) {
            inner.bytes -= old;
        }
        inner.bytes += size;
        while inner.bytes > self.budget {
            match inner.entries.pop_lru() {
                Some((_, (_, evicted))) => inner.bytes -= evicted,
                None => break,
            }
        }
    }

    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_budget_evicting_least_recent() {
        let cache = ByteCache::new(100);
        cache.insert(1, Arc::new("a"), 40);
        cache.insert(2, Arc::new("b"), 40);
        assert!(cache.get(&1).is_some()); // 1 is now more recent than 2
        cache.insert(3, Arc::new("c"), 40);
        assert!(cache.get(&2).is_none());
        assert!(cache.get(&1).is_some() && cache.get(&3).is_some());
        assert_eq!(cache.bytes(), 80);
        cache.insert(4, Arc::new("too big"), 101);
        assert!(cache.get(&4).is_none());
    }
}
