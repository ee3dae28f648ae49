//! TCP Fast Open (RFC 7413): a client's first bytes in its SYN, and what the kernel says
//! became of them.
//!
//! [`FastOpenStream`] is a TCP connection made by its first write: the bytes written go to the
//! kernel with the connect (`sendto` with `MSG_FASTOPEN`), so that with a Fast Open cookie
//! from an earlier connection to the same server they travel in the SYN, one round trip
//! before a normal connection could send them. Without a cookie the SYN asks for one and the
//! bytes follow the handshake; where the kernel's setting or the path refuses, the connection
//! is a normal one. Nothing is ever lost or refused because of Fast Open, and
//! [`FastOpenReport::get`] says which happened, from the kernel's `TCP_INFO`.
//!
//! `AsyncFastOpenStream` (feature `tokio`) is the same on tokio: the same decisions
//! (one code for both), the waiting left to the runtime.
//!
//! For TLS-on-connect, give the stream to the TLS library as its transport: its first write
//! is the ClientHello, which then goes in the SYN. The SMTP client uses it for its early
//! flight ([`crate::ClientConfig::hosts_try_fastopen`]).
//!
//! A server enables it on its listener with [`enable_on_listener`] and learns whether an
//! accepted connection's first bytes came in the SYN with [`accepted`].
//!
//! The kernel must allow it: `net.ipv4.tcp_fastopen` (per network namespace) has bit 1 for
//! clients and bit 2 for servers; 3 allows both ([`KernelSetting`]). Linux only: elsewhere
//! every connection is a normal one and says so.

use core::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tlsresume_core::deadline::{deadline_passed, idle_timeout};

use crate::ffi;

#[cfg(feature = "tokio")]
mod on_tokio;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use on_tokio::AsyncFastOpenStream;

/// Where the kernel keeps the Fast Open setting.
pub const SYSCTL_PATH: &str = "/proc/sys/net/ipv4/tcp_fastopen";

/// The file whose lock processes take turns by to set [`SYSCTL_PATH`]
/// ([`KernelSetting::set_for_now`]), in this user's [`lock_dir`].
pub const SYSCTL_LOCK_FILE: &str = "tcp_fastopen.lock";

/// This user's private directory for the lock of [`KernelSetting::set_for_now`]:
/// `tlsresume-UID` (the effective user id) in the temporary directory, made with mode 0700
/// when missing. Refused (an error naming it) unless it is a directory, not a link, owned by
/// this user, that no other user may enter: another user can neither hold this user's lock
/// nor give it a file of theirs.
pub fn lock_dir() -> io::Result<PathBuf> {
    let uid = ffi::effective_uid();
    let dir = std::env::temp_dir().join(format!("tlsresume-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot make {}: {e}", dir.display()),
            ))
        }
    }
    private_dir(&dir, uid)?;
    Ok(dir)
}

/// Whether `dir` is a directory, not a link, owned by `uid`, that no other user may enter.
fn private_dir(dir: &std::path::Path, uid: u32) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    let mode = meta.mode() & 0o7777;
    if meta.is_dir() && meta.uid() == uid && mode & 0o077 == 0 {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{} is not this user's private directory (uid {uid}): it is owned by uid {} with mode {mode:o}{}; remove it",
            dir.display(),
            meta.uid(),
            if meta.is_dir() { "" } else { ", not a directory" },
        ),
    ))
}

/// The kernel's `net.ipv4.tcp_fastopen` in this network namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSetting(pub u32);

impl KernelSetting {
    /// Reads it from [`SYSCTL_PATH`].
    pub fn read() -> io::Result<Self> {
        let text = std::fs::read_to_string(SYSCTL_PATH)?;
        text.trim()
            .parse()
            .map(Self)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{SYSCTL_PATH}: {e}")))
    }

    /// Bit 1: clients may send data in the SYN.
    pub fn allows_client(self) -> bool {
        self.0 & 1 != 0
    }

    /// Bit 2: servers take data from the SYN.
    pub fn allows_server(self) -> bool {
        self.0 & 2 != 0
    }

    /// Writes it to [`SYSCTL_PATH`] (root, or `CAP_NET_ADMIN` over the network namespace).
    pub fn write(self) -> io::Result<()> {
        std::fs::write(SYSCTL_PATH, format!("{}\n", self.0))
    }

    /// Sets it until the returned value is dropped, which writes back the value read now (for
    /// tests and measurements). One at a time: a second call, in this process or another one
    /// of the same user (test binaries run side by side), waits until the first one's value
    /// is dropped. Processes take turns by a lock on [`SYSCTL_LOCK_FILE`] in the user's
    /// [`lock_dir`], so another user's processes can neither block nor break the turns (the
    /// setting is root's to write, or in a network namespace of its own, its owner's). An
    /// error when that directory cannot be made or is not the user's own, as when the
    /// setting cannot be read or written.
    pub fn set_for_now(self) -> io::Result<ScopedSetting> {
        static TURN: Mutex<()> = Mutex::new(());
        let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
        let machine_turn = Self::machine_turn()?;
        let before = Self::read()?;
        self.write()?;
        Ok(ScopedSetting {
            before,
            _machine_turn: machine_turn,
            _turn: turn,
        })
    }

    /// The lock file, locked by this process (waiting for another one to unlock it).
    fn machine_turn() -> io::Result<std::fs::File> {
        let path = lock_dir()?.join(SYSCTL_LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        ffi::lock_exclusive(file.as_fd())?;
        Ok(file)
    }

    /// What this setting forbids, in words; `None` when it allows both sides.
    pub fn forbids(self) -> Option<String> {
        let side = match (self.allows_client(), self.allows_server()) {
            (true, true) => return None,
            (true, false) => "servers",
            (false, true) => "clients",
            (false, false) => "clients or servers",
        };
        Some(format!(
            "net.ipv4.tcp_fastopen is {}, which allows no Fast Open for {side} (3 allows both: sysctl -w net.ipv4.tcp_fastopen=3)",
            self.0
        ))
    }
}

/// `net.ipv4.tcp_fastopen` set for a while ([`KernelSetting::set_for_now`]); the value before
/// is written back when this is dropped.
#[derive(Debug)]
pub struct ScopedSetting {
    before: KernelSetting,
    // Dropped after the value is written back: the lock file, then this process's turn.
    _machine_turn: std::fs::File,
    _turn: MutexGuard<'static, ()>,
}

impl Drop for ScopedSetting {
    fn drop(&mut self) {
        let _ = self.before.write();
    }
}

/// Why a client's Fast Open did not carry its bytes in the SYN although it had a cookie to try.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The kernel's setting forbids client Fast Open (its value, when it could be read).
    KernelSetting(Option<u32>),
    /// The kernel refused the call otherwise (an old kernel, another system): its error.
    Unsupported(String),
    /// The SYN carried the data, the server's SYN-ACK did not take it (Fast Open off on the
    /// server, or the cookie no longer valid): the kernel sent it again after the handshake.
    DataNotAcked,
    /// The SYN with data went unanswered and was sent again without it: something on the path
    /// drops such SYNs.
    SynRetransmitted,
    /// No data went in the SYN and the kernel did not say why (after failures on a path the
    /// kernel stops trying for a while: `net.ipv4.tcp_fastopen_blackhole_timeout_sec`).
    Unknown,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::KernelSetting(Some(value)) => match KernelSetting(*value).forbids() {
                Some(why) => f.write_str(&why),
                None => write!(f, "net.ipv4.tcp_fastopen is {value}"),
            },
            Refusal::KernelSetting(None) => {
                write!(f, "the kernel allows no client Fast Open ({SYSCTL_PATH} unreadable)")
            }
            Refusal::Unsupported(e) => write!(f, "the kernel refused Fast Open: {e}"),
            Refusal::DataNotAcked => f.write_str(
                "the server did not take the data in the SYN (no Fast Open there, or the cookie is no longer valid); it went after the handshake",
            ),
            Refusal::SynRetransmitted => f.write_str(
                "the SYN with data went unanswered and was sent again without it (the path drops such SYNs)",
            ),
            Refusal::Unknown => f.write_str(
                "no data went in the SYN and the kernel did not say why (it pauses Fast Open on a path after failures: net.ipv4.tcp_fastopen_blackhole_timeout_sec)",
            ),
        }
    }
}

/// What became of a client's Fast Open.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FastOpen {
    /// Not asked for (not configured, or the caller made the connection).
    NotTried,
    /// The first bytes went in the SYN and the server took them: `bytes` of them.
    SynData {
        /// How many of the first bytes the SYN carried.
        bytes: usize,
    },
    /// No cookie for this server yet: the SYN asked for one, the bytes went after the
    /// handshake. The next connection can carry them.
    NoCookie,
    /// There was nothing to send with the connect (the client waits for the server first);
    /// the SYN carried the cookie alone.
    NoData,
    /// A normal connection: why.
    Refused(Refusal),
}

impl FastOpen {
    /// `syn-data`, `no-cookie`, `no-data`, `refused` or `not-tried`.
    pub fn name(&self) -> &'static str {
        match self {
            FastOpen::NotTried => "not-tried",
            FastOpen::SynData { .. } => "syn-data",
            FastOpen::NoCookie => "no-cookie",
            FastOpen::NoData => "no-data",
            FastOpen::Refused(_) => "refused",
        }
    }

    /// Whether the first bytes went in the SYN.
    pub fn syn_data(&self) -> bool {
        matches!(self, FastOpen::SynData { .. })
    }
}

impl fmt::Display for FastOpen {
    /// The name, and for a refusal why: `refused (net.ipv4.tcp_fastopen is 0, …)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FastOpen::Refused(why) => write!(f, "refused ({why})"),
            other => f.write_str(other.name()),
        }
    }
}

/// Where a [`FastOpenStream`] leaves its outcome once the connection is up (the stream itself
/// may by then be inside a TLS library).
#[derive(Clone, Debug, Default)]
pub struct FastOpenReport(Arc<OnceLock<FastOpen>>);

impl FastOpenReport {
    /// The outcome; `None` until the stream has read its first bytes from the server.
    pub fn get(&self) -> Option<FastOpen> {
        self.0.get().cloned()
    }

    fn set(&self, outcome: FastOpen) {
        let _ = self.0.set(outcome);
    }
}

/// How the connect went.
#[derive(Clone, Debug)]
enum Opening {
    /// Not yet: the first write or read makes it.
    Not,
    /// A normal connect: Fast Open not asked for, or refused (why).
    Normal(Option<Refusal>),
    /// `sendto` with `MSG_FASTOPEN`: `in_syn` bytes of `asked` went with the SYN.
    Fast { in_syn: usize, asked: usize },
}

/// The failure to connect, as the error's inner value (the SMTP client reports it as
/// [`crate::Stage::Connect`]).
#[derive(Debug)]
pub(crate) struct ConnectError {
    pub(crate) peer: SocketAddr,
    pub(crate) source: io::Error,
}

impl ConnectError {
    /// `source` as a connect error to `peer`, of the same kind. A timeout, whichever way
    /// the front waited (the socket's own timeout, the connect's, or a timer), says that the
    /// TCP connect deadline passed.
    pub(crate) fn wrap(peer: SocketAddr, source: io::Error) -> io::Error {
        let source = match idle_timeout(&source, "connect") {
            Some(_) => deadline_passed("TCP connect"),
            None => source,
        };
        io::Error::new(source.kind(), ConnectError { peer, source })
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.peer, self.source)
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// What the connect left to its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Opened {
    /// The kernel connects with `sent` of the first bytes (in the SYN; 0 when none went):
    /// the rest follow once the connection is up.
    Connecting {
        /// How many of the first bytes the kernel took.
        sent: usize,
    },
    /// No Fast Open (not asked for, or refused): the caller connects the normal way, its own
    /// way (blocking, or on its runtime), then writes.
    ConnectNormally,
}

/// A client's Fast Open on one socket, without the waiting: the decisions both fronts
/// ([`FastOpenStream`] and, on tokio, `AsyncFastOpenStream`) take alike — the connect with
/// the first bytes, the fallback when the kernel refuses and why, the errors that are the
/// connect's, and what the kernel says became of it once the server has answered. The
/// socket calls it makes never wait (`MSG_DONTWAIT`); the fronts do the waiting.
#[derive(Debug)]
pub(crate) struct Attempt {
    peer: SocketAddr,
    try_fast_open: bool,
    opening: Opening,
    report: FastOpenReport,
}

impl Attempt {
    pub(crate) fn new(peer: SocketAddr, try_fast_open: bool) -> Self {
        Self {
            peer,
            try_fast_open,
            opening: Opening::Not,
            report: FastOpenReport::default(),
        }
    }

    /// A socket of the right family for the peer, not yet connected.
    pub(crate) fn socket(&self) -> io::Result<Socket> {
        Socket::new(
            Domain::for_address(self.peer),
            Type::STREAM,
            Some(Protocol::TCP),
        )
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub(crate) fn report(&self) -> FastOpenReport {
        self.report.clone()
    }

    /// Whether nothing was written or read yet: the first write or read connects.
    pub(crate) fn unopened(&self) -> bool {
        matches!(self.opening, Opening::Not)
    }

    /// Connects `sock` with `first` handed to the kernel (`sendto` with `MSG_FASTOPEN`), or
    /// says to connect normally (Fast Open not asked for, or refused: the reason is kept for
    /// the report). An error is the connect's ([`ConnectError`]).
    pub(crate) fn open(&mut self, sock: SockRef<'_>, first: &[u8]) -> io::Result<Opened> {
        let refusal = if !self.try_fast_open {
            None
        } else if let Some(flags) = ffi::FASTOPEN_SEND_FLAGS {
            match sock.send_to_with_flags(first, &self.peer.into(), flags) {
                Ok(in_syn) => {
                    self.opening = Opening::Fast {
                        in_syn,
                        asked: first.len(),
                    };
                    return Ok(Opened::Connecting { sent: in_syn });
                }
                // The SYN went without data: no cookie yet (it asks for one), or nothing to send.
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                    self.opening = Opening::Fast {
                        in_syn: 0,
                        asked: first.len(),
                    };
                    return Ok(Opened::Connecting { sent: 0 });
                }
                Err(e) if refused_by_kernel(&e) => Some(match KernelSetting::read() {
                    Ok(setting) if !setting.allows_client() => {
                        Refusal::KernelSetting(Some(setting.0))
                    }
                    Ok(_) => Refusal::Unsupported(e.to_string()),
                    Err(_) => Refusal::KernelSetting(None),
                }),
                Err(e) => return Err(ConnectError::wrap(self.peer, e)),
            }
        } else {
            Some(Refusal::Unsupported(
                "TCP Fast Open is not available on this system".into(),
            ))
        };
        self.opening = Opening::Normal(refusal);
        Ok(Opened::ConnectNormally)
    }

    /// An error of a read or write on `sock` before the server sent anything: a connect
    /// error when the handshake had not ended (a reset answering the SYN, or no answer in
    /// time).
    pub(crate) fn early_error(&self, sock: SockRef<'_>, e: io::Error) -> io::Error {
        if self.report.get().is_some() || e.get_ref().is_some_and(|i| i.is::<ConnectError>()) {
            return e;
        }
        if e.kind() == io::ErrorKind::ConnectionRefused || self.connecting(sock) {
            return ConnectError::wrap(self.peer, e);
        }
        e
    }

    /// Whether the kernel still waits for the server's SYN-ACK on `sock`.
    pub(crate) fn connecting(&self, sock: SockRef<'_>) -> bool {
        ffi::tcp_info(sock.as_fd()).is_ok_and(|i| i.state == ffi::TCP_SYN_SENT)
    }

    /// After a read of `n` bytes on `sock`: the first bytes from the server mean the
    /// connection is up, and the outcome is noted.
    pub(crate) fn read(&self, sock: SockRef<'_>, n: usize) {
        if n > 0 && self.report.get().is_none() {
            self.judge(sock);
        }
    }

    /// Notes the outcome once the connection is up (the server has sent bytes), from the
    /// kernel's `TCP_INFO` on `sock`.
    pub(crate) fn judge(&self, sock: SockRef<'_>) {
        let outcome = match &self.opening {
            Opening::Not => return,
            Opening::Normal(None) => FastOpen::NotTried,
            Opening::Normal(Some(why)) => FastOpen::Refused(why.clone()),
            Opening::Fast { in_syn, asked } => match ffi::tcp_info(sock.as_fd()) {
                Ok(info) if info.options & ffi::TCPI_OPT_SYN_DATA != 0 => {
                    FastOpen::SynData { bytes: *in_syn }
                }
                Ok(info) => match info.fastopen_client_fail {
                    1 => FastOpen::NoCookie,
                    2 => FastOpen::Refused(Refusal::DataNotAcked),
                    3 => FastOpen::Refused(Refusal::SynRetransmitted),
                    _ if *asked == 0 => FastOpen::NoData,
                    _ => FastOpen::Refused(Refusal::Unknown),
                },
                Err(e) => FastOpen::Refused(Refusal::Unsupported(format!("TCP_INFO: {e}"))),
            },
        };
        self.report.set(outcome);
    }
}

/// A TCP connection to a server made by its first write, with the bytes written (or by its
/// first read, with none): with `try_fast_open`, through TCP Fast Open. Read and write
/// timeouts and Nagle off are set on it before it connects; the connect itself waits at most
/// the same timeout.
///
/// ```no_run
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use tlsresume_smtp::fastopen::FastOpenStream;
///
/// let mut tcp = FastOpenStream::new("192.0.2.1:465".parse()?, Duration::from_secs(30), true)?;
/// let report = tcp.report();
/// tcp.write_all(b"first bytes")?; // in the SYN when the kernel holds a cookie for the server
/// let mut reply = [0u8; 64];
/// tcp.read(&mut reply)?;
/// println!("fastopen: {:?}", report.get());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FastOpenStream {
    tcp: TcpStream,
    timeout: Duration,
    attempt: Attempt,
}

impl FastOpenStream {
    /// A socket for a connection to `peer`, not yet connected. `timeout` (at least 1 ms) bounds
    /// the connect and each read and write.
    pub fn new(peer: SocketAddr, timeout: Duration, try_fast_open: bool) -> io::Result<Self> {
        let timeout = timeout.max(Duration::from_millis(1));
        let attempt = Attempt::new(peer, try_fast_open);
        let tcp: TcpStream = attempt.socket()?.into();
        tcp.set_read_timeout(Some(timeout))?;
        tcp.set_write_timeout(Some(timeout))?;
        tcp.set_nodelay(true)?;
        Ok(Self {
            tcp,
            timeout,
            attempt,
        })
    }

    /// Where the outcome appears once the server has sent its first bytes.
    pub fn report(&self) -> FastOpenReport {
        self.attempt.report()
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.attempt.peer()
    }

    /// The TCP stream underneath (not connected if nothing was written or read yet).
    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }

    /// The TCP stream underneath, for a TLS library that wants a `TcpStream` after STARTTLS.
    /// The outcome still appears in [`report`](Self::report) if it was known; a stream given
    /// away before its first read leaves it unknown.
    pub fn into_tcp(self) -> TcpStream {
        self.attempt.judge(SockRef::from(&self.tcp));
        self.tcp
    }

    /// Connects, handing `first` to the kernel with the connect; returns how many of its bytes
    /// are sent already (in the SYN).
    fn open(&mut self, first: &[u8]) -> io::Result<usize> {
        match self.attempt.open(SockRef::from(&self.tcp), first)? {
            Opened::Connecting { sent } => Ok(sent),
            Opened::ConnectNormally => {
                let peer = self.attempt.peer();
                SockRef::from(&self.tcp)
                    .connect_timeout(&peer.into(), self.timeout)
                    .map_err(|e| ConnectError::wrap(peer, e))?;
                Ok(0)
            }
        }
    }

    fn early_error(&self, e: io::Error) -> io::Error {
        self.attempt.early_error(SockRef::from(&self.tcp), e)
    }
}

/// A `sendto` error that means "no Fast Open here", after which a normal connect is made.
fn refused_by_kernel(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::ENOPROTOOPT | libc::EINVAL)
    ) || e.kind() == io::ErrorKind::Unsupported
}

impl Read for FastOpenStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.attempt.unopened() {
            self.open(&[])?;
        }
        let n = (&self.tcp).read(buf).map_err(|e| self.early_error(e))?;
        self.attempt.read(SockRef::from(&self.tcp), n);
        Ok(n)
    }
}

impl Write for FastOpenStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.attempt.unopened() {
            let sent = self.open(buf)?;
            if sent > 0 {
                return Ok(sent);
            }
        }
        (&self.tcp).write(buf).map_err(|e| self.early_error(e))
    }

    /// The first write hands every buffer to the connect at once (a TLS library writes its
    /// ClientHello in pieces).
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.attempt.unopened() {
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            return self.write(&all);
        }
        (&self.tcp)
            .write_vectored(bufs)
            .map_err(|e| self.early_error(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        (&self.tcp).flush()
    }
}

/// Connects to `peer` with `first` handed to the kernel with the connect (in the SYN when the
/// kernel holds a cookie for the server), through Fast Open, for callers that have their first
/// bytes ready; the rest of the connection is a `FastOpenStream` like any other. `first` is
/// sent whole before this returns.
pub fn connect_with(
    peer: SocketAddr,
    first: &[u8],
    timeout: Duration,
) -> io::Result<FastOpenStream> {
    let mut stream = FastOpenStream::new(peer, timeout, true)?;
    stream.write_all(first)?;
    Ok(stream)
}

/// Enables Fast Open on a listening socket: up to `queue` connections made from Fast Open
/// SYNs may wait for their handshake to end (`TCP_FASTOPEN`). The kernel takes data from SYNs
/// only when `net.ipv4.tcp_fastopen` allows servers ([`KernelSetting::allows_server`]).
pub fn enable_on_listener(listener: &TcpListener, queue: u32) -> io::Result<()> {
    ffi::set_tcp_fastopen(listener.as_fd(), queue)
}

/// What a server's accepted connection was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Made from a Fast Open SYN whose data the server took: the client's first bytes came
    /// in the SYN (Exim logs `TFO*`).
    SynData,
    /// Made from a Fast Open SYN without data (Exim logs `TFO`).
    NoData,
    /// A normal connection.
    Normal,
}

impl Accepted {
    /// Exim's log marker: `TFO*`, `TFO`, or nothing.
    pub fn exim_marker(self) -> Option<&'static str> {
        match self {
            Accepted::SynData => Some("TFO*"),
            Accepted::NoData => Some("TFO"),
            Accepted::Normal => None,
        }
    }
}

/// What the kernel says of a connection just accepted (look before reading from it): its
/// `TCP_INFO` options have `TCPI_OPT_SYN_DATA` when the SYN's data was taken, and
/// `TCPI_OPT_TFO_CHILD` (Linux 6.16 and later) for any Fast Open connection; on older kernels
/// a Fast Open connection without data is seen only while it still waits for the client's
/// final ACK (state `SYN_RECV`), as Exim looks.
pub fn accepted(stream: &TcpStream) -> io::Result<Accepted> {
    let info = ffi::tcp_info(stream.as_fd())?;
    Ok(if info.options & ffi::TCPI_OPT_SYN_DATA != 0 {
        Accepted::SynData
    } else if info.options & ffi::TCPI_OPT_TFO_CHILD != 0 || info.state == ffi::TCP_SYN_RECV {
        Accepted::NoData
    } else {
        Accepted::Normal
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_says_what_it_forbids() {
        assert_eq!(KernelSetting(3).forbids(), None);
        assert_eq!(KernelSetting(7).forbids(), None);
        let zero = KernelSetting(0).forbids().expect("forbids");
        assert!(
            zero.contains("is 0") && zero.contains("clients or servers"),
            "{zero}"
        );
        assert!(KernelSetting(1)
            .forbids()
            .is_some_and(|s| s.contains("for servers")));
        assert!(KernelSetting(2)
            .forbids()
            .is_some_and(|s| s.contains("for clients")));
        let refused = FastOpen::Refused(Refusal::KernelSetting(Some(0))).to_string();
        assert!(
            refused.starts_with("refused (net.ipv4.tcp_fastopen is 0"),
            "{refused}"
        );
        assert_eq!(FastOpen::SynData { bytes: 20 }.to_string(), "syn-data");
    }

    #[test]
    fn the_lock_is_in_a_directory_of_this_user_alone() {
        let uid = ffi::effective_uid();
        let dir = lock_dir().expect("lock directory");
        assert!(
            dir.ends_with(format!("tlsresume-{uid}")),
            "{}",
            dir.display()
        );
        // One holder at a time, whatever the process: a second open file cannot lock it.
        let held = KernelSetting::machine_turn().expect("lock");
        let other = std::fs::File::open(dir.join(SYSCTL_LOCK_FILE)).expect("open");
        let e = ffi::try_lock_exclusive(other.as_fd()).expect_err("held");
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
        drop(held);
        ffi::try_lock_exclusive(other.as_fd()).expect("free once dropped");
        // A directory others may enter, or a link, is not taken for this user's.
        let shared = std::env::temp_dir().join(format!("tlsresume-test-{}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&shared)
            .expect("mkdir");
        std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let e = private_dir(&shared, uid).expect_err("mode 755");
        assert!(e.to_string().contains("mode 755"), "{e}");
        std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("chmod");
        assert!(private_dir(&shared, uid).is_ok());
        assert!(
            private_dir(&shared, uid.wrapping_add(1)).is_err(),
            "another user's"
        );
        let link = shared.with_extension("link");
        std::os::unix::fs::symlink(&shared, &link).expect("symlink");
        let e = private_dir(&link, uid).expect_err("a link");
        assert!(e.to_string().contains("not a directory"), "{e}");
        let _ = std::fs::remove_file(&link);
        let _ = std::fs::remove_dir(&shared);
    }

    #[test]
    fn a_refused_connect_is_a_connect_error() {
        // A port nobody listens on: bind one, note it, close it.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port");
        let mut s = FastOpenStream::new(port, Duration::from_secs(5), true).expect("socket");
        let e = s
            .write_all(b"EHLO x\r\n")
            .and_then(|()| s.read(&mut [0u8; 16]).map(drop))
            .expect_err("nobody listens");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
        assert!(e.get_ref().is_some_and(|i| i.is::<ConnectError>()), "{e:?}");
    }

    #[test]
    fn a_normal_connection_reports_not_tried() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let kind = accepted(&s).expect("TCP_INFO");
            let mut got = [0u8; 4];
            s.read_exact(&mut got).expect("read");
            s.write_all(b"pong").expect("write");
            (kind, got)
        });
        let mut s = FastOpenStream::new(addr, Duration::from_secs(5), false).expect("socket");
        let report = s.report();
        s.write_all(b"ping").expect("write");
        let mut got = [0u8; 4];
        s.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"pong");
        assert_eq!(report.get(), Some(FastOpen::NotTried));
        let (kind, got) = server.join().expect("server");
        assert_eq!((kind, &got), (Accepted::Normal, b"ping"));
    }
}
