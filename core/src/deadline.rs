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
            Some(until) if Instant::now() >= until => Err(deadline_passed(self.what)),
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

/// What a timeout error made here carries: which deadline or timeout passed.
#[derive(Debug)]
struct Passed(String);

impl std::fmt::Display for Passed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Passed {}

fn passed(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, Passed(what))
}

/// The error of a deadline that passed: [`io::ErrorKind::TimedOut`], saying which one
/// (`deadline_passed("handshake")`: "the handshake deadline passed"). [`Deadline`] and the tokio
/// API's handshake timeout report it; an application's own deadlines can too, so that logs name
/// every timeout the same way.
pub fn deadline_passed(what: &str) -> io::Error {
    passed(format!("the {what} deadline passed"))
}

/// A socket's own read or write timeout as a blocking transport reports it, the operating
/// system's `WouldBlock` or `TimedOut` ("Resource temporarily unavailable (os error 11)" on
/// Linux, or a TLS library's "again"), which says nothing of a timeout to an operator: `Some`
/// with an error of kind `TimedOut` saying the idle `what` timeout passed ("the idle read
/// timeout passed"). `None` for any other error, including one made here (a
/// [`deadline_passed`] already says which deadline it was).
///
/// Only for a blocking transport: on a non-blocking one `WouldBlock` means "not yet".
///
/// ```
/// use std::io;
/// use tlsresume_core::deadline::{deadline_passed, idle_timeout};
///
/// let os = io::Error::from(io::ErrorKind::WouldBlock);
/// let said = idle_timeout(&os, "read").expect("a socket timeout");
/// assert_eq!(said.kind(), io::ErrorKind::TimedOut);
/// assert_eq!(said.to_string(), "the idle read timeout passed");
/// assert!(idle_timeout(&deadline_passed("handshake"), "read").is_none());
/// assert!(idle_timeout(&said, "read").is_none());
/// ```
pub fn idle_timeout(err: &io::Error, what: &str) -> Option<io::Error> {
    let made_here = err.get_ref().is_some_and(|inner| inner.is::<Passed>());
    let os_timeout = matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    );
    (os_timeout && !made_here).then(|| passed(format!("the idle {what} timeout passed")))
}

/// A blocking handshake stopped by the socket's own read (or write) timeout:
/// [`io::ErrorKind::TimedOut`], "the idle read timeout passed during the handshake".
pub fn idle_in_handshake() -> io::Error {
    passed(
        "the idle read timeout passed during the handshake (or the socket's write timeout)".into(),
    )
}
