//! [`Deadline`]: a deadline for a whole exchange (a handshake) over a transport whose own
//! timeout is per read, so a peer dribbling a byte at a time cannot hold it for ever.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// A transport whose reads and writes fail with [`io::ErrorKind::TimedOut`] once its deadline
/// has passed, saying which deadline it was.
///
/// A socket's read timeout restarts with every byte, so a peer sending one byte every few
/// seconds holds a handshake as long as it likes; this bounds the whole handshake. A read
/// already waiting when the deadline passes ends by the socket's own timeout, so set both: the
/// handshake then ends at most one read timeout after its deadline. [`disarm`](Self::disarm)
/// it when the handshake is done (the connection's own pace is the application's).
///
/// ```
/// use std::io::Read;
/// use std::time::Duration;
/// use tlsresume_core::Deadline;
///
/// let mut late = Deadline::new(&b"hello"[..], Duration::ZERO, "handshake");
/// let err = late.read(&mut [0u8; 5]).expect_err("past its deadline");
/// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
/// assert!(err.to_string().contains("handshake deadline"));
/// late.disarm();
/// assert_eq!(late.read(&mut [0u8; 5]).expect("no deadline now"), 5);
/// ```
#[derive(Debug)]
pub struct Deadline<S> {
    inner: S,
    until: Option<Instant>,
    what: &'static str,
}

impl<S> Deadline<S> {
    /// `inner`, failing reads and writes `after` from now; `what` names the deadline in the
    /// error ("handshake").
    pub fn new(inner: S, after: Duration, what: &'static str) -> Self {
        Self {
            inner,
            until: Instant::now().checked_add(after),
            what,
        }
    }

    /// No deadline from now on.
    pub fn disarm(&mut self) {
        self.until = None;
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The transport, mutable.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The transport back.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn check(&self) -> io::Result<()> {
        match self.until {
            Some(until) if Instant::now() >= until => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the {} deadline passed", self.what),
            )),
            _ => Ok(()),
        }
    }
}

impl<S: Read> Read for Deadline<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check()?;
        self.inner.read(buf)
    }
}

impl<S: Write> Write for Deadline<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
