//! The Core's cache of plaintext keys (DESIGN §4/§5): bounded, least recently used first out, and idle keys expire.
//! Entries are `Arc`s of keys in locked memory: a key leaves memory (zeroized) when its entry is evicted or expires
//! and the last request using it is done.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Cache key: tenant and system (L2) or tenant and service (L3).
type Key = (String, String);

/// A cached key: the value, when it was last used, and when it must go whatever its use (None: never).
type Entry<V> = (Arc<V>, Instant, Option<Instant>);

/// A bounded LRU of keys with an idle TTL, and optionally a hard end per key.
pub struct KeyCache<V> {
    entries: Mutex<lru::LruCache<Key, Entry<V>>>,
    idle: Duration,
}

impl<V> KeyCache<V> {
    /// A cache of at most `capacity` keys, each dropped after `idle` without use.
    pub fn new(capacity: usize, idle: Duration) -> Self {
        Self {
            entries: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
            idle,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<Key, Entry<V>>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The key, if cached, used within the idle TTL and before its end (then it counts as used now).
    pub fn get(&self, tenant: &str, name: &str) -> Option<Arc<V>> {
        let mut entries = self.lock();
        let key = (tenant.to_owned(), name.to_owned());
        let (value, used, until) = entries.get_mut(&key)?;
        let now = Instant::now();
        if now.duration_since(*used) > self.idle || until.is_some_and(|u| now >= u) {
            entries.pop(&key);
            return None;
        }
        *used = now;
        Some(value.clone())
    }

    /// Caches `value`; the least recently used key leaves when the cache is full.
    pub fn insert(&self, tenant: &str, name: &str, value: Arc<V>) {
        self.lock().put(
            (tenant.to_owned(), name.to_owned()),
            (value, Instant::now(), None),
        );
    }

    /// Caches `value` until `until` at the latest, however often it is used.
    pub fn insert_until(&self, tenant: &str, name: &str, value: Arc<V>, until: Instant) {
        self.lock().put(
            (tenant.to_owned(), name.to_owned()),
            (value, Instant::now(), Some(until)),
        );
    }

    /// Drops the key of `tenant`/`name`.
    pub fn remove(&self, tenant: &str, name: &str) {
        self.lock().pop(&(tenant.to_owned(), name.to_owned()));
    }

    /// Drops every key for which `drop` is true.
    pub fn remove_where(&self, drop: impl Fn(&Key, &V) -> bool) {
        let mut entries = self.lock();
        let doomed: Vec<Key> = entries
            .iter()
            .filter(|(k, (v, ..))| drop(k, v))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            entries.pop(&k);
        }
    }

    /// Drops every key.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// How many keys are cached.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::KeyCache;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn bounded_least_recently_used_out_and_idle_keys_expire() {
        let c = KeyCache::new(2, Duration::from_secs(60));
        c.insert("t", "a", Arc::new(1));
        c.insert("t", "b", Arc::new(2));
        assert_eq!(c.get("t", "a").as_deref(), Some(&1));
        c.insert("t", "c", Arc::new(3));
        // b was the least recently used.
        assert!(c.get("t", "b").is_none());
        assert_eq!(c.len(), 2);
        c.remove_where(|k, _| k.1 == "a");
        assert!(c.get("t", "a").is_none());

        // A hard end holds however often the key is used.
        let ends = KeyCache::new(10, Duration::from_secs(60));
        ends.insert_until(
            "t",
            "a",
            Arc::new(1),
            std::time::Instant::now() + Duration::from_millis(60),
        );
        for _ in 0..3 {
            assert!(ends.get("t", "a").is_some());
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(60));
        assert!(ends.get("t", "a").is_none());

        let idle = KeyCache::new(10, Duration::from_millis(20));
        idle.insert("t", "a", Arc::new(1));
        std::thread::sleep(Duration::from_millis(40));
        assert!(idle.get("t", "a").is_none());
        assert!(idle.is_empty());
    }

    #[test]
    fn an_evicted_key_is_dropped_when_its_last_user_is_done() {
        let c = KeyCache::new(1, Duration::from_secs(60));
        let first = Arc::new(String::from("k1"));
        c.insert("t", "a", first.clone());
        c.insert("t", "b", Arc::new(String::from("k2")));
        // The cache let go of it; only this holder keeps it.
        assert_eq!(Arc::strong_count(&first), 1);
    }
}
