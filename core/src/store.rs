//! Where client sessions are kept between connections: the [`SessionStore`] trait and the
//! bounded in-memory [`MemoryStore`].

use core::fmt;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::cache::{CacheEntry, CacheKey, CodecError};
use crate::clock::UnixTime;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A stored entry could not be decoded.
    #[error("corrupt session cache entry: {0}")]
    Corrupt(#[from] CodecError),
    /// The store's file or service failed.
    #[error("session store I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Anything else the store reports.
    #[error("session store: {0}")]
    Other(String),
}

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

/// A bounded in-memory [`SessionStore`] that evicts the least recently used entry when full.
///
/// ```
/// use std::time::Duration;
/// use tlsresume_core::*;
///
/// let store = MemoryStore::new(1000);
/// let key = CacheKey::builder("192.0.2.1:25".parse().unwrap()).build();
/// let t0 = UnixTime::from_secs(1_700_000_000);
/// store.put(&key, CacheEntry {
///     stored_at: t0,
///     lifetime_hint: Duration::from_secs(7200),
///     verify_override: false,
///     verification: Verification::Verified,
///     ocsp: OcspStatus::NotRequested,
///     backend: BackendKind::Rustls,
///     protocol: 0x0304,
///     session: vec![],
/// })?;
/// assert!(store.get_unexpired(&key, t0 + Duration::from_secs(60))?.is_some());
/// assert!(store.get_unexpired(&key, t0 + Duration::from_secs(7200))?.is_none());
/// assert_eq!(store.len(), 0);
/// # Ok::<(), StoreError>(())
/// ```
pub struct MemoryStore {
    capacity: usize,
    inner: Mutex<Lru>,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<CacheKey, (CacheEntry, u64)>,
    /// Use stamp → key; the first is the least recently used.
    order: BTreeMap<u64, CacheKey>,
    next_stamp: u64,
}

impl Lru {
    fn touch(&mut self, key: &CacheKey) {
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        if let Some((_, old)) = self.entries.get_mut(key) {
            self.order.remove(old);
            *old = stamp;
            self.order.insert(stamp, *key);
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
        let expired: Vec<(CacheKey, u64)> = lru
            .entries
            .iter()
            .filter(|(_, (e, _))| e.is_expired(now))
            .map(|(k, (_, stamp))| (*k, *stamp))
            .collect();
        for (key, stamp) in &expired {
            lru.entries.remove(key);
            lru.order.remove(stamp);
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
    fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError> {
        let mut lru = self.lock();
        lru.touch(key);
        Ok(lru.entries.get(key).map(|(e, _)| e.clone()))
    }

    fn put(&self, key: &CacheKey, entry: CacheEntry) -> Result<(), StoreError> {
        let mut lru = self.lock();
        let stamp = lru.next_stamp;
        lru.next_stamp += 1;
        if let Some((_, old)) = lru.entries.insert(*key, (entry, stamp)) {
            lru.order.remove(&old);
        }
        lru.order.insert(stamp, *key);
        while lru.entries.len() > self.capacity {
            match lru.order.pop_first() {
                Some((_, oldest)) => {
                    lru.entries.remove(&oldest);
                }
                None => break,
            }
        }
        Ok(())
    }

    fn remove(&self, key: &CacheKey) -> Result<(), StoreError> {
        let mut lru = self.lock();
        if let Some((_, stamp)) = lru.entries.remove(key) {
            lru.order.remove(&stamp);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendKind;
    use crate::info::{OcspStatus, Verification};
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
            backend: BackendKind::Openssl,
            protocol: 0x0303,
            session: vec![at as u8],
        }
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
