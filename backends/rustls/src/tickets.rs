//! Ticket-key glue: a rustls `ProducesTickets` over the core key ring and sealer, recording the
//! resumption bits of the connection it serves.

use std::sync::{Arc, Mutex};

use rustls::server::ProducesTickets;
use tlsresume_core::{Decision, Resumption, SharedClock, TicketSealer};

/// What the ticketer saw on one connection.
#[derive(Debug, Default)]
pub(crate) struct TicketRecord {
    /// Server bits set by ticket calls (CLIENT_REQUESTED, CLIENT_SUGGESTED).
    pub(crate) bits: Resumption,
    /// The decision on the presented ticket, if one opened.
    pub(crate) decision: Option<Decision>,
}

/// The server's ticketer: the core sealer, recording each call in its connection's record.
///
/// rustls asks the configuration's ticketer, not the connection, for tickets, so each
/// connection runs under a configuration of its own (a clone of the server's, sharing
/// everything but this ticketer): the record travels with the connection, whichever thread or
/// task drives it.
#[derive(Debug)]
pub(crate) struct Ticketer {
    pub(crate) sealer: TicketSealer,
    pub(crate) clock: SharedClock,
    pub(crate) lifetime_secs: u32,
    pub(crate) record: Arc<Mutex<TicketRecord>>,
}

/// The TLS version inside rustls 0.23's encoded server session value: an SNI flag byte (and
/// the SNI, length-prefixed, when the flag is 1), then the version. `None` when the layout is
/// not recognised.
fn session_version(plain: &[u8]) -> Option<u16> {
    let at = match *plain.first()? {
        0 => 1,
        1 => 2 + usize::from(*plain.get(1)?),
        _ => return None,
    };
    let bytes = plain.get(at..at + 2)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

impl ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime_secs
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.encrypt_for(&mut self.lock(), plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.decrypt_for(&mut self.lock(), cipher)
    }
}

impl Ticketer {
    fn lock(&self) -> std::sync::MutexGuard<'_, TicketRecord> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn encrypt_for(&self, record: &mut TicketRecord, plain: &[u8]) -> Option<Vec<u8>> {
        // TLS 1.2: a resumption whose key is not yet due for renewal keeps its ticket, as
        // OpenSSL's ticket callback does without return value 2. rustls then sends an empty
        // NewSessionTicket, which clients read as "keep the ticket you have". TLS 1.3 issues a
        // ticket after every handshake, as every library does.
        if record.decision == Some(Decision::Resume) && session_version(plain) == Some(0x0303) {
            return None;
        }
        let ticket = self.sealer.seal(plain, self.clock.now()).ok()?;
        record.bits |= Resumption::CLIENT_REQUESTED;
        Some(ticket)
    }

    fn decrypt_for(&self, record: &mut TicketRecord, cipher: &[u8]) -> Option<Vec<u8>> {
        record.bits |= Resumption::CLIENT_SUGGESTED;
        match self.sealer.open(cipher, self.clock.now()) {
            Ok(mut opened) => {
                record.decision = Some(opened.decision);
                // Moved out, not copied: rustls takes ownership of the plaintext.
                Some(std::mem::take(&mut *opened.state))
            }
            // Refused or garbage: a full handshake follows.
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::session_version;

    #[test]
    fn reads_the_version_with_and_without_sni() {
        assert_eq!(session_version(&[0, 0x03, 0x03, 9]), Some(0x0303));
        assert_eq!(
            session_version(&[1, 2, b'a', b'b', 0x03, 0x04]),
            Some(0x0304)
        );
        assert_eq!(session_version(&[1, 200, 0]), None);
        assert_eq!(session_version(&[]), None);
        assert_eq!(session_version(&[7, 3, 3]), None);
    }
}
