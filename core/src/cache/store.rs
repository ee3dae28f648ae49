//! Where client sessions are kept between connections: the [`SessionStore`] trait and the
//! bounded in-memory [`MemoryStore`].

use core::fmt;
use std::collections::HashMap;
use std::sync::Mutex;

use crate::cache::{CacheEntry, CacheKey};
use crate::clock::UnixTime;
pub use crate::error::StoreError;
use crate::keys::SessionKey;

/// A client session cache.
///
/// Implementations must be safe to share between connections on many threads. A store never
/// interprets the session bytes; expiry and backend matching are decided by the caller through
/// [`CacheEntry`]'s fields.
pub trait SessionStore: fmt::Debug + Send + Sync {
    /// The entry stored under `key`, expired or not.
    fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError>;

    /// Stores `entry` under `key`, replacing any older one.
    fn put(&self, key: &CacheKey, entry: CacheEntry) -> Result<(), StoreError>;

    /// Removes the entry under `key`, if any.
    fn remove(&self, key: &CacheKey) -> Result<(), StoreError>;

    /// Whether a call may block its thread on I/O (a file, a network round trip). The async
    /// layer never calls a blocking store on a runtime thread: it looks the session up and
    /// writes what the handshake stored on a blocking-task thread, around the handshake (see
    /// [`DeferredStore`](crate::cache::deferred::DeferredStore)). The default, `true`, is the safe answer for a
    /// store that does not say; [`MemoryStore`] answers `false`.
    fn blocks(&self) -> bool {
        true
    }

    /// The key that seals and opens the sessions in this store (see [`SessionKey`]). Every
    /// process sharing the store must answer the same key, or each skips the others' entries
    /// (never removing them). The default, [`SessionKey::process`], suits a store that lives in
    /// one process; the on-disk and Redis stores answer their own.
    fn session_key(&self) -> SessionKey {
        SessionKey::process()
    }

    /// The entry under `key` if it has not expired at `now`; an expired entry is removed and
    /// never returned.
    fn get_unexpired(
        &self,
        key: &CacheKey,
        now: UnixTime,
    ) -> Result<Option<CacheEntry>, StoreError> {
        match self.get(key)? {
            Some(entry) if entry.is_expired(now) => {
                self.remove(key)?;
                Ok(None)
            }
            other => Ok(other),
        }
    }
}

/// A bounded in-memory [`SessionStore`] that evicts a least recently used entry when full.
///
/// Eviction is approximately LRU, as Redis does it: when the store is full, a handful of
/// entries are sampled and the least recently used of them goes. A lookup then only stamps
/// the entry it finds (no ordered index to maintain), which keeps `get` cheap at 100 000
/// entries; the evicted entry is always among the oldest few percent.
///
/// ```
/// use std::time::Duration;
/// use tlsresume_core::*;
///
/// let store = MemoryStore::new(1000);
/// let key = CacheKey::builder("192.0.2.1:25".parse().unwrap()).build();
/// let t0 = UnixTime::from_secs(1_700_000_000);
/// store.put(&key, CacheEntry::new(
///     BackendKind::Rustls,
///     0x0304,
///     vec![],
///     t0,
///     Duration::from_secs(7200),
/// ))?;
/// assert!(store.get_unexpired(&key, t0 + Duration::from_secs(60))?.is_some());
/// assert!(store.get_unexpired(&key, t0 + Duration::from_secs(7200))?.is_none());
/// assert_eq!(store.len(), 0);
/// # Ok::<(), StoreError>(())
/// ```
pub struct MemoryStore {
    capacity: usize,
    inner: Mutex<Lru>,
}

/// How many entries eviction samples.
const EVICTION_SAMPLES: usize = 8;

struct Slot {
    entry: CacheEntry,
    stamp: u64,
    /// Position in `Lru::keys`.
    index: usize,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<CacheKey, Slot, DigestHasher>,
    /// Every key, for sampling.
    keys: Vec<CacheKey>,
    next_stamp: u64,
    rng: u64,
}

impl Lru {
    fn stamp(&mut self) -> u64 {
        self.next_stamp += 1;
        self.next_stamp
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: sampling needs spread, not secrecy.
        if self.rng == 0 {
            self.rng = 0x9E37_79B9_7F4A_7C15;
        }
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn remove(&mut self, key: &CacheKey) -> Option<Slot> {
        let slot = self.entries.remove(key)?;
        self.keys.swap_remove(slot.index);
        if let Some(moved) = self.keys.get(slot.index).copied() {
            if let Some(m) = self.entries.get_mut(&moved) {
                m.index = slot.index;
            }
        }
        Some(slot)
    }

    fn evict_one(&mut self) {
        let len = self.keys.len();
        if len == 0 {
            return;
        }
        let mut victim: Option<(u64, CacheKey)> = None;
        // Small stores are scanned whole (exact LRU); larger ones sampled.
        let mut picks = [0usize; EVICTION_SAMPLES];
        let count = len.min(EVICTION_SAMPLES);
        for (n, pick) in picks.iter_mut().enumerate().take(count) {
            *pick = if len <= EVICTION_SAMPLES {
                n
            } else {
                usize::try_from(self.random() % len as u64).unwrap_or(0)
            };
        }
        for &i in &picks[..count] {
            let key = self.keys[i];
            if let Some(slot) = self.entries.get(&key) {
                if victim.is_none_or(|(stamp, _)| slot.stamp < stamp) {
                    victim = Some((slot.stamp, key));
                }
            }
        }
        if let Some((_, key)) = victim {
            self.remove(&key);
        }
    }
}

/// Hashes a [`CacheKey`] (or another digest: an HMAC tag) by folding its bytes eight at a
/// time: keys that are SHA-256 digests already need no further mixing, and nobody chooses
/// their bits (SipHash, std's default, costs several times more per lookup).
#[derive(Clone, Copy, Default)]
pub(crate) struct DigestHasher;

impl std::hash::BuildHasher for DigestHasher {
    type Hasher = DigestHash;

    fn build_hasher(&self) -> DigestHash {
        DigestHash(0)
    }
}

pub(crate) struct DigestHash(u64);

impl std::hash::Hasher for DigestHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

impl MemoryStore {
    /// A store holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Lru::default()),
        }
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries held at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Removes every entry expired at `now`; returns how many.
    pub fn purge(&self, now: UnixTime) -> usize {
        let mut lru = self.lock();
        let expired: Vec<CacheKey> = lru
            .entries
            .iter()
            .filter(|(_, slot)| slot.entry.is_expired(now))
            .map(|(k, _)| *k)
            .collect();
        for key in &expired {
            lru.remove(key);
        }
        expired.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        // The map is consistent after every statement that can panic, so a poisoned lock
        // still guards a usable map.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for MemoryStore {
    /// A store of 10 000 entries.
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl SessionStore for MemoryStore {
    fn blocks(&self) -> bool {
        false
    }

    fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError> {
        let mut lru = self.lock();
        let stamp = lru.stamp();
        Ok(lru.entries.get_mut(key).map(|slot| {
            slot.stamp = stamp;
            slot.entry.clone()
        }))
    }

    fn put(&self, key: &CacheKey, entry: CacheEntry) -> Result<(), StoreError> {
        let mut lru = self.lock();
        let stamp = lru.stamp();
        if let Some(slot) = lru.entries.get_mut(key) {
            slot.entry = entry;
            slot.stamp = stamp;
            return Ok(());
        }
        while lru.entries.len() >= self.capacity {
            lru.evict_one();
        }
        let index = lru.keys.len();
        lru.keys.push(*key);
        lru.entries.insert(
            *key,
            Slot {
                entry,
                stamp,
                index,
            },
        );
        Ok(())
    }

    fn remove(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.lock().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::info::{OcspStatus, Verification};
    use crate::kind::BackendKind;
    use std::time::Duration;

    fn key(n: u16) -> CacheKey {
        CacheKey::builder(std::net::SocketAddr::from(([192, 0, 2, 1], n))).build()
    }

    fn entry(at: u64) -> CacheEntry {
        CacheEntry {
            stored_at: UnixTime::from_secs(at),
            lifetime_hint: Duration::from_secs(100),
            verify_override: false,
            verification: Verification::Verified,
            ocsp: OcspStatus::NotRequested,
            dane: None,
            backend: BackendKind::Openssl,
            protocol: 0x0303,
            session: vec![at as u8],
        }
    }

    #[test]
    fn evicts_the_least_recently_used_of_the_sample() {
        // With fewer entries than samples, the sample (with replacement) usually covers all;
        // check the bound and that recently used entries survive far more often.
        let store = MemoryStore::new(100);
        for i in 0..100 {
            store.put(&key(i), entry(u64::from(i))).expect("put");
        }
        // Touch the upper half.
        for i in 50..100 {
            assert!(store.get(&key(i)).expect("get").is_some());
        }
        for i in 100..150 {
            store.put(&key(i), entry(u64::from(i))).expect("put");
        }
        assert_eq!(store.len(), 100);
        let touched_kept = (50..100)
            .filter(|i| store.get(&key(*i)).ok().flatten().is_some())
            .count();
        let untouched_kept = (0..50)
            .filter(|i| store.get(&key(*i)).ok().flatten().is_some())
            .count();
        assert!(
            touched_kept > untouched_kept,
            "{touched_kept} vs {untouched_kept}"
        );
    }

    #[test]
    fn evicts_least_recently_used() {
        let store = MemoryStore::new(2);
        store.put(&key(1), entry(1)).expect("put");
        store.put(&key(2), entry(2)).expect("put");
        // Use 1, so 2 is the least recently used.
        assert!(store.get(&key(1)).expect("get").is_some());
        store.put(&key(3), entry(3)).expect("put");
        assert_eq!(store.len(), 2);
        assert!(store.get(&key(2)).expect("get").is_none());
        assert!(store.get(&key(1)).expect("get").is_some());
        assert!(store.get(&key(3)).expect("get").is_some());
    }

    #[test]
    fn put_replaces_and_remove_removes() {
        let store = MemoryStore::new(10);
        store.put(&key(1), entry(1)).expect("put");
        store.put(&key(1), entry(5)).expect("put");
        assert_eq!(store.len(), 1);
        assert_eq!(
            store.get(&key(1)).expect("get").map(|e| e.session),
            Some(vec![5])
        );
        store.remove(&key(1)).expect("remove");
        assert!(store.is_empty());
        store.remove(&key(1)).expect("removing nothing is fine");
    }

    #[test]
    fn never_returns_expired_entries_when_filtering_and_purges() {
        let store = MemoryStore::new(10);
        store.put(&key(1), entry(0)).expect("put");
        store.put(&key(2), entry(50)).expect("put");
        assert!(store
            .get_unexpired(&key(1), UnixTime::from_secs(100))
            .expect("get")
            .is_none());
        assert_eq!(store.len(), 1);
        assert!(store
            .get_unexpired(&key(2), UnixTime::from_secs(100))
            .expect("get")
            .is_some());
        assert_eq!(store.purge(UnixTime::from_secs(150)), 1);
        assert!(store.is_empty());
    }
}
