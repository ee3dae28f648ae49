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
    pub fn feed(&mut self, bytes: &[u8], mut on_message: impl FnMut(u8, &[u8])) {
        if self.done {
            return;
        }
        self.records.extend_from_slice(bytes);
        while let Some(header) = self.records.get(..5) {
            let kind = header[0];
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            let Some(body) = self.records.get(5..5 + len) else {
                break;
            };
            match kind {
                CONTENT_HANDSHAKE => {
                    self.messages.extend_from_slice(body);
                    self.messages_ready(&mut on_message);
                }
                CONTENT_CHANGE_CIPHER_SPEC => {
                    self.stop();
                    return;
                }
                _ => {}
            }
            self.records.drain(..5 + len);
        }
        if self.records.len() + self.messages.len() > MAX_BUFFERED {
            self.stop();
        }
    }

    fn messages_ready(&mut self, on_message: &mut impl FnMut(u8, &[u8])) {
        while let Some(header) = self.messages.get(..4) {
            let kind = header[0];
            let len =
                usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
            let Some(body) = self.messages.get(4..4 + len) else {
                return;
            };
            on_message(kind, body);
            self.messages.drain(..4 + len);
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
    let hint = body.get(..4)?;
    let len = usize::from(u16::from_be_bytes([*body.get(4)?, *body.get(5)?]));
    let ticket = body.get(6..6 + len)?;
    if body.len() != 6 + len {
        return None;
    }
    Some(Tls12Ticket {
        lifetime_hint: u32::from_be_bytes([hint[0], hint[1], hint[2], hint[3]]),
        ticket: ticket.to_vec(),
    })
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
}
