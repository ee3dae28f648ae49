//! [`AsyncFastOpenStream`]: [`FastOpenStream`](super::FastOpenStream) on tokio, the same
//! decisions ([`Attempt`]) with the waiting left to the runtime.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::{SockRef, Socket};
use tlsresume_core::deadline::deadline_passed;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::{Attempt, ConnectError, FastOpenReport, Opened};

/// The socket: made, then connecting or connected once the first write or read opened it.
#[derive(Debug)]
enum Tcp {
    /// Not connected yet (not registered with the runtime: an unconnected socket would say
    /// it is hung up).
    Made(Socket),
    /// Handed to the runtime once the kernel connects it.
    Open(TcpStream),
    /// The connect failed.
    Failed,
}

/// [`FastOpenStream`](super::FastOpenStream) on tokio: a TCP connection made by its first
/// write, with the bytes written (or by its first read, with none), through TCP Fast Open
/// with `try_fast_open` — `sendto` with `MSG_FASTOPEN` on a non-blocking socket, so the bytes
/// go in the SYN when the kernel holds a cookie for the server, and after the handshake
/// when not; a normal non-blocking connect where the kernel refuses. What became of it
/// appears in [`report`](Self::report), as on the blocking stream. Nagle is off; the connect
/// waits at most `timeout` (tokio's timer: a runtime with it enabled), an error then, like
/// any error before the handshake ended, being the connect's.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use tlsresume_smtp::fastopen::AsyncFastOpenStream;
///
/// let peer = "192.0.2.1:465".parse()?;
/// let mut tcp = AsyncFastOpenStream::new(peer, Duration::from_secs(30), true)?;
/// let report = tcp.report();
/// tcp.write_all(b"first bytes").await?; // in the SYN when the kernel holds a cookie
/// let mut reply = [0u8; 64];
/// tcp.read(&mut reply).await?;
/// println!("fastopen: {:?}", report.get());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AsyncFastOpenStream {
    tcp: Tcp,
    attempt: Attempt,
    timeout: Duration,
    /// While the kernel connects: when the connect fails.
    connect_by: Option<Pin<Box<Sleep>>>,
}

impl AsyncFastOpenStream {
    /// A socket for a connection to `peer`, not yet connected. `timeout` (at least 1 ms)
    /// bounds the connect.
    pub fn new(peer: SocketAddr, timeout: Duration, try_fast_open: bool) -> io::Result<Self> {
        let attempt = Attempt::new(peer, try_fast_open);
        let socket = attempt.socket()?;
        socket.set_nonblocking(true)?;
        socket.set_tcp_nodelay(true)?;
        Ok(Self {
            tcp: Tcp::Made(socket),
            attempt,
            timeout: timeout.max(Duration::from_millis(1)),
            connect_by: None,
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

    /// The TCP stream underneath, for a TLS library after STARTTLS; an error when nothing
    /// was written or read yet (not connected), or the connect failed. The outcome still
    /// appears in [`report`](Self::report) if it was known.
    pub fn into_tcp(self) -> io::Result<TcpStream> {
        match self.tcp {
            Tcp::Open(tcp) => {
                self.attempt.judge(SockRef::from(&tcp));
                Ok(tcp)
            }
            Tcp::Made(_) | Tcp::Failed => Err(not_connected()),
        }
    }

    /// Connects, handing `first` to the kernel with the connect; returns how many of its
    /// bytes are sent already (in the SYN). Never waits: the kernel connects, the stream
    /// is the runtime's.
    fn open(&mut self, first: &[u8]) -> io::Result<usize> {
        let Tcp::Made(socket) = std::mem::replace(&mut self.tcp, Tcp::Failed) else {
            return Err(not_connected());
        };
        let sent = match self.attempt.open(SockRef::from(&socket), first)? {
            Opened::Connecting { sent } => sent,
            Opened::ConnectNormally => {
                let peer = self.attempt.peer();
                match socket.connect(&peer.into()) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                    Err(e) => return Err(ConnectError::wrap(peer, e)),
                }
                0
            }
        };
        let tcp = TcpStream::from_std(socket.into())?;
        self.tcp = Tcp::Open(tcp);
        self.connect_by = Some(Box::pin(tokio::time::sleep(self.timeout)));
        Ok(sent)
    }

    /// Opens the stream with `first` if nothing did yet: `Some(sent)` when it did.
    fn open_with(&mut self, first: &[u8]) -> io::Result<Option<usize>> {
        match self.tcp {
            Tcp::Made(_) => self.open(first).map(Some),
            Tcp::Open(_) | Tcp::Failed => Ok(None),
        }
    }

    /// What an operation on the open stream gave: errors before the handshake ended are
    /// the connect's; while it waits, so does the connect's timer.
    fn outcome<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let Tcp::Open(tcp) = &self.tcp else {
            return Poll::Ready(Err(not_connected()));
        };
        match polled {
            Poll::Ready(Err(e)) => {
                Poll::Ready(Err(self.attempt.early_error(SockRef::from(tcp), e)))
            }
            Poll::Ready(Ok(done)) => Poll::Ready(Ok(done)),
            Poll::Pending => {
                let Some(timer) = self.connect_by.as_mut() else {
                    return Poll::Pending;
                };
                if !self.attempt.connecting(SockRef::from(tcp)) {
                    self.connect_by = None;
                    return Poll::Pending;
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        let e = deadline_passed("TCP connect");
                        Poll::Ready(Err(ConnectError::wrap(self.attempt.peer(), e)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn tcp(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        match &mut self.tcp {
            Tcp::Open(tcp) => Ok(Pin::new(tcp)),
            Tcp::Made(_) | Tcp::Failed => Err(not_connected()),
        }
    }
}

fn not_connected() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection was not made")
}

impl AsyncRead for AsyncFastOpenStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.open_with(&[]) {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        let polled = match this.tcp() {
            Ok(tcp) => tcp.poll_read(cx, buf),
            Err(e) => return Poll::Ready(Err(e)),
        };
        let polled = this.outcome(cx, polled);
        if let (Poll::Ready(Ok(())), Tcp::Open(tcp)) = (&polled, &this.tcp) {
            this.attempt
                .read(SockRef::from(tcp), buf.filled().len() - before);
        }
        polled
    }
}

impl AsyncWrite for AsyncFastOpenStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.open_with(buf) {
            Ok(Some(sent)) if sent > 0 => return Poll::Ready(Ok(sent)),
            Ok(_) => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
        let polled = match this.tcp() {
            Ok(tcp) => tcp.poll_write(cx, buf),
            Err(e) => return Poll::Ready(Err(e)),
        };
        this.outcome(cx, polled)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().tcp() {
            Ok(tcp) => tcp.poll_flush(cx),
            Err(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().tcp() {
            Ok(tcp) => tcp.poll_shutdown(cx),
            Err(_) => Poll::Ready(Ok(())),
        }
    }
}
