//! [`KeptPerKey`]: what a backend's client keeps per cache key beside the store, for the
//! stored session it wrote or opened last under that key (the OpenSSL client's decoded
//! session, the GnuTLS client's checked seal), so that a resumption from the same stored
//! bytes skips work it did already. Bounded: one value per cache key, at most a capacity.
//! Keyed by something other than a cache key where that is what names the work saved (the
//! session key's entry tags it made or checked).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

use super::CacheKey;

/// Values kept per cache key, at most `capacity` of them; past it, one is dropped for each new
/// key (any one: a value not kept costs the work it saves once). Shared by the connections of
/// one client. `K`: what names a value (a cache key unless said otherwise).
pub struct KeptPerKey<T, K = CacheKey> {
    slots: Mutex<HashMap<K, T>>,
    capacity: usize,
}

impl<T, K: Hash + Eq + Copy> fmt::Debug for KeptPerKey<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeptPerKey")
            .field("kept", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl<T, K: Hash + Eq + Copy> KeptPerKey<T, K> {
    /// Nothing kept yet; at most `capacity` values (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<K, T>> {
        // The map is consistent after any panic (every change is one insert or remove).
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `f` of the value kept under `key`, if any (called with the map locked: keep it short).
    pub fn with<R>(&self, key: &K, f: impl FnOnce(&T) -> Option<R>) -> Option<R> {
        self.slots().get(key).and_then(f)
    }

    /// Keeps `value` under `key`, replacing what was kept there.
    pub fn keep(&self, key: &K, value: T) {
        let mut slots = self.slots();
        if slots.len() >= self.capacity && !slots.contains_key(key) {
            if let Some(other) = slots.keys().next().copied() {
                slots.remove(&other);
            }
        }
        slots.insert(*key, value);
    }

    /// Drops what is kept under `key`.
    pub fn forget(&self, key: &K) {
        self.slots().remove(key);
    }

    /// How many values are kept.
    pub fn len(&self) -> usize {
        self.slots().len()
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
}
