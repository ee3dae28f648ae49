//! `serve`'s SMTP side: the dialogue is `tlsresume-smtp`'s [`ServerSession`] (a sink that
//! accepts mail and discards it, with RFC 2920 pipelining, BDAT and early pipelining; only
//! CR LF . CR LF ends DATA, over-long and bare CR or LF lines are refused whole, SIZE is
//! enforced); here is only what the socket adds: the look for input before the banner, and
//! dropping what the client left in the socket behind STARTTLS.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::Duration;

pub use tlsresume::smtp::server::SYNC_ERROR;
use tlsresume::smtp::server::{self, Stop};
use tlsresume::smtp::ServerSession;

/// The most bytes dropped from behind a STARTTLS command (see [`discard_pending`]).
const MAX_DISCARDED: usize = 64 * 1024;

/// Reads and drops what the client has sent already, without waiting (at most
/// [`MAX_DISCARDED`] bytes); returns how many.
fn discard_pending(tcp: &TcpStream) -> io::Result<usize> {
    tcp.set_nonblocking(true)?;
    let mut buf = [0u8; 4096];
    let mut dropped = 0;
    let result = loop {
        match (&mut &*tcp).read(&mut buf) {
            Ok(0) => break Ok(dropped),
            Ok(n) => {
                dropped += n;
                if dropped >= MAX_DISCARDED {
                    break Ok(dropped);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(dropped),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    tcp.set_nonblocking(false)?;
    result
}

/// Whether the client's bytes arrive within `wait` (looked at once when it is zero), without
/// taking them: the server's check before its banner. A closed connection is no input.
pub fn input_within(tcp: &TcpStream, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    let got = if wait.is_zero() {
        if tcp.set_nonblocking(true).is_err() {
            return false;
        }
        let r = tcp.peek(&mut byte);
        let _ = tcp.set_nonblocking(false);
        r
    } else {
        let before = tcp.read_timeout().ok().flatten();
        if tcp.set_read_timeout(Some(wait)).is_err() {
            return false;
        }
        let r = tcp.peek(&mut byte);
        let _ = tcp.set_read_timeout(before);
        r
    };
    matches!(got, Ok(n) if n > 0)
}

/// The clear part of a STARTTLS connection: the banner, then the session until STARTTLS.
/// `Ok(true)` when STARTTLS was accepted and its 220 sent (the TLS handshake comes next),
/// `Ok(false)` when the client quit first. Nothing of the TLS handshake is read: anything the
/// client sent behind STARTTLS in clear, in the session's reads or still in the socket, is
/// dropped before the 220 goes (CVE-2011-0411).
pub fn serve_plain_until_starttls(
    session: &mut ServerSession,
    tcp: &mut TcpStream,
) -> io::Result<bool> {
    session.greet();
    let stop = server::drive(session, tcp)?;
    if matches!(stop, Stop::StartTls { .. }) {
        discard_pending(tcp)?;
    }
    server::flush(session, tcp)?;
    match stop {
        Stop::StartTls { .. } => Ok(true),
        Stop::Quit => Ok(false),
        Stop::Close(why) => Err(io::Error::other(why)),
    }
}
