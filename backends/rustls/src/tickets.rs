//! Ticket-key glue: a rustls `ProducesTickets` over the core key ring and sealer, recording the
//! resumption bits of the connection it serves.

use rustls::server::ProducesTickets;
use tlsresume_core::contract::ServerHandshake;
use tlsresume_core::keys::key_ring::Decision;
use tlsresume_core::keys::seal::{OpenError, TicketSealer};
use tlsresume_core::{RejectReason, SharedClock};

/// What the ticketer saw on one connection.
#[derive(Debug)]
pub(crate) struct TicketRecord {
    /// The connection's server lifecycle: a ticket sealed, presented, refused.
    pub(crate) handshake: ServerHandshake,
    /// The decision on the presented ticket, if one opened.
    pub(crate) decision: Option<Decision>,
    /// The certificate the resolver chose.
    pub(crate) served: Option<crate::identities::Served>,
    /// Whether the server staples an OCSP response (kept here rather than in the stream, which
    /// a client stream's size follows).
    pub(crate) stapling: bool,
    /// The tickets' lifetime, as reported.
    pub(crate) lifetime: std::time::Duration,
}

/// The server's ticketer: the core sealer, recording each call in its connection's record.
///
/// rustls asks the configuration's ticketer, not the connection, for tickets, and only from
/// inside a handshake step; every step of a server handshake runs with its connection's record
/// set on the thread running it ([`recording`](crate::client_auth::recording)), so one
/// ticketer in one configuration serves every connection, whichever thread or task drives it
/// (a configuration per connection would cost a copy of the server's and three allocations
/// per handshake). Outside a step (never, as rustls calls it) it seals and opens nothing.
#[derive(Debug)]
pub(crate) struct Ticketer {
    pub(crate) sealer: TicketSealer,
    pub(crate) clock: SharedClock,
    pub(crate) lifetime_secs: u32,
}

/// The start of rustls 0.23's encoded server session value, as rustls reads it back: an SNI
/// flag byte (the SNI follows, length-prefixed, when it is 1; any other value means none), the
/// TLS version, the cipher suite, then the master secret, length-prefixed.
#[derive(Debug, PartialEq, Eq)]
struct SessionPrefix {
    version: u16,
    /// The cipher suite, when the bytes reach that far.
    suite: Option<u16>,
    /// The master secret's length, when the bytes reach that far.
    master_secret_len: Option<usize>,
}

/// The server name an encoded server session value was issued under (rustls 0.23 writes it
/// first: a flag byte, 1 when the name follows, length-prefixed); `None` when there is none.
fn session_server_name(plain: &[u8]) -> Option<&str> {
    if *plain.first()? != 1 {
        return None;
    }
    let len = usize::from(*plain.get(1)?);
    std::str::from_utf8(plain.get(2..2 + len)?).ok()
}

/// `None` when the bytes end before the version.
fn session_prefix(plain: &[u8]) -> Option<SessionPrefix> {
    let at = match *plain.first()? {
        1 => 2 + usize::from(*plain.get(1)?),
        _ => 1,
    };
    let bytes = plain.get(at..at + 2)?;
    Some(SessionPrefix {
        version: u16::from_be_bytes([bytes[0], bytes[1]]),
        suite: plain
            .get(at + 2..at + 4)
            .map(|b| u16::from_be_bytes([b[0], b[1]])),
        master_secret_len: plain.get(at + 4).map(|len| usize::from(*len)),
    })
}

/// The TLS version inside an encoded server session value.
fn session_version(plain: &[u8]) -> Option<u16> {
    session_prefix(plain).map(|p| p.version)
}

/// Whether rustls 0.23 can resume from `plain`, a session state a ticketer decrypted, without
/// panicking: rustls copies a TLS 1.2 session's master secret into a 48-byte array and panics
/// on any other length (found by this project's `rustls_ticket` fuzz target). rustls never
/// seals such a state, so only a forger holding the ticket keys can present one. This
/// backend's ticketer refuses a state for which this is `false`, as a ticket that does not
/// open (a full handshake follows); a `rustls::server::ProducesTickets` of your own can do the
/// same. Anything else is left to rustls, which refuses what it cannot decode.
pub fn session_state_is_resumable(plain: &[u8]) -> bool {
    // rustls resumes TLS 1.2 from any state whose suite is a TLS 1.2 one, whatever version the
    // state names (the fuzzer found that too), so the suite decides; TLS 1.3 suites are 0x13xx.
    match session_prefix(plain) {
        Some(SessionPrefix {
            suite: Some(suite),
            master_secret_len,
            ..
        }) => suite >> 8 == 0x13 || master_secret_len == Some(48),
        // Too short to name a suite: rustls cannot decode it and refuses it.
        _ => false,
    }
}

impl ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime_secs
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        crate::client_auth::with_current(|record| self.encrypt_for(record, plain)).flatten()
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        crate::client_auth::with_current(|record| self.decrypt_for(record, cipher)).flatten()
    }
}

impl Ticketer {
    fn encrypt_for(&self, record: &mut TicketRecord, plain: &[u8]) -> Option<Vec<u8>> {
        // TLS 1.2: a resumption whose key is not yet due for renewal keeps its ticket, as
        // OpenSSL's ticket callback does without return value 2. rustls then sends an empty
        // NewSessionTicket, which clients read as "keep the ticket you have". TLS 1.3 issues a
        // ticket after every handshake, as every library does.
        if record.decision == Some(Decision::Resume) && session_version(plain) == Some(0x0303) {
            return None;
        }
        let ticket = self.sealer.seal(plain, self.clock.now()).ok()?;
        record.handshake.ticket_sealed();
        Some(ticket)
    }

    fn decrypt_for(&self, record: &mut TicketRecord, cipher: &[u8]) -> Option<Vec<u8>> {
        record.handshake.ticket_presented();
        match self.sealer.open(cipher, self.clock.now()) {
            Ok(opened) if !session_state_is_resumable(&opened.state) => None,
            // rustls would refuse it too (it compares the names itself), without saying why:
            // the refusal is decided and reported here, as on the other backends.
            Ok(opened)
                if !record
                    .handshake
                    .may_resume_under(session_server_name(&opened.state)) =>
            {
                None
            }
            Ok(mut opened) => {
                record.decision = Some(opened.decision);
                // Moved out, not copied: rustls takes ownership of the plaintext.
                Some(std::mem::take(&mut *opened.state))
            }
            // Refused (the reason is reported) or not ours: a full handshake follows. A
            // ticket that does not open is reported as an unknown key, as OpenSSL's key callback
            // does for a name it does not hold (an unknown name cannot be told from garbage).
            Err(OpenError::Rejected(reason)) => {
                record.handshake.ticket_refused(reason);
                None
            }
            Err(_) => {
                record.handshake.ticket_refused(RejectReason::UnknownKey);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{session_server_name, session_version};

    #[test]
    fn reads_the_server_name() {
        assert_eq!(session_server_name(&[1, 2, b'a', b'b', 3, 4]), Some("ab"));
        assert_eq!(session_server_name(&[0, 3, 4]), None);
        assert_eq!(session_server_name(&[1, 9, b'a']), None);
    }

    #[test]
    fn reads_the_version_with_and_without_sni() {
        assert_eq!(session_version(&[0, 0x03, 0x03, 9]), Some(0x0303));
        assert_eq!(
            session_version(&[1, 2, b'a', b'b', 0x03, 0x04]),
            Some(0x0304)
        );
        assert_eq!(session_version(&[1, 200, 0]), None);
        assert_eq!(session_version(&[]), None);
        // rustls reads any flag but 1 as "no SNI".
        assert_eq!(session_version(&[7, 3, 3]), Some(0x0303));
        assert_eq!(session_version(&[7, 3]), None);
    }

    #[test]
    fn a_tls12_state_resumes_only_with_a_48_byte_master_secret() {
        use super::session_state_is_resumable as resumable;
        let state = |sni: &[u8], version: [u8; 2], ms_len: u8| {
            let mut v = sni.to_vec();
            v.extend_from_slice(&version);
            v.extend_from_slice(&[0xc0, 0x2b, ms_len]);
            v.extend(std::iter::repeat_n(0xaa, usize::from(ms_len)));
            v
        };
        assert!(resumable(&state(&[0], [3, 3], 48)));
        assert!(resumable(&state(&[1, 2, b'm', b'x'], [3, 3], 48)));
        assert!(!resumable(&state(&[0], [3, 3], 6)));
        assert!(
            !resumable(&state(&[0x74], [3, 3], 6)),
            "any flag but 1 is no SNI"
        );
        assert!(!resumable(&state(&[1, 2, b'm', b'x'], [3, 3], 49)));
        // Cut before the master secret: rustls cannot decode it either, and refuses it.
        assert!(!resumable(&[0, 3, 3, 0xc0, 0x2b]));
        // A TLS 1.2 suite in a state naming another version: rustls resumes TLS 1.2 from it.
        assert!(!resumable(&state(&[5], [0x74, 0x30], 0)));
        // TLS 1.3 secrets have the suite's hash length: rustls takes any.
        let mut tls13 = vec![0, 3, 4, 0x13, 0x01, 32];
        tls13.extend([0xaa; 32]);
        assert!(resumable(&tls13));
        assert!(!resumable(&[]));
    }
}
