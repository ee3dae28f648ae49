//! Ticket-key glue: GnuTLS derives its own ticket keys from the master secret, so all the
//! server hands it is [`KeySource::master_secret`](tlsresume_core::KeySource::master_secret) and
//! the ticket lifetime.
//!
//! # What GnuTLS 3.7.9 does with them (measured, see `tests/rotation.rs`)
//!
//! `gnutls_db_set_cache_expiration(session, L)` sets the ticket lifetime to `L` and the key
//! rotation period to `3 × L` (6 h for Exim's 2 h). The key of period `floor(now / 3L)` is
//! derived from the master secret and the period number, so servers sharing the master secret
//! derive the same keys. The measured acceptance rules are in the crate's README and
//! [`crate`] docs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tlsresume_core::identities::normalise;
use tlsresume_core::keys::{master_for_server_name, MasterSecret, STAND_IN_RETRY_ON_ERROR};
use tlsresume_core::{Error, KeyError, ServerSettings, UnixTime};
use zeroize::Zeroizing;

/// How many server names' bound masters a server keeps (names come from clients: past this
/// the kept ones are dropped and derived again as clients ask).
const BOUND_NAMES: usize = 64;

/// The master ticket key for `gnutls_session_ticket_enable_server` (64 bytes), as the server
/// holds it: fetched from the key source when the server is made and, when the source said it
/// was a stand-in ([`KeySource::master_retry_after`](tlsresume_core::KeySource::master_retry_after):
/// a fleet node cut off from its shared store), fetched again once the delay has passed on the
/// server's clock, so the node takes the fleet's master once the store answers. The same rule
/// as a periodic [`KeyRing`](tlsresume_core::keys::key_ring::KeyRing)'s, which GnuTLS's own key derivation
/// stands in for here.
///
/// GnuTLS takes one master key per session: tickets sealed under a stand-in do not open once
/// the fleet's master has replaced it (those clients make a full handshake, once).
pub(crate) struct MasterKey {
    held: RwLock<Held>,
    /// `held`'s retry time in microseconds (`u64::MAX` for none), set with it: [`due`](Self::due)
    /// is asked before every handshake and reads this rather than take the lock, whose count
    /// every thread would write.
    quiet_until: AtomicU64,
}

struct Held {
    secret: Arc<BoundMasters>,
    retry_at: Option<UnixTime>,
}

/// One master secret and the masters derived from it for the server names clients sent
/// ([`master_for_server_name`]), derived once per name rather than on every handshake. Each
/// session keeps the one it started with, so a refresh of the master in the middle of its
/// handshake does not mix two masters.
pub(crate) struct BoundMasters {
    secret: MasterSecret,
    /// Normalised name, bound master; at most [`BOUND_NAMES`], searched in order (a server
    /// sees a few names).
    by_name: RwLock<Vec<(String, Zeroizing<[u8; 64]>)>>,
}

impl BoundMasters {
    fn new(secret: MasterSecret) -> Self {
        Self {
            secret,
            by_name: RwLock::new(Vec::new()),
        }
    }

    /// The 64 bytes of the master itself (for a client that sent no name).
    pub(crate) fn bytes(&self) -> &[u8; 64] {
        self.secret.as_bytes()
    }

    /// Runs `f` with the master bound to `name` (as compared: [`normalise`]d).
    pub(crate) fn with_bound<R>(&self, name: &str, f: impl FnOnce(&[u8; 64]) -> R) -> R {
        let name = normalise(name);
        {
            let by_name = self.by_name.read().unwrap_or_else(|p| p.into_inner());
            if let Some((_, bound)) = by_name.iter().find(|(n, _)| *n == name) {
                return f(bound);
            }
        }
        let derived = master_for_server_name(self.secret.as_bytes(), Some(&name));
        let mut bound = Zeroizing::new([0u8; 64]);
        for (to, from) in bound.iter_mut().zip(derived.iter()) {
            *to = *from;
        }
        let out = f(&bound);
        let mut by_name = self.by_name.write().unwrap_or_else(|p| p.into_inner());
        if !by_name.iter().any(|(n, _)| *n == name) {
            if by_name.len() >= BOUND_NAMES {
                by_name.clear();
            }
            by_name.push((name.into_owned(), bound));
        }
        out
    }
}

impl Held {
    /// Asks the key source (this may block), noting when to ask again if it gave a stand-in.
    fn ask(settings: &ServerSettings, now: UnixTime) -> Result<Self, KeyError> {
        let secret = settings.key_source.master_secret()?;
        let retry_at = settings
            .key_source
            .master_retry_after(&secret)
            .map(|d| now + d);
        Ok(Self {
            secret: Arc::new(BoundMasters::new(secret)),
            retry_at,
        })
    }
}

impl MasterKey {
    /// Fetches the master secret (this may block on a shared key source).
    pub(crate) fn fetch(settings: &ServerSettings) -> Result<Self, Error> {
        let held = Held::ask(settings, settings.clock.now())?;
        Ok(Self {
            quiet_until: AtomicU64::new(quiet_until(&held)),
            held: RwLock::new(held),
        })
    }

    /// Whether the held secret is a stand-in to be asked about again at `now`. Before the
    /// retry time (always, for a final secret) without the lock.
    pub(crate) fn due(&self, now: UnixTime) -> bool {
        if now.as_micros() < self.quiet_until.load(Ordering::Acquire) {
            return false;
        }
        self.read().retry_at.is_some_and(|retry| now >= retry)
    }

    /// Asks the key source again if [`due`](Self::due) (this may block). One caller asks;
    /// handshakes meanwhile go on with the held secret. A source that fails leaves the held
    /// secret in place, asked about again later.
    pub(crate) fn refresh(&self, settings: &ServerSettings, now: UnixTime) {
        {
            let mut held = self.write();
            if held.retry_at.is_none_or(|retry| now < retry) {
                return;
            }
            // Claimed: no other caller asks until this answer (or the fallback delay).
            held.retry_at = Some(now + STAND_IN_RETRY_ON_ERROR);
            self.quiet_until
                .store(quiet_until(&held), Ordering::Release);
        }
        if let Ok(fresh) = Held::ask(settings, now) {
            let mut held = self.write();
            *held = fresh;
            self.quiet_until
                .store(quiet_until(&held), Ordering::Release);
        }
    }

    /// The master secret held now, with its name-bound masters (for one session's
    /// `gnutls_session_ticket_enable_server`, which copies the bytes).
    pub(crate) fn current(&self) -> Arc<BoundMasters> {
        Arc::clone(&self.read().secret)
    }

    fn read(&self) -> RwLockReadGuard<'_, Held> {
        self.held.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Held> {
        self.held.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Until when (microseconds, excluded) `held` is not due: its retry time, or the end of time
/// for a final secret (a check at that very time asks under the lock).
fn quiet_until(held: &Held) -> u64 {
    held.retry_at.map_or(u64::MAX, UnixTime::as_micros)
}

/// The value for `gnutls_db_set_cache_expiration`: the policy's ticket lifetime in seconds
/// (GnuTLS's rotation period is always three times this; the policy's own rotation setting
/// cannot be expressed to GnuTLS).
pub(crate) fn expiration_secs(settings: &ServerSettings) -> u32 {
    lifetime_secs(settings.ticket_policy_for(crate::BACKEND).lifetime())
}

fn lifetime_secs(lifetime: Duration) -> u32 {
    u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_master_is_derived_once_per_name_and_kept_apart_per_name() {
        let masters = BoundMasters::new(MasterSecret::new([7; 64]));
        let a = masters.with_bound("A.Example.", |b| b.to_vec());
        assert_eq!(
            a,
            *master_for_server_name(&[7; 64], Some("a.example")),
            "the cached master is the derived one"
        );
        assert_eq!(masters.with_bound("a.example", |b| b.to_vec()), a);
        assert_ne!(masters.with_bound("b.example", |b| b.to_vec()), a);
        assert_eq!(masters.by_name.read().expect("lock").len(), 2);
        for i in 0..BOUND_NAMES {
            masters.with_bound(&format!("n{i}.example"), |_| ());
        }
        assert!(masters.by_name.read().expect("lock").len() <= BOUND_NAMES);
        assert_eq!(masters.with_bound("a.example", |b| b.to_vec()), a);
    }

    #[test]
    fn exim_lifetime_is_two_hours() {
        assert_eq!(
            lifetime_secs(tlsresume_core::TicketPolicy::GNUTLS.lifetime()),
            7200
        );
        assert_eq!(lifetime_secs(Duration::from_millis(10)), 1);
    }
}
