//! The clear part of a TLS handshake as a client receives it: records reassembled into
//! handshake messages until the server's ChangeCipherSpec (everything after is encrypted), and
//! the two messages resumption needs read off them: the ServerHello's session ID and ticket
//! extension, and a TLS 1.2 NewSessionTicket (its lifetime hint and ticket). Backends whose
//! library keeps these private (rustls) or reports them only in a changed form (OpenSSL makes up
//! a session ID for a ticket) read them here, from the bytes as the server sent them.
//!
//! The reader keeps at most [`MAX_BUFFERED`] bytes and ignores what it cannot parse; it never
//! changes the bytes, which go on to the library untouched.

/// The most handshake bytes kept while reassembling.
pub const MAX_BUFFERED: usize = 64 * 1024;

const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake message type of a ServerHello.
pub const HANDSHAKE_SERVER_HELLO: u8 = 2;
/// Handshake message type of a NewSessionTicket.
pub const HANDSHAKE_NEW_SESSION_TICKET: u8 = 4;
const EXTENSION_SESSION_TICKET: u16 = 35;
const EXTENSION_PRE_SHARED_KEY: u16 = 41;
const EXTENSION_KEY_SHARE: u16 = 51;

/// Record and handshake-message reassembly for the server-to-client direction.
#[derive(Debug, Default)]
pub struct ClearHandshake {
    records: Vec<u8>,
    messages: Vec<u8>,
    done: bool,
}

impl ClearHandshake {
    /// Takes the next bytes the server sent and calls `on_message(type, body)` for each
    /// complete handshake message, until the server's ChangeCipherSpec.
    ///
    /// Whole records and messages are read where they are; only a record or message cut off at
    /// the end of `bytes` is kept for the next call (a server's flight read in one piece, the
    /// rule, is read without a copy or an allocation).
    pub fn feed(&mut self, bytes: &[u8], mut on_message: impl FnMut(u8, &[u8])) {
        if self.done {
            return;
        }
        if self.records.is_empty() {
            let used = self.read_records(bytes, &mut on_message);
            if !self.done {
                self.records.extend_from_slice(&bytes[used..]);
            }
        } else {
            let mut records = std::mem::take(&mut self.records);
            records.extend_from_slice(bytes);
            let used = self.read_records(&records, &mut on_message);
            if !self.done {
                records.drain(..used);
                self.records = records;
            }
        }
        if !self.done && self.records.len() + self.messages.len() > MAX_BUFFERED {
            self.stop();
        }
    }

    /// Reads the whole records at the start of `records`, up to the server's ChangeCipherSpec
    /// (which stops reading); the bytes they take.
    fn read_records(&mut self, records: &[u8], on_message: &mut impl FnMut(u8, &[u8])) -> usize {
        let mut at = 0;
        while let Some(header) = records.get(at..at + 5) {
            let kind = header[0];
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            let Some(body) = records.get(at + 5..at + 5 + len) else {
                break;
            };
            match kind {
                CONTENT_HANDSHAKE => self.handshake_bytes(body, on_message),
                CONTENT_CHANGE_CIPHER_SPEC => {
                    self.stop();
                    return at;
                }
                _ => {}
            }
            at += 5 + len;
        }
        at
    }

    /// The body of a handshake record: the messages it completes, and what it leaves of the
    /// next one kept.
    fn handshake_bytes(&mut self, body: &[u8], on_message: &mut impl FnMut(u8, &[u8])) {
        if self.messages.is_empty() {
            let used = read_messages(body, on_message);
            self.messages.extend_from_slice(&body[used..]);
        } else {
            self.messages.extend_from_slice(body);
            let used = read_messages(&self.messages, on_message);
            self.messages.drain(..used);
        }
    }

    /// Stops reading (nothing more comes in clear) and frees what was kept.
    pub fn stop(&mut self) {
        self.done = true;
        self.records = Vec::new();
        self.messages = Vec::new();
    }

    /// Whether reading has stopped.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// Calls `on_message` for each whole handshake message at the start of `messages`; the bytes
/// they take.
fn read_messages(messages: &[u8], on_message: &mut impl FnMut(u8, &[u8])) -> usize {
    let mut at = 0;
    while let Some(header) = messages.get(at..at + 4) {
        let kind = header[0];
        let len =
            usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
        let Some(body) = messages.get(at + 4..at + 4 + len) else {
            break;
        };
        on_message(kind, body);
        at += 4 + len;
    }
    at
}

/// A TLS 1.2 NewSessionTicket as the server sent it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tls12Ticket {
    /// `ticket_lifetime_hint`, seconds (0: unspecified).
    pub lifetime_hint: u32,
    /// The ticket; empty when the server keeps the client's ticket (RFC 5077 §3.3).
    pub ticket: Vec<u8>,
}

/// `struct { uint32 ticket_lifetime_hint; opaque ticket<0..2^16-1>; }` (RFC 5077 §3.3);
/// `None` unless the body is exactly that.
pub fn parse_tls12_ticket(body: &[u8]) -> Option<Tls12Ticket> {
    let (lifetime_hint, ticket) = read_tls12_ticket(body)?;
    Some(Tls12Ticket {
        lifetime_hint,
        ticket: ticket.to_vec(),
    })
}

/// What [`parse_tls12_ticket`] reads, without copying the ticket: the lifetime hint (seconds)
/// and the ticket where it lies in `body`.
pub fn read_tls12_ticket(body: &[u8]) -> Option<(u32, &[u8])> {
    let hint = body.get(..4)?;
    let len = usize::from(u16::from_be_bytes([*body.get(4)?, *body.get(5)?]));
    let ticket = body.get(6..6 + len)?;
    if body.len() != 6 + len {
        return None;
    }
    Some((
        u32::from_be_bytes([hint[0], hint[1], hint[2], hint[3]]),
        ticket,
    ))
}

/// What a ServerHello says of resumption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerHello {
    /// The length of `legacy_session_id` (TLS 1.2: 0 when the server keeps no session for
    /// an ID resumption; TLS 1.3: the echo of the client's).
    pub session_id_len: usize,
    /// Whether the session_ticket extension is present (TLS 1.2: a ticket follows).
    pub session_ticket: bool,
    /// TLS 1.3: whether the server accepted a PSK (pre_shared_key extension).
    pub pre_shared_key: bool,
    /// TLS 1.3: whether the server sent a key share (with a PSK: the psk_dhe_ke mode;
    /// without one: psk_ke, no forward secrecy for the resumed session).
    pub key_share: bool,
}

/// Reads a ServerHello body; `None` when it is too short to hold a session ID.
pub fn parse_server_hello(body: &[u8]) -> Option<ServerHello> {
    // legacy_version (2), random (32), legacy_session_id <0..32>.
    let session_id_len = usize::from(*body.get(34)?);
    // cipher_suite (2), legacy_compression_method (1), extensions <0..2^16-1>.
    let mut at = 35 + session_id_len + 3;
    let (mut session_ticket, mut pre_shared_key, mut key_share) = (false, false, false);
    if let Some(len) = body.get(at..at + 2) {
        let end = at + 2 + usize::from(u16::from_be_bytes([len[0], len[1]]));
        at += 2;
        while let Some(head) = body.get(at..at + 4) {
            if at + 4 > end {
                break;
            }
            match u16::from_be_bytes([head[0], head[1]]) {
                EXTENSION_SESSION_TICKET => session_ticket = true,
                EXTENSION_PRE_SHARED_KEY => pre_shared_key = true,
                EXTENSION_KEY_SHARE => key_share = true,
                _ => {}
            }
            at += 4 + usize::from(u16::from_be_bytes([head[2], head[3]]));
        }
    }
    Some(ServerHello {
        session_id_len,
        session_ticket,
        pre_shared_key,
        key_share,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_hello_session_id_and_ticket_extension() {
        let mut body = vec![3, 3];
        body.extend([7u8; 32]);
        body.push(32);
        body.extend([1u8; 32]);
        body.extend([0xc0, 0x2f, 0]);
        body.extend([0, 9, 0xff, 0x01, 0, 1, 0, 0, 35, 0, 0]);
        let hello = |id, ticket| {
            Some(ServerHello {
                session_id_len: id,
                session_ticket: ticket,
                pre_shared_key: false,
                key_share: false,
            })
        };
        assert_eq!(parse_server_hello(&body), hello(32, true));
        let mut short = vec![3, 3];
        short.extend([7u8; 32]);
        short.push(0);
        short.extend([0xc0, 0x2f, 0, 0, 5, 0xff, 0x01, 0, 1, 0]);
        assert_eq!(parse_server_hello(&short), hello(0, false));
        assert_eq!(parse_server_hello(&[3, 3]), None);
        // A resumed TLS 1.3 ServerHello: pre_shared_key (41) and key_share (51).
        let mut tls13 = vec![3, 3];
        tls13.extend([7u8; 32]);
        tls13.push(0);
        tls13.extend([0x13, 0x02, 0, 0, 10, 0, 41, 0, 2, 0, 0, 0, 51, 0, 0]);
        let parsed = parse_server_hello(&tls13).expect("parsed");
        assert!(parsed.pre_shared_key && parsed.key_share && !parsed.session_ticket);
    }

    #[test]
    fn a_message_split_anywhere_is_read_once() {
        let mut msg = vec![
            HANDSHAKE_NEW_SESSION_TICKET,
            0,
            0,
            10,
            0,
            0,
            0x1c,
            0x20,
            0,
            4,
        ];
        msg.extend([9, 8, 7, 6]);
        let mut record = vec![CONTENT_HANDSHAKE, 3, 3, 0, 14];
        record.extend(&msg);
        for cut in 0..record.len() {
            let mut seen = Vec::new();
            let mut clear = ClearHandshake::default();
            for part in [&record[..cut], &record[cut..]] {
                clear.feed(part, |kind, body| {
                    seen.push((kind, parse_tls12_ticket(body)))
                });
            }
            let ticket = Tls12Ticket {
                lifetime_hint: 7200,
                ticket: vec![9, 8, 7, 6],
            };
            assert_eq!(
                seen,
                [(HANDSHAKE_NEW_SESSION_TICKET, Some(ticket))],
                "{cut}"
            );
        }
    }

    /// A flight of records (a message spanning two records, two messages in one, an alert
    /// record between, then the ChangeCipherSpec and what follows it encrypted), fed in three
    /// pieces cut anywhere: the same messages as fed whole, and nothing after the
    /// ChangeCipherSpec.
    #[test]
    fn a_flight_cut_anywhere_gives_the_same_messages() {
        let message = |kind: u8, body: &[u8]| {
            let len = u32::try_from(body.len()).expect("len").to_be_bytes();
            let mut m = vec![kind, len[1], len[2], len[3]];
            m.extend_from_slice(body);
            m
        };
        let record = |kind: u8, body: &[u8]| {
            let len = u16::try_from(body.len()).expect("len").to_be_bytes();
            let mut r = vec![kind, 3, 3, len[0], len[1]];
            r.extend_from_slice(body);
            r
        };
        let hello = message(HANDSHAKE_SERVER_HELLO, &[5; 40]);
        let mut two = message(11, &[1, 2, 3]);
        two.extend(message(
            HANDSHAKE_NEW_SESSION_TICKET,
            &[0, 0, 0, 9, 0, 1, 7],
        ));
        let mut flight = record(CONTENT_HANDSHAKE, &hello[..10]);
        flight.extend(record(CONTENT_HANDSHAKE, &hello[10..]));
        flight.extend(record(21, &[1, 0]));
        flight.extend(record(CONTENT_HANDSHAKE, &two));
        flight.extend(record(CONTENT_CHANGE_CIPHER_SPEC, &[1]));
        flight.extend(record(CONTENT_HANDSHAKE, &message(20, &[0; 12])));
        let read = |parts: &[&[u8]]| {
            let mut seen = Vec::new();
            let mut clear = ClearHandshake::default();
            for part in parts {
                clear.feed(part, |kind, body| seen.push((kind, body.to_vec())));
            }
            (seen, clear.is_done())
        };
        let whole = read(&[&flight]);
        assert_eq!(
            whole.0.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            [HANDSHAKE_SERVER_HELLO, 11, HANDSHAKE_NEW_SESSION_TICKET]
        );
        assert!(whole.1, "stopped at the ChangeCipherSpec");
        for a in 0..=flight.len() {
            for b in a..=flight.len() {
                let parts = [&flight[..a], &flight[a..b], &flight[b..]];
                assert_eq!(read(&parts), whole, "cut at {a} and {b}");
            }
        }
    }
}
