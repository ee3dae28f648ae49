//! What the server sent on the wire, read while the handshake runs: the TLS 1.2
//! NewSessionTicket (its lifetime hint and ticket).
//!
//! rustls 0.23 keeps a session value's ticket and lifetime hint private. In TLS 1.2 the
//! NewSessionTicket message travels before the server's ChangeCipherSpec, in clear, so the
//! client reads it off the records it receives: that is the value the server sent, whatever
//! rustls does with it. A TLS 1.3 NewSessionTicket is encrypted; its lifetime is not known to
//! this backend (see the crate docs).
//!
//! The reader only looks at handshake records until the server's ChangeCipherSpec (or until
//! [`Tap::stop`]), keeps at most
//! [`MAX_BUFFERED`](tlsresume_core::wire::MAX_BUFFERED) bytes, and ignores anything it cannot parse:
//! the bytes always pass through to rustls unchanged.

use std::io::{self, Read, Write};
use std::sync::Arc;

use crate::client::During;
use tlsresume_core::wire::{read_tls12_ticket, ClearHandshake, HANDSHAKE_NEW_SESSION_TICKET};

/// What a TLS 1.2 NewSessionTicket the server sent says: its lifetime hint, and whether it
/// carries a ticket (an empty one keeps the client's, RFC 5077 §3.3). The ticket itself is not
/// copied: rustls holds it in the session it saves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SentTicket {
    /// `ticket_lifetime_hint`, seconds (0: unspecified).
    pub(crate) lifetime_hint: u32,
    /// Whether the ticket is not empty: a new one.
    pub(crate) new: bool,
}

/// What the reader found, shared with the session-store bridge, and the reader itself (kept
/// here, not in the tap, so that the connection holds nothing of it once the handshake is
/// over).
#[derive(Debug, Default)]
pub(crate) struct WireRecord {
    /// The last NewSessionTicket received in clear on this connection.
    pub(crate) ticket: Option<SentTicket>,
    reader: Reader,
}

/// The clear handshake messages of the incoming direction, watched for a NewSessionTicket.
#[derive(Debug, Default)]
struct Reader {
    clear: ClearHandshake,
    done: bool,
}

impl WireRecord {
    fn feed(&mut self, bytes: &[u8]) {
        let Self { ticket, reader } = self;
        reader.clear.feed(bytes, |kind, body| {
            if kind == HANDSHAKE_NEW_SESSION_TICKET {
                if let Some((lifetime_hint, sent)) = read_tls12_ticket(body) {
                    *ticket = Some(SentTicket {
                        lifetime_hint,
                        new: !sent.is_empty(),
                    });
                }
            }
        });
        reader.done = reader.clear.is_done();
        if reader.done {
            reader.clear.stop();
        }
    }
}

/// A transport that reads the server's clear handshake records on their way to rustls.
#[derive(Debug)]
pub(crate) struct Tap<S> {
    inner: S,
    /// The reader and what it found; released when the handshake is over (nothing more is
    /// read in clear) or the reader is done.
    record: Option<Arc<During>>,
}

impl<S> Tap<S> {
    /// A tap feeding `record`'s reader; with `None`, a transport passed through.
    pub(crate) fn new(inner: S, record: Option<Arc<During>>) -> Self {
        Self { inner, record }
    }

    /// Stops looking (the handshake is over: nothing more is sent in clear).
    pub(crate) fn stop(&mut self) {
        self.record = None;
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: Read> Read for Tap<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(record) = &self.record {
            let mut record = record.wire.lock().unwrap_or_else(|p| p.into_inner());
            record.feed(&buf[..n]);
            if record.reader.done {
                // What it found stays with the bridge's reference.
                drop(record);
                self.record = None;
            }
        }
        Ok(n)
    }
}

impl<S: Write> Write for Tap<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    // rustls writes its records with `write_vectored`: passed through, or every record would
    // be a system call of its own.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.inner.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
    const CONTENT_HANDSHAKE: u8 = 22;

    fn record(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind, 3, 3];
        out.extend_from_slice(&u16::try_from(body.len()).expect("len").to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn nst(hint: u32, ticket: &[u8]) -> Vec<u8> {
        let mut body = hint.to_be_bytes().to_vec();
        body.extend_from_slice(&u16::try_from(ticket.len()).expect("len").to_be_bytes());
        body.extend_from_slice(ticket);
        let mut msg = vec![
            HANDSHAKE_NEW_SESSION_TICKET,
            0,
            0,
            u8::try_from(body.len()).expect("len"),
        ];
        msg.extend_from_slice(&body);
        msg
    }

    #[test]
    fn finds_a_ticket_split_across_reads_and_records_and_stops_at_ccs() {
        let msg = nst(7200, b"ticket-bytes");
        let (a, b) = msg.split_at(5);
        let mut wire = record(CONTENT_HANDSHAKE, a);
        wire.extend(record(CONTENT_HANDSHAKE, b));
        wire.extend(record(CONTENT_CHANGE_CIPHER_SPEC, &[1]));
        // After the CCS: never parsed, even if it looks like a ticket.
        wire.extend(record(CONTENT_HANDSHAKE, &nst(1, b"later")));
        let mut out = WireRecord::default();
        for chunk in wire.chunks(3) {
            out.feed(chunk);
        }
        assert_eq!(
            out.ticket,
            Some(SentTicket {
                lifetime_hint: 7200,
                new: true
            })
        );
        assert!(out.reader.done);
    }

    /// An empty ticket (the server keeps the client's, RFC 5077 §3.3) is no new one, and its
    /// hint is still the one sent.
    #[test]
    fn an_empty_ticket_is_no_new_one() {
        let mut out = WireRecord::default();
        out.feed(&record(CONTENT_HANDSHAKE, &nst(300, b"")));
        assert_eq!(
            out.ticket,
            Some(SentTicket {
                lifetime_hint: 300,
                new: false
            })
        );
    }

    #[test]
    fn garbage_is_ignored_and_bounded() {
        let mut out = WireRecord::default();
        out.feed(&[
            CONTENT_HANDSHAKE,
            3,
            3,
            0,
            3,
            HANDSHAKE_NEW_SESSION_TICKET,
            0,
            0,
        ]);
        out.feed(&record(
            CONTENT_HANDSHAKE,
            &[HANDSHAKE_NEW_SESSION_TICKET, 0, 0, 2, 0, 0],
        ));
        assert_eq!(out.ticket, None);
        // A message that claims 16 MB never completes: the reader gives up past the bound.
        let mut big = WireRecord::default();
        big.feed(&record(
            CONTENT_HANDSHAKE,
            &[HANDSHAKE_NEW_SESSION_TICKET, 0xff, 0xff, 0xff],
        ));
        for _ in 0..20 {
            big.feed(&record(CONTENT_HANDSHAKE, &[0u8; 4096]));
        }
        assert!(big.reader.done);
        assert_eq!(big.ticket, None);
        assert!(read_tls12_ticket(&[0, 0, 0, 1, 0, 5, 1]).is_none());
    }
}
