//! Entries a store cannot read: left in place, counted and reported once each.
//!
//! An entry one reader cannot decode may be good for another (a newer format written by a
//! newer build during a rolling upgrade, another fleet's entry): a reader never removes it.
//! It expires by its own time (Redis's TTL, the disk cache's expiry column and size bound),
//! and a writer storing under its key replaces it.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tlsresume_core::notice::{self, Notice};

/// How many unreadable entries a handle remembers having reported (the most recent): one met
/// again after that many others is reported and counted again.
const REMEMBERED: usize = 1024;

/// The unreadable entries a store handle has met.
#[derive(Debug, Default)]
pub(crate) struct Unreadable {
    count: AtomicU64,
    seen: Mutex<VecDeque<u64>>,
}

impl Unreadable {
    /// An entry of `store` (`entry`, with these `bytes`) did not decode (`why`): counted and
    /// reported ([`Notice::UnreadableEntryLeft`]) the first time this handle meets these
    /// bytes under this name; the caller leaves it where it is and answers "absent".
    pub(crate) fn met(&self, store: String, entry: String, bytes: &[u8], why: String) {
        let mut hasher = DefaultHasher::new();
        entry.hash(&mut hasher);
        bytes.hash(&mut hasher);
        let id = hasher.finish();
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.contains(&id) {
                return;
            }
            if seen.len() >= REMEMBERED {
                seen.pop_front();
            }
            seen.push_back(id);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        notice::emit(Notice::UnreadableEntryLeft { store, entry, why });
    }

    /// How many unreadable entries were met (each counted once while remembered).
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_entry_is_counted_once_until_it_changes() {
        let u = Unreadable::default();
        for _ in 0..3 {
            u.met("s".into(), "entry a".into(), b"x", "why".into());
        }
        assert_eq!(u.count(), 1);
        u.met("s".into(), "entry a".into(), b"y", "why".into());
        u.met("s".into(), "entry b".into(), b"y", "why".into());
        assert_eq!(u.count(), 3);
    }
}
