//! Ticket sealing for backends that take opaque tickets (rustls): AES-256-GCM under the key
//! ring's current key, with the issue time authenticated inside.
//!
//! A sealed ticket is `key name (16) ‖ nonce (12) ‖ AES-256-GCM(issue time (8) ‖ state) ‖ tag (16)`,
//! with the key name as additional authenticated data. Opening checks the key and the ticket's
//! age with the [`TicketLifecycle`], so every backend decides the same way.

use std::sync::Arc;

use ring::aead::{Aad, Nonce, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::keys::key_ring::{
    lend_encrypting_key, lend_key, Decision, RejectReason, TicketLifecycle,
};
use crate::keys::{KeyError, KeyName, TicketKey};

const NAME_LEN: usize = 16;
const TIME_LEN: usize = 8;
const TAG_LEN: usize = 16;
/// The bytes a sealed ticket adds to the session state it carries.
pub const SEAL_OVERHEAD: usize = NAME_LEN + NONCE_LEN + TIME_LEN + TAG_LEN;

/// Seals and opens tickets with keys from a [`TicketLifecycle`].
#[derive(Debug, Clone)]
pub struct TicketSealer {
    lifecycle: Arc<dyn TicketLifecycle>,
    rng: SystemRandom,
}

/// A ticket that opened and may be resumed.
#[derive(Debug)]
pub struct Opened {
    /// The session state sealed inside (secret: it holds the session's master secret), cleared
    /// from memory when dropped.
    pub state: Zeroizing<Vec<u8>>,
    /// When the ticket was issued.
    pub issued: UnixTime,
    /// [`Decision::Resume`] or [`Decision::ResumeAndRenew`].
    pub decision: Decision,
    /// The name of the key that sealed it.
    pub key_name: KeyName,
}

/// Why a ticket did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The bytes are not a ticket of ours: too short, tampered, or sealed under a key we never
    /// had.
    #[error("malformed or tampered ticket")]
    Malformed,
    /// A genuine ticket the lifecycle refuses.
    #[error("{0}")]
    Rejected(RejectReason),
}

impl TicketSealer {
    /// A sealer over `lifecycle`'s keys.
    pub fn new(lifecycle: Arc<dyn TicketLifecycle>) -> Self {
        Self {
            lifecycle,
            rng: SystemRandom::new(),
        }
    }

    /// The lifecycle whose keys and decisions this sealer uses.
    pub fn lifecycle(&self) -> &Arc<dyn TicketLifecycle> {
        &self.lifecycle
    }

    /// Seals `state` into a ticket issued at `now`.
    pub fn seal(&self, state: &[u8], now: UnixTime) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| KeyError::Source("the system random generator failed".into()))?;
        // The key is lent for the sealing (no reference of it taken per ticket).
        lend_encrypting_key(&*self.lifecycle, now, |key| {
            seal_under(key, nonce, state, now)
        })?
    }

    /// Opens a ticket presented at `now`. Any input is safe: garbage, truncation or tampering
    /// gives [`OpenError::Malformed`].
    pub fn open(&self, ticket: &[u8], now: UnixTime) -> Result<Opened, OpenError> {
        if ticket.len() < SEAL_OVERHEAD {
            return Err(OpenError::Malformed);
        }
        let (name, rest) = ticket.split_at(NAME_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let key_name = KeyName::from_slice(name).ok_or(OpenError::Malformed)?;
        // The key is lent for the opening (no reference of it taken per ticket).
        let (opened, renew) = lend_key(&*self.lifecycle, &key_name, now, |key, renew| {
            (open_under(key, nonce, sealed), renew)
        })
        .map_err(|reason| match reason {
            // An unknown name is indistinguishable from garbage.
            RejectReason::UnknownKey => OpenError::Malformed,
            other => OpenError::Rejected(other),
        })?;
        let (body, issued) = opened?;
        self.lifecycle
            .check_age(issued, now)
            .map_err(OpenError::Rejected)?;
        Ok(Opened {
            state: body,
            issued,
            decision: if renew {
                Decision::ResumeAndRenew
            } else {
                Decision::Resume
            },
            key_name,
        })
    }
}

/// `now ‖ state` sealed under `key` with `nonce`: the whole ticket.
fn seal_under(
    key: &TicketKey,
    nonce: [u8; NONCE_LEN],
    state: &[u8],
    now: UnixTime,
) -> Result<Vec<u8>, KeyError> {
    let aead_key = key
        .aead_key()
        .ok_or_else(|| KeyError::Source("bad ticket cipher key".into()))?;
    // Sealed in place, in the one buffer the ticket is returned in.
    let mut out = Vec::with_capacity(state.len() + SEAL_OVERHEAD);
    out.extend_from_slice(key.name().as_bytes());
    out.extend_from_slice(&nonce);
    let body_start = out.len();
    out.extend_from_slice(&now.as_micros().to_be_bytes());
    out.extend_from_slice(state);
    let tag = aead_key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(key.name().as_bytes()),
            out.get_mut(body_start..).unwrap_or_default(),
        )
        .map_err(|_| KeyError::Source("ticket sealing failed".into()))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// The state sealed under `key` (the issue time cut off) and its issue time.
fn open_under(
    key: &TicketKey,
    nonce: &[u8],
    sealed: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, UnixTime), OpenError> {
    let aead_key = key.aead_key().ok_or(OpenError::Malformed)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Malformed)?;
    // Decrypted in place: the buffer holds the session's secrets once opened, and becomes
    // the opened state (the issue time before it and the tag after it cut off, in place:
    // one allocation per ticket, cleared when dropped, spare capacity included).
    let mut body = Zeroizing::new(sealed.to_vec());
    let plain_len = aead_key
        .open_in_place(nonce, Aad::from(key.name().as_bytes()), &mut body)
        .map_err(|_| OpenError::Malformed)?
        .len();
    let time = body
        .get(..TIME_LEN)
        .and_then(|time| <[u8; TIME_LEN]>::try_from(time).ok())
        .ok_or(OpenError::Malformed)?;
    let issued = UnixTime::from_micros(u64::from_be_bytes(time));
    body.truncate(plain_len);
    body.drain(..TIME_LEN);
    Ok((body, issued))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::key_ring::KeyRing;
    use crate::keys::ProcessKeySource;
    use crate::model::ticket_policy::TicketPolicy;
    use proptest::prelude::*;
    use std::time::Duration;

    fn sealer() -> TicketSealer {
        TicketSealer::new(Arc::new(KeyRing::new(
            TicketPolicy::OPENSSL,
            Arc::new(ProcessKeySource::new()),
        )))
    }

    const T0: UnixTime = UnixTime::from_secs(1_700_000_000);

    #[test]
    fn seal_then_open_roundtrips_with_issue_time() {
        let s = sealer();
        let ticket = s.seal(b"session state", T0).expect("seal");
        assert_eq!(ticket.len(), 13 + SEAL_OVERHEAD);
        let opened = s
            .open(&ticket, T0 + Duration::from_secs(600))
            .expect("open");
        assert_eq!(opened.state.as_slice(), b"session state");
        assert_eq!(opened.issued, T0);
        assert_eq!(opened.decision, Decision::Resume);
        let renewed = s
            .open(&ticket, T0 + Duration::from_secs(3660))
            .expect("open");
        assert_eq!(renewed.decision, Decision::ResumeAndRenew);
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let s = sealer();
        let ticket = s.seal(&[0x5a; 64], T0).expect("seal");
        for i in 0..ticket.len() {
            for bit in 0..8 {
                let mut bad = ticket.clone();
                bad[i] ^= 1 << bit;
                assert_eq!(
                    s.open(&bad, T0).map(|o| o.state),
                    Err(OpenError::Malformed),
                    "byte {i} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn truncated_tickets_are_malformed() {
        let s = sealer();
        let ticket = s.seal(b"abc", T0).expect("seal");
        for len in 0..ticket.len() {
            assert!(matches!(
                s.open(&ticket[..len], T0),
                Err(OpenError::Malformed)
            ));
        }
    }

    #[test]
    fn expired_ticket_is_rejected_not_malformed() {
        let s = sealer();
        let ticket = s.seal(b"x", T0).expect("seal");
        // Keep the key alive by sealing at 61 min so the key is previous, not gone, at 1 h 59.
        let _ = s.seal(b"y", T0 + Duration::from_secs(3660));
        assert!(s.open(&ticket, T0 + Duration::from_secs(7199)).is_ok());
        assert!(matches!(
            s.open(&ticket, T0 + Duration::from_secs(7200)),
            Err(OpenError::Rejected(_))
        ));
    }

    #[test]
    fn another_servers_ticket_is_malformed() {
        let ours = sealer();
        let theirs = sealer();
        let ticket = theirs.seal(b"state", T0).expect("seal");
        let _ = ours.seal(b"state", T0);
        assert_eq!(
            ours.open(&ticket, T0).map(|o| o.state),
            Err(OpenError::Malformed)
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_open_or_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let s = sealer();
            let _ = s.seal(b"warm", T0);
            prop_assert!(s.open(&bytes, T0).is_err());
        }
    }
}
