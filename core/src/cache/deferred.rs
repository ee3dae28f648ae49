//! [`DeferredStore`]: one connection's view of a session store whose calls may block, so that
//! an async runtime never runs store I/O inside a TLS library's callbacks.

use std::sync::{Mutex, MutexGuard};

use crate::cache::store::{SessionStore, StoreError};
use crate::cache::{CacheEntry, CacheKey, CodecError};
use crate::keys::SessionKey;

/// A store call a [`DeferredStore`] collected, to be carried out on the real store.
#[derive(Clone, Debug)]
pub enum StoreOp {
    /// `put(key, entry)`.
    Put(CacheKey, CacheEntry),
    /// `remove(key)`.
    Remove(CacheKey),
}

impl StoreOp {
    /// Carries the call out on `store`.
    pub fn apply(self, store: &dyn SessionStore) -> Result<(), StoreError> {
        match self {
            Self::Put(key, entry) => store.put(&key, entry),
            Self::Remove(key) => store.remove(&key),
        }
    }
}

/// One connection's stand-in for a session store that blocks (a file, Redis): the lookup of
/// the connection's cache key is made beforehand ([`DeferredStore::prefetch`], on a thread
/// that may block), and the writes the TLS library's callbacks make during the handshake and
/// the reads after it are collected ([`DeferredStore::take_ops`]) and carried out afterwards,
/// in order, on such a thread.
///
/// The connection's decisions are the same as over the real store: `get` answers from the
/// prefetched entry, and then from the connection's own writes. A connection that is dropped
/// before its writes are carried out leaves the real store as it was before the connection:
/// never a torn entry.
#[derive(Debug)]
pub struct DeferredStore {
    key: CacheKey,
    /// The real store's key for sealed sessions.
    session_key: SessionKey,
    state: Mutex<State>,
    /// Held while writes are carried out, so two flushes of one connection keep their order.
    flushing: Mutex<()>,
}

#[derive(Debug)]
struct State {
    /// What `get(key)` answers now.
    current: Lookup,
    ops: Vec<StoreOp>,
}

/// A lookup's answer, kept so it can be given again (a `StoreError` is not `Clone`).
#[derive(Debug)]
enum Lookup {
    Found(CacheEntry),
    Missing,
    Corrupt(CodecError),
    Failed(String),
}

impl Lookup {
    fn from_result(result: Result<Option<CacheEntry>, StoreError>) -> Self {
        match result {
            Ok(Some(entry)) => Self::Found(entry),
            Ok(None) => Self::Missing,
            Err(StoreError::Corrupt(e)) => Self::Corrupt(e),
            Err(e) => Self::Failed(e.to_string()),
        }
    }

    fn answer(&self) -> Result<Option<CacheEntry>, StoreError> {
        match self {
            Self::Found(entry) => Ok(Some(entry.clone())),
            Self::Missing => Ok(None),
            Self::Corrupt(e) => Err(StoreError::Corrupt(e.clone())),
            Self::Failed(why) => Err(StoreError::Other(why.clone())),
        }
    }
}

impl DeferredStore {
    /// Looks `key` up in `store` (this may block) and wraps the answer.
    pub fn prefetch(store: &dyn SessionStore, key: CacheKey) -> Self {
        Self::with_lookup(key, store.get(&key)).with_session_key(store.session_key())
    }

    /// The same stand-in, answering `session_key` as the real store's key (made by
    /// [`with_lookup`](Self::with_lookup), it answers [`SessionKey::process`]).
    pub fn with_session_key(mut self, session_key: SessionKey) -> Self {
        self.session_key = session_key;
        self
    }

    /// A stand-in whose lookup of `key` answered `current`.
    pub fn with_lookup(key: CacheKey, current: Result<Option<CacheEntry>, StoreError>) -> Self {
        Self {
            key,
            session_key: SessionKey::process(),
            state: Mutex::new(State {
                current: Lookup::from_result(current),
                ops: Vec::new(),
            }),
            flushing: Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The writes collected so far, oldest first; they are no longer held here.
    pub fn take_ops(&self) -> Vec<StoreOp> {
        std::mem::take(&mut self.lock().ops)
    }

    /// Whether writes are waiting to be carried out.
    pub fn has_ops(&self) -> bool {
        !self.lock().ops.is_empty()
    }

    /// Carries the collected writes out on `store`, in order (this may block). The first
    /// failure is returned; the writes after it are still tried.
    pub fn flush_to(&self, store: &dyn SessionStore) -> Result<(), StoreError> {
        let _order = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
        let mut first = Ok(());
        for op in self.take_ops() {
            if let Err(e) = op.apply(store) {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }
}

impl SessionStore for DeferredStore {
    fn get(&self, key: &CacheKey) -> Result<Option<CacheEntry>, StoreError> {
        if *key != self.key {
            // A connection only ever looks up its own key.
            return Ok(None);
        }
        self.lock().current.answer()
    }

    fn put(&self, key: &CacheKey, entry: CacheEntry) -> Result<(), StoreError> {
        let mut state = self.lock();
        if *key == self.key {
            state.current = Lookup::Found(entry.clone());
        }
        state.ops.push(StoreOp::Put(*key, entry));
        Ok(())
    }

    fn remove(&self, key: &CacheKey) -> Result<(), StoreError> {
        let mut state = self.lock();
        if *key == self.key {
            state.current = Lookup::Missing;
        }
        state.ops.push(StoreOp::Remove(*key));
        Ok(())
    }

    fn blocks(&self) -> bool {
        false
    }

    fn session_key(&self) -> SessionKey {
        self.session_key.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::store::MemoryStore;
    use crate::clock::UnixTime;
    use crate::info::{OcspStatus, Verification};
    use crate::kind::BackendKind;
    use std::time::Duration;

    fn entry(byte: u8) -> CacheEntry {
        CacheEntry {
            stored_at: UnixTime::from_secs(1_700_000_000),
            lifetime_hint: Duration::from_secs(7200),
            verify_override: false,
            verification: Verification::Verified,
            ocsp: OcspStatus::NotRequested,
            dane: None,
            backend: BackendKind::Openssl,
            protocol: 0x0304,
            session: vec![byte],
        }
    }

    #[test]
    fn answers_from_the_lookup_then_its_own_writes_and_replays_them_in_order() {
        let real = MemoryStore::new(8);
        let key = CacheKey::builder("192.0.2.1:25".parse().expect("addr")).build();
        real.put(&key, entry(1)).expect("put");
        let deferred = DeferredStore::prefetch(&real, key);
        assert_eq!(
            deferred.get(&key).expect("get").map(|e| e.session),
            Some(vec![1])
        );
        deferred.remove(&key).expect("remove");
        assert!(deferred.get(&key).expect("get").is_none());
        deferred.put(&key, entry(2)).expect("put");
        deferred.put(&key, entry(3)).expect("put");
        // Nothing reached the real store yet.
        assert_eq!(
            real.get(&key).expect("get").map(|e| e.session),
            Some(vec![1])
        );
        assert!(deferred.has_ops());
        deferred.flush_to(&real).expect("flush");
        assert!(!deferred.has_ops());
        assert_eq!(
            real.get(&key).expect("get").map(|e| e.session),
            Some(vec![3])
        );
        // Dropped without a flush: the real store keeps what it had.
        let dropped = DeferredStore::prefetch(&real, key);
        dropped.remove(&key).expect("remove");
        drop(dropped);
        assert_eq!(
            real.get(&key).expect("get").map(|e| e.session),
            Some(vec![3])
        );
    }

    #[test]
    fn a_failed_or_corrupt_lookup_is_given_again() {
        let key = CacheKey::builder("192.0.2.1:25".parse().expect("addr")).build();
        let failed = DeferredStore::with_lookup(key, Err(StoreError::Other("down".into())));
        assert!(matches!(failed.get(&key), Err(StoreError::Other(_))));
        assert!(matches!(failed.get(&key), Err(StoreError::Other(_))));
        let other = CacheKey::builder("192.0.2.2:25".parse().expect("addr")).build();
        assert!(failed.get(&other).expect("other key").is_none());
    }
}
