//! Fixtures shared by the fuzz targets and the seed generator (`examples/seeds.rs`).
//!
//! Every target rebuilds nothing per input that the real code builds once per process: the
//! ticket key ring, the SQLite file, the rustls server configuration are made once and kept in
//! a `OnceLock`. The ticket keys are fixed (a known master secret, a fixed clock reading), so
//! the seeds the generator seals open in the targets.

#![deny(missing_docs)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tlsresume_core::{KeyError, KeySource, TicketPolicy, UnixTime};
use tlsresume_core::keys::{KeyMaterial, MasterSecret};
use tlsresume_core::keys::key_ring::{KeyRing};
use tlsresume_core::keys::seal::{TicketSealer};

pub mod disk;
pub mod ffi;
pub mod hello;

/// The clock reading every target runs at (2023-11-14): fixed, so seeds stay valid.
pub const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

/// The seconds a target's input may move the clock by (about 2 days): past the periodic key
/// ring's previous period, so every age and key decision is reachable.
pub const MAX_SKEW_SECS: u64 = 2 * 24 * 3600;

/// A key source with one known master secret: the periodic schedule derives the same keys in
/// every process, so a ticket sealed by the seed generator opens in the fuzz target.
#[derive(Debug)]
struct FixedSource;

impl KeySource for FixedSource {
    fn new_key(&self, _created: UnixTime) -> Result<KeyMaterial, KeyError> {
        Err(KeyError::Source(
            "the fuzz key source is periodic only".into(),
        ))
    }

    fn master_secret(&self) -> Result<MasterSecret, KeyError> {
        Ok(MasterSecret::new([0x5a; 64]))
    }
}

/// The session key the GnuTLS targets and the seeds use (a fixed one, so seeds open).
pub fn session_key() -> tlsresume_core::SessionKey {
    tlsresume_core::SessionKey::from_bytes([0x5e; 32])
}

/// The sealer every ticket target uses: the GnuTLS-flavoured periodic key ring (6 h tickets,
/// keys for the current and the previous 18 h period) over [`FixedSource`].
pub fn sealer() -> &'static TicketSealer {
    static SEALER: OnceLock<TicketSealer> = OnceLock::new();
    SEALER.get_or_init(|| {
        TicketSealer::new(Arc::new(KeyRing::new(
            TicketPolicy::GNUTLS,
            Arc::new(FixedSource),
        )))
    })
}

/// Splits a leading clock offset off a fuzz input: the first 4 bytes (big endian) modulo
/// [`MAX_SKEW_SECS`], added to [`NOW`]. Inputs shorter than 4 bytes run at [`NOW`].
pub fn take_time(data: &[u8]) -> (UnixTime, &[u8]) {
    match data.split_first_chunk::<4>() {
        Some((head, rest)) => {
            let skew = u64::from(u32::from_be_bytes(*head)) % MAX_SKEW_SECS;
            (NOW + Duration::from_secs(skew), rest)
        }
        None => (NOW, data),
    }
}

/// Replaces the last 8 bytes of a would-be cache entry with the checksum the codec expects
/// (the first 8 bytes of SHA-256 over the rest), so a fuzzer gets past the checksum to the
/// fields. Shorter inputs are left alone.
pub fn fix_checksum(bytes: &mut [u8]) {
    if bytes.len() < 8 {
        return;
    }
    let (body, check) = bytes.split_at_mut(bytes.len() - 8);
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    check.copy_from_slice(&digest.as_ref()[..8]);
}

/// The SMTP reply reader under test (`tlsresume-smtp`'s, the workspace's one reply parser),
/// named here only: the targets call it through this function.
pub fn read_smtp_reply(
    input: &mut &[u8],
) -> Result<tlsresume_smtp::Reply, tlsresume_smtp::ReplyError> {
    tlsresume_smtp::read_reply_unbuffered(input)
}
