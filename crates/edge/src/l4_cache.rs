//! The edge's cache of unwrapped L4 keys (DESIGN §6.3, `core` custody): a hot key costs no Core round trip.
//!
//! An entry is the plaintext of one wrapped L4, kept for at most `ttl` (default 30 s) and only while the wrapped
//! key it came from is the one in the vault: the entry remembers the wrapped key's nonce and parent (L3) version, so
//! a re-wrapped or replaced key misses. State is never cached: every request still reads the vault record and its
//! state before the key is used. Destroy, Revoke and the other changes of a key purge its entry at once, and the
//! plaintext is zeroized when an entry leaves. The cache holds at most `capacity` keys; when full, expired entries
//! are dropped and, if none had expired, the new key is simply not cached. A full cache is swept only once its
//! oldest entry can have expired, so a stream of new keys into a full cache costs no scan per key.

use openkcm_crypto::{SecretBytes, WrappedKey};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Default lifetime of a cached key.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// Default number of keys the cache may hold.
pub const DEFAULT_CAPACITY: usize = 100_000;

struct Entry {
    /// Which wrapped key this is the plaintext of.
    nonce: [u8; openkcm_crypto::NONCE_LEN],
    parent_version: u32,
    loaded: Instant,
    key: SecretBytes,
}

struct Entries {
    map: HashMap<(String, String), Entry>,
    /// When a sweep of the full map can first drop something: the oldest entry's expiry, as of the last sweep.
    next_sweep: Option<Instant>,
}

/// Unwrapped L4 keys by (tenant, unique identifier).
pub struct L4Cache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<Entries>,
    hits: AtomicU64,
    misses: AtomicU64,
    sweeps: AtomicU64,
}

impl L4Cache {
    /// A cache keeping keys for `ttl` (zero disables it), at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                next_sweep: None,
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            sweeps: AtomicU64::new(0),
        }
    }

    /// A cache that never holds anything.
    pub fn disabled() -> Self {
        Self::new(Duration::ZERO, 0)
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave an entry half-written (inserts and removes are single
        // calls), so a poisoned map is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The plaintext of `wrapped` (the key `uid` of `tenant`), if cached and fresh.
    pub fn get(&self, tenant: &str, uid: &str, wrapped: &WrappedKey) -> Option<SecretBytes> {
        if !self.enabled() {
            return None;
        }
        let found = self.lookup(tenant, uid, wrapped);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn lookup(&self, tenant: &str, uid: &str, wrapped: &WrappedKey) -> Option<SecretBytes> {
        let mut entries = self.lock();
        let map = &mut entries.map;
        let key = (tenant.to_owned(), uid.to_owned());
        let entry = map.get(&key)?;
        if entry.nonce != wrapped.nonce()
            || entry.parent_version != wrapped.header_ref().parent_version
        {
            // The vault holds another wrapping of this key: the entry is stale.
            map.remove(&key);
            return None;
        }
        if entry.loaded.elapsed() >= self.ttl {
            map.remove(&key);
            return None;
        }
        Some(SecretBytes::from_slice(entry.key.expose()))
    }

    /// Remembers the plaintext `key` of `wrapped`.
    pub fn put(&self, tenant: &str, uid: &str, wrapped: &WrappedKey, key: &SecretBytes) {
        if !self.enabled() {
            return;
        }
        let mut entries = self.lock();
        if entries.map.len() >= self.capacity {
            let now = Instant::now();
            if entries.next_sweep.is_some_and(|at| now < at) {
                // Nothing can have expired since the last sweep.
                return;
            }
            let ttl = self.ttl;
            let mut oldest: Option<Instant> = None;
            entries.map.retain(|_, e| {
                let keep = now.saturating_duration_since(e.loaded) < ttl;
                if keep && oldest.is_none_or(|o| e.loaded < o) {
                    oldest = Some(e.loaded);
                }
                keep
            });
            // Later entries are younger, and purges only remove entries, so no entry expires before this.
            entries.next_sweep = oldest.map(|o| o + ttl);
            self.sweeps.fetch_add(1, Ordering::Relaxed);
            if entries.map.len() >= self.capacity {
                return;
            }
        }
        entries.map.insert(
            (tenant.to_owned(), uid.to_owned()),
            Entry {
                nonce: wrapped.nonce(),
                parent_version: wrapped.header_ref().parent_version,
                loaded: Instant::now(),
                key: SecretBytes::from_slice(key.expose()),
            },
        );
    }

    /// Forgets the key `uid` of `tenant` (it was destroyed, revoked or changed).
    pub fn purge(&self, tenant: &str, uid: &str) {
        if self.enabled() {
            self.lock().map.remove(&(tenant.to_owned(), uid.to_owned()));
        }
    }

    /// Forgets every key of `tenant` (its L1 was revoked or its system unlinked).
    pub fn purge_tenant(&self, tenant: &str) {
        if self.enabled() {
            self.lock().map.retain(|(t, _), _| t != tenant);
        }
    }

    /// Forgets every key (the Core was sealed: nothing may be served until it is unsealed).
    pub fn purge_all(&self) {
        if self.enabled() {
            self.lock().map.clear();
        }
    }

    /// Lookups answered from the cache and lookups that had to unwrap, since start.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Number of keys held (expired ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Scans of the full cache for expired keys, since start.
    pub fn sweeps(&self) -> u64 {
        self.sweeps.load(Ordering::Relaxed)
    }

    /// Whether the cache holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use openkcm_crypto::{EnvelopeHeader, Layer, SecretKey};

    fn wrapped(uid: &str, version: u32) -> WrappedKey {
        let kek = SecretKey::generate().unwrap();
        let header = EnvelopeHeader {
            layer: Layer::L4,
            tenant: "t1".into(),
            key_id: uid.into(),
            parent_id: "l3".into(),
            parent_version: version,
        };
        openkcm_crypto::wrap(&kek, &header, &SecretKey::generate().unwrap()).unwrap()
    }

    #[test]
    fn a_cached_key_is_served_until_it_expires_or_is_purged() {
        let cache = L4Cache::new(Duration::from_millis(200), 10);
        let w = wrapped("k1", 1);
        assert!(cache.get("t1", "k1", &w).is_none());
        cache.put("t1", "k1", &w, &SecretBytes::from_slice(&[7; 32]));
        assert_eq!(cache.get("t1", "k1", &w).unwrap().expose(), &[7; 32]);
        // Another tenant's key of the same identifier is another entry.
        assert!(cache.get("t2", "k1", &w).is_none());
        cache.purge("t1", "k1");
        assert!(cache.get("t1", "k1", &w).is_none());
        cache.put("t1", "k1", &w, &SecretBytes::from_slice(&[7; 32]));
        std::thread::sleep(Duration::from_millis(250));
        assert!(cache.get("t1", "k1", &w).is_none(), "expired");
        assert!(cache.is_empty());
        assert_eq!(cache.stats(), (1, 4));
    }

    #[test]
    fn another_wrapping_of_the_key_misses() {
        let cache = L4Cache::new(DEFAULT_TTL, 10);
        let w1 = wrapped("k1", 1);
        cache.put("t1", "k1", &w1, &SecretBytes::from_slice(&[7; 32]));
        // Re-wrapped (new nonce), or under another L3 version: the entry no longer applies.
        assert!(cache.get("t1", "k1", &wrapped("k1", 1)).is_none());
        cache.put("t1", "k1", &w1, &SecretBytes::from_slice(&[7; 32]));
        assert!(cache.get("t1", "k1", &wrapped("k1", 2)).is_none());
    }

    #[test]
    fn a_full_cache_drops_expired_keys_and_otherwise_stops_caching() {
        let cache = L4Cache::new(Duration::from_millis(100), 2);
        let (a, b, c) = (wrapped("a", 1), wrapped("b", 1), wrapped("c", 1));
        let k = SecretBytes::from_slice(&[1; 32]);
        cache.put("t1", "a", &a, &k);
        cache.put("t1", "b", &b, &k);
        cache.put("t1", "c", &c, &k);
        assert!(cache.get("t1", "c", &c).is_none());
        assert_eq!(cache.len(), 2);
        std::thread::sleep(Duration::from_millis(150));
        cache.put("t1", "c", &c, &k);
        assert!(cache.get("t1", "c", &c).is_some());
        assert_eq!(cache.len(), 1);
        cache.purge_tenant("t1");
        assert!(cache.is_empty());
        // Disabled: nothing is kept.
        let off = L4Cache::disabled();
        off.put("t1", "a", &a, &k);
        assert!(off.get("t1", "a", &a).is_none());
    }

    /// Creating keys into a full cache must not scan it for every key (a bench filling the default 100 000 keys
    /// fell from 11 000 to 150 Creates/s): one sweep, then none until the oldest entry can have expired.
    #[test]
    fn a_full_cache_is_not_scanned_for_every_new_key() {
        let cache = L4Cache::new(Duration::from_millis(300), 4);
        let k = SecretBytes::from_slice(&[1; 32]);
        let keys: Vec<WrappedKey> = (0..4).map(|i| wrapped(&format!("k{i}"), 1)).collect();
        for (i, w) in keys.iter().enumerate() {
            cache.put("t1", &format!("k{i}"), w, &k);
        }
        let extra = wrapped("x", 1);
        for i in 0..1000 {
            cache.put("t1", &format!("x{i}"), &extra, &k);
        }
        assert_eq!(
            cache.sweeps(),
            1,
            "a full cache was scanned for every new key"
        );
        assert_eq!(cache.len(), 4);
        // Once the oldest key can have expired, a sweep frees room again.
        std::thread::sleep(Duration::from_millis(350));
        cache.put("t1", "x0", &extra, &k);
        assert_eq!(cache.sweeps(), 2);
        assert!(cache.get("t1", "x0", &extra).is_some());
        assert_eq!(cache.len(), 1);
    }
}
