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
use tlsresume::smtp::tokio as smtp_tokio;
use tlsresume::smtp::ServerSession;

/// The most bytes dropped from behind a STARTTLS command (see [`discard_pending`]).
const MAX_DISCARDED: usize = 64 * 1024;

/// Reads and drops what the client has sent already, without waiting (at most
/// [`MAX_DISCARDED`] bytes); returns how many.
fn discard_pending(tcp: &TcpStream) -> io::Result<usize> {
    tcp.set_nonblocking(true)?;
    let result = discard_with(|buf| (&mut &*tcp).read(buf));
    tcp.set_nonblocking(false)?;
    result
}

/// Drops what `read_now` (a read that does not wait) gives until it would wait, at most
/// [`MAX_DISCARDED`] bytes; returns how many.
fn discard_with(mut read_now: impl FnMut(&mut [u8]) -> io::Result<usize>) -> io::Result<usize> {
    let mut buf = [0u8; 4096];
    let mut dropped = 0;
    loop {
        match read_now(&mut buf) {
            Ok(0) => return Ok(dropped),
            Ok(n) => {
                dropped += n;
                if dropped >= MAX_DISCARDED {
                    return Ok(dropped);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(dropped),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
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
    started(stop)
}

/// What the clear part's end means: `Ok(true)` STARTTLS, `Ok(false)` QUIT.
fn started(stop: Stop) -> io::Result<bool> {
    match stop {
        Stop::StartTls { .. } => Ok(true),
        Stop::Quit => Ok(false),
        Stop::Close(why) => Err(io::Error::other(why)),
    }
}

/// [`serve_plain_until_starttls`] on tokio (the session's tokio front).
pub async fn serve_plain_until_starttls_async(
    session: &mut ServerSession,
    tcp: &mut tokio::net::TcpStream,
) -> io::Result<bool> {
    session.greet();
    let stop = smtp_tokio::drive(session, tcp).await?;
    if matches!(stop, Stop::StartTls { .. }) {
        // Straight from the socket (non-blocking under tokio), whatever the runtime last saw
        // of its readiness.
        let socket = socket2::SockRef::from(&*tcp);
        discard_with(|buf| (&*socket).read(buf))?;
    }
    smtp_tokio::flush(session, tcp).await?;
    started(stop)
}

/// [`input_within`] on tokio: the look at once is straight at the socket, then a wait of up
/// to `wait` on the runtime.
pub async fn input_within_async(tcp: &tokio::net::TcpStream, wait: Duration) -> bool {
    let socket = socket2::SockRef::from(tcp);
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    match socket.peek(&mut byte) {
        Ok(n) => return n > 0,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(_) => return false,
    }
    if wait.is_zero() {
        return false;
    }
    matches!(
        tokio::time::timeout(wait, tcp.peek(&mut [0u8; 1])).await,
        Ok(Ok(n)) if n > 0
    )
}
