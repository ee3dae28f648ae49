//! Stored sessions known to this client, so that a resumption does not hash its session data
//! again.
//!
//! Why: before GnuTLS is given a stored session, the data tag of its seal (HMAC-SHA256 over the
//! whole session data, 2–3 KB with the peer's chain) is checked: 37 000–47 000 instructions per
//! resumed handshake, about as much as the rest of what this crate adds. A [`Client`] keeps,
//! per cache key, the store's bytes of the last session it stored (it sealed them) or opened
//! (their data tag was checked), and while the store still holds exactly those bytes it gives
//! GnuTLS the data inside them without hashing them again. Any other bytes (another process's
//! write, a forged or damaged entry) are opened as before, so what reaches GnuTLS is always
//! data whose seal was checked or made under the store's key. The entry's other fields are
//! checked against their own tag by the lifecycle for every entry it offers, kept or not.
//!
//! [`Client`]: crate::Client

use tlsresume_core::cache::kept::KeptPerKey;
use tlsresume_core::CacheKey;
use zeroize::Zeroizing;

/// How many sessions a client keeps (one per cache key, so per server it talks to); past it,
/// the older half is dropped (`KeptPerKey`). A session is a few kilobytes, so this bounds the
/// memory to under a megabyte.
pub(crate) const CAPACITY: usize = 256;

/// The store's bytes of one session (sealed session data, which holds the session's master
/// secret: wiped on drop) and where GnuTLS's data starts in them.
struct Known {
    stored: Zeroizing<Vec<u8>>,
    data_start: usize,
}

/// The sessions one client knows the seal of.
#[derive(Debug)]
pub(crate) struct KnownSessions(KeptPerKey<Known>);

impl Default for KnownSessions {
    fn default() -> Self {
        Self(KeptPerKey::new(CAPACITY))
    }
}

impl KnownSessions {
    /// Where GnuTLS's data starts in `stored`, the store's bytes under `key`, when they are
    /// exactly those kept under `key` (sealed or opened under the store's key when kept); else
    /// `None`, and the caller opens them.
    pub(crate) fn known(&self, key: &CacheKey, stored: &[u8]) -> Option<usize> {
        self.0.with(key, |known| {
            (known.stored.as_slice() == stored).then_some(known.data_start)
        })
    }

    /// Keeps `stored`, the store's bytes under `key` whose GnuTLS data starts at `data_start`.
    pub(crate) fn keep(&self, key: &CacheKey, stored: Vec<u8>, data_start: usize) {
        let stored = Zeroizing::new(stored);
        if data_start <= stored.len() {
            self.0.keep(key, Known { stored, data_start });
        }
    }

    /// Drops what is kept under `key` (GnuTLS refused its data).
    pub(crate) fn forget(&self, key: &CacheKey) {
        self.0.forget(key);
    }

    /// How many sessions are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> CacheKey {
        CacheKey::from_bytes([n; 32])
    }

    #[test]
    fn only_the_same_bytes_under_the_same_key_are_known() {
        let sessions = KnownSessions::default();
        sessions.keep(&key(1), b"TRS3....data".to_vec(), 8);
        assert_eq!(sessions.known(&key(1), b"TRS3....data"), Some(8));
        // Other bytes under the key (a new ticket, another writer's, a forged entry): opened.
        assert_eq!(sessions.known(&key(1), b"TRS3....dat4"), None);
        assert_eq!(sessions.known(&key(1), b"TRS3....data!"), None);
        // The same bytes under another key: opened (the data tag covers the cache key).
        assert_eq!(sessions.known(&key(2), b"TRS3....data"), None);
        // A newer session replaces the kept one; a refused one is forgotten.
        sessions.keep(&key(1), b"TRS3....newer".to_vec(), 8);
        assert_eq!(sessions.known(&key(1), b"TRS3....data"), None);
        assert_eq!(sessions.known(&key(1), b"TRS3....newer"), Some(8));
        sessions.forget(&key(1));
        assert_eq!(sessions.known(&key(1), b"TRS3....newer"), None);
        // A start past the end is never kept.
        sessions.keep(&key(3), b"short".to_vec(), 6);
        assert_eq!(sessions.known(&key(3), b"short"), None);
    }

    #[test]
    fn at_most_capacity_sessions_are_kept() {
        let sessions = KnownSessions::default();
        let key = |n: usize| {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&(n as u64).to_be_bytes());
            CacheKey::from_bytes(k)
        };
        for n in 0..CAPACITY {
            sessions.keep(&key(n), vec![1, 2, 3], 1);
        }
        assert_eq!(sessions.len(), CAPACITY);
        // One more: the older half goes, the newest is kept.
        sessions.keep(&key(CAPACITY), vec![1, 2, 3], 1);
        assert_eq!(sessions.len(), CAPACITY / 2 + 1);
        assert_eq!(sessions.known(&key(CAPACITY), &[1, 2, 3]), Some(1));
    }
}
