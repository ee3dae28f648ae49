//! Stored sessions kept decoded, so that a resumption does not decode its session again.
//!
//! Why: the store holds each session as DER, and `d2i_SSL_SESSION` is the largest cost of a
//! resumed OpenSSL client handshake (about 1.5 M instructions: OpenSSL 3 decodes the peer
//! certificate and its key through the provider decoders, against 2.3 M for the rest of a
//! resumed TLS 1.3 handshake). A [`Client`](crate::Client) keeps, per cache key, the last
//! session it stored or decoded together with its DER, and hands that session out again while
//! the store still holds exactly those bytes. Any other bytes (a new ticket, another process's
//! write, damage) are decoded as before, so what is offered is always what the store holds.
//!
//! Connections never share the kept session: each gets a copy (`SSL_SESSION_dup`, which shares
//! the decoded peer certificates by reference and costs a few thousand instructions), because
//! libssl writes to a connection's session — it marks it not resumable when the connection is
//! freed without a shutdown (`ssl_clear_bad_session`) — and a shared one would carry that to
//! every later connection. The kept session itself is never handed to libssl.
//!
//! Only this backend keeps sessions decoded: the other two have no import step of this size
//! (a whole resumed rustls client handshake is about 0.17 M instructions; the GnuTLS client's
//! largest cost is verifying the stored chain again, `gnutls_certificate_verify_peers3`, which
//! keeping its session data would not skip). See `docs/performance.md`.

use openssl::error::ErrorStack;
use openssl::ssl::{SslSession, SslSessionRef};
use tlsresume_core::cache::kept::KeptPerKey;
use tlsresume_core::CacheKey;
use zeroize::Zeroizing;

use crate::ffi;

/// How many sessions a client keeps decoded (one per cache key, so per server it talks to);
/// past it, the older half is dropped (`KeptPerKey`). A session holds a few kilobytes (its DER,
/// the decoded peer certificate), so this bounds the memory to a few megabytes.
pub(crate) const CAPACITY: usize = 256;

/// A decoded session and the store's bytes it came from (sealed DER, which holds its master
/// secret: wiped on drop). The bytes themselves, not the seal's tags as the rustls client keeps:
/// a decoded session has no DER at hand to compare the rest of the store's bytes with (the
/// rustls client's data is its handle, which it can write again).
struct Decoded {
    stored: Zeroizing<Vec<u8>>,
    session: SslSession,
}

/// The decoded sessions of one client.
#[derive(Debug)]
pub(crate) struct DecodedSessions {
    slots: KeptPerKey<Decoded>,
    /// How many times DER was decoded.
    #[cfg(test)]
    decodes: std::sync::atomic::AtomicUsize,
}

impl Default for DecodedSessions {
    fn default() -> Self {
        Self {
            slots: KeptPerKey::new(CAPACITY),
            #[cfg(test)]
            decodes: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl DecodedSessions {
    /// A session for one connection whose store entry under `key` holds `stored`: a copy of the
    /// one kept when the bytes are the same (they were sealed or opened under the store's key
    /// when kept), else `None`, and the caller opens and [`decode`](Self::decode)s them.
    pub(crate) fn kept(&self, key: &CacheKey, stored: &[u8]) -> Option<SslSession> {
        // A copy libssl cannot make (out of memory) falls back to decoding.
        self.slots.with(key, |kept| {
            (kept.stored.as_slice() == stored)
                .then(|| ffi::session_dup(&kept.session).ok())
                .flatten()
        })
    }

    /// Decodes `der` (opened from the store's bytes `stored`) and keeps the session under `key`.
    pub(crate) fn decode(
        &self,
        key: &CacheKey,
        stored: &[u8],
        der: &[u8],
    ) -> Result<SslSession, ErrorStack> {
        #[cfg(test)]
        self.decodes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let session = ffi::session_from_der(der)?;
        self.keep(key, stored.to_vec(), &session);
        Ok(session)
    }

    /// Keeps a copy of `session`, stored under `key` as `stored`, as the one stored under `key`
    /// (nothing is kept if libssl cannot copy it: the next connection decodes).
    pub(crate) fn keep(&self, key: &CacheKey, stored: Vec<u8>, session: &SslSessionRef) {
        let Ok(copy) = ffi::session_dup(session) else {
            self.forget(key);
            return;
        };
        self.slots.keep(
            key,
            Decoded {
                stored: Zeroizing::new(stored),
                session: copy,
            },
        );
    }

    /// Drops what is kept under `key` (its entry was refused or removed).
    pub(crate) fn forget(&self, key: &CacheKey) {
        self.slots.forget(key);
    }

    /// How many sessions are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// How many times DER was decoded.
    #[cfg(test)]
    pub(crate) fn decodes(&self) -> usize {
        self.decodes.load(std::sync::atomic::Ordering::Relaxed)
    }
}
