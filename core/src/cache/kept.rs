//! [`KeptPerKey`]: what a backend's client keeps per cache key beside the store, for the
//! stored session it wrote or opened last under that key (the OpenSSL client's decoded
//! session, the GnuTLS client's checked seal), so that a resumption from the same stored
//! bytes skips work it did already. Bounded: one value per cache key, at most a capacity, the
//! older half dropped at once when it is reached.
//! Keyed by something other than a cache key where that is what names the work saved (the
//! session key's entry tags it made or checked).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

use super::store::DigestHasher;
use super::CacheKey;

/// Values kept per cache key, at most `capacity` of them (rounded up to an even number). Shared
/// by the connections of one client. `K`: what names a value, a digest nobody chooses the bits
/// of (a cache key unless said otherwise; an HMAC tag), hashed by folding its bytes.
///
/// Two generations, each at most half the capacity: a value is kept in the newer one; when it
/// is full, the older generation is dropped and the newer becomes the older. A lookup finds a
/// value in either. Every `keep` is a constant amount of work: a value not kept costs the work
/// it saves once, and dropping "any one" value per new key from a full hash map meant scanning
/// the map for one and leaving its slot marked deleted, which later inserts paid for (a TLS 1.3
/// client keeps a new entry tag on every handshake).
pub struct KeptPerKey<T, K = CacheKey> {
    slots: Mutex<Generations<K, T>>,
    /// The most values one generation holds.
    generation: usize,
}

/// Hashed as digests ([`DigestHasher`]): what names a value is a cache key or an HMAC tag.
struct Generations<K, T> {
    newer: HashMap<K, T, DigestHasher>,
    older: HashMap<K, T, DigestHasher>,
}

impl<T, K: Hash + Eq + Copy> fmt::Debug for KeptPerKey<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeptPerKey")
            .field("kept", &self.len())
            .field("capacity", &(2 * self.generation))
            .finish()
    }
}

impl<T, K: Hash + Eq + Copy> KeptPerKey<T, K> {
    /// Nothing kept yet; at most `capacity` values (at least two).
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: Mutex::new(Generations {
                newer: HashMap::default(),
                older: HashMap::default(),
            }),
            generation: capacity.div_ceil(2).max(1),
        }
    }

    fn slots(&self) -> MutexGuard<'_, Generations<K, T>> {
        // The maps are consistent after any panic (every change is one insert, remove or swap).
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `f` of the value kept under `key`, if any (called with the map locked: keep it short).
    pub fn with<R>(&self, key: &K, f: impl FnOnce(&T) -> Option<R>) -> Option<R> {
        let slots = self.slots();
        slots
            .newer
            .get(key)
            .or_else(|| slots.older.get(key))
            .and_then(f)
    }

    /// Keeps `value` under `key`, replacing what was kept there.
    pub fn keep(&self, key: &K, value: T) {
        let mut slots = self.slots();
        let slots = &mut *slots;
        if slots.newer.len() >= self.generation && !slots.newer.contains_key(key) {
            // The older generation goes; its map is cleared and reused as the newer one.
            std::mem::swap(&mut slots.newer, &mut slots.older);
            slots.newer.clear();
        }
        slots.older.remove(key);
        slots.newer.insert(*key, value);
    }

    /// Drops what is kept under `key`.
    pub fn forget(&self, key: &K) {
        let mut slots = self.slots();
        slots.newer.remove(key);
        slots.older.remove(key);
    }

    /// How many values are kept.
    pub fn len(&self) -> usize {
        let slots = self.slots();
        slots.newer.len() + slots.older.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> CacheKey {
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&(n as u64).to_be_bytes());
        CacheKey::from_bytes(k)
    }

    #[test]
    fn one_value_per_key_at_most_capacity() {
        let kept = KeptPerKey::new(4);
        kept.keep(&key(1), "a");
        kept.keep(&key(1), "b");
        assert_eq!(kept.with(&key(1), |v| Some(*v)), Some("b"));
        assert_eq!(kept.with(&key(2), |v| Some(*v)), None);
        for n in 0..10 {
            kept.keep(&key(n), "c");
        }
        assert_eq!(kept.len(), 4);
        // The newest is always kept.
        assert_eq!(kept.with(&key(9), |v| Some(*v)), Some("c"));
        kept.forget(&key(9));
        assert_eq!(kept.len(), 3);
    }

    #[test]
    fn the_older_half_goes_at_once_and_a_value_kept_again_is_not_doubled() {
        let kept = KeptPerKey::new(6);
        for n in 0..6 {
            kept.keep(&key(n), n);
        }
        // 0..3 in the older generation, 3..6 in the newer: all found.
        assert_eq!(kept.len(), 6);
        assert!((0..6).all(|n| kept.with(&key(n), |v| Some(*v)) == Some(n)));
        // A key of the older generation kept again with the newer one full: the older
        // generation (0, 1, 2) goes, the key's new value starts the newer one.
        kept.keep(&key(1), 10);
        assert_eq!(kept.len(), 4);
        assert_eq!(kept.with(&key(0), |v| Some(*v)), None);
        assert_eq!(kept.with(&key(2), |v| Some(*v)), None);
        assert_eq!(kept.with(&key(1), |v| Some(*v)), Some(10));
        // A key of the older generation kept again with room in the newer one: moved, one
        // value for the key.
        kept.keep(&key(4), 40);
        assert_eq!(kept.len(), 4);
        assert_eq!(kept.with(&key(4), |v| Some(*v)), Some(40));
        assert!([3, 5]
            .iter()
            .all(|&n| kept.with(&key(n), |v| Some(*v)) == Some(n)));
        // Never more than the capacity, whatever is kept.
        for n in 0..1000 {
            kept.keep(&key(n % 17), n);
            assert!(kept.len() <= 6);
            assert_eq!(kept.with(&key(n % 17), |v| Some(*v)), Some(n));
        }
    }
}
