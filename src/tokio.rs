//! Async streams on tokio, for every backend, with the same resumption behaviour as the
//! blocking API.
//!
//! ```no_run
//! use tlsresume::tokio::{TlsAcceptor, TlsConnector};
//! use tlsresume::{ClientParams, ClientSettings, ServerParams};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let roots = tlsresume::certificates_from_pem_file("ca.pem".as_ref())?;
//! // By type ...
//! let connector = TlsConnector::from(tlsresume::rustls::Client::new(
//!     ClientSettings::builder(roots).build()?,
//! )?);
//! // ... or chosen at run time: TlsConnector::from(tlsresume::backends::client(kind, settings)?)
//! let peer = "192.0.2.10:465".parse()?;
//! let tcp = tokio::net::TcpStream::connect(peer).await?;
//! let mut tls = connector
//!     .connect(&ClientParams::new("mx.example.net", peer), tcp)
//!     .await?;
//! let mut banner = [0u8; 512];
//! let n = tls.read(&mut banner).await?;
//! tls.write_all(b"QUIT\r\n").await?;
//! println!("{} bytes; resumption={}", n, tls.info().resumption);
//! tls.get_ref().peer_addr()?; // the socket is still reachable
//! # Ok(()) }
//!
//! // Server side: any backend's `Server` (TlsAcceptor::from), or backends::server(kind, ..).
//! async fn serve(acceptor: TlsAcceptor, tcp: tokio::net::TcpStream) -> Result<(), tlsresume::Error> {
//!     let params = ServerParams::new(tcp.peer_addr()?, tcp.local_addr()?);
//!     let mut tls = acceptor.accept(&params, tcp).await?;
//!     tls.write_all(b"220 mx.example.net ESMTP\r\n").await?;
//!     println!("resumed: {}", tls.info().resumed);
//!     Ok(())
//! }
//! ```
//!
//! # How each library is driven
//!
//! Every backend's handshake is resumable (`Client::start` / `Server::start` →
//! `Handshake::resume`), and the blocking `connect`/`accept` are the same code resumed once, so
//! the resumption decisions cannot differ between the two APIs. Here the transport is a
//! synchronous adapter over the tokio I/O object that answers `WouldBlock` when the object is
//! not ready (having registered the task's waker): OpenSSL then returns "want read/write" and
//! its `MidHandshakeSslStream` is resumed later (tokio-openssl's approach; the crate itself is
//! not used because our `SslStream` is made by the backend, with its callbacks and ex_data,
//! and must stay behind the backend's `Stream`), GnuTLS's pull/push return EAGAIN and
//! `gnutls_handshake` is called again, rustls's `complete_io` stops and goes on (tokio-rustls
//! drives the state machine the same way; tokio-rustls itself is not used because it owns the
//! `ClientConnection`, while the backend must keep the connection's session bridge and wire tap
//! around it). `WouldBlock` is never an error on this path.
//!
//! # No blocking work on a runtime thread
//!
//! - **Session stores.** A store whose [`SessionStore::blocks`] says so (the on-disk store,
//!   Redis; any store that does not say) is never called on a runtime thread: the connection's
//!   cache key is looked up on a `spawn_blocking` thread before the handshake, the handshake
//!   runs over a [`DeferredStore`] holding that answer, and what the library's callbacks store
//!   during the handshake is written on a `spawn_blocking` thread before `connect` returns.
//!   Sessions that arrive after the handshake (TLS 1.3 tickets, on a read) are written by a
//!   `spawn_blocking` task started by that read; the connector's next `connect` waits for
//!   those writes first, so it sees them exactly as a blocking client would. A
//!   [`MemoryStore`](crate::MemoryStore) does not block and is used directly.
//! - **Ticket keys.** The servers ask their [`KeyRing`](crate::KeyRing) for keys inside the
//!   ticket callbacks; the ring asks its [`KeySource`](crate::KeySource) only when a rotation
//!   is due. Before each handshake the acceptor checks
//!   [`KeyRing::rotation_due`](crate::KeyRing::rotation_due) and, if so, rotates on a
//!   `spawn_blocking` thread, so a Redis key source is not asked from a callback (the only
//!   window left is a rotation falling due during the handshake itself, milliseconds on a real
//!   clock). GnuTLS derives its keys from a master secret fetched when the server is made:
//!   make a GnuTLS server (or any server over a Redis key source) before the runtime, or in
//!   `spawn_blocking`.
//!
//! A session write that fails after the handshake (the store's disk or Redis failed) loses the
//! session, as in the blocking API, but the connection has already reported `SERVER_TICKET`
//! (the stand-in store took the write).
//!
//! # Per-connection state
//!
//! Each connection's state travels with its handshake and stream, never in a thread-local, so
//! a task may move between worker threads at any await point. On rustls that means a
//! configuration per connection for servers (its own ticketer) and a verifier per connection
//! for clients, except that a connection offering a stored session runs under the verifier
//! kept with that session (rustls resumes a session under no other), pointed at this
//! connection; a stored TLS 1.2 session is lent to one handshake at a time, and a second
//! connection to the same server starting while the first is still handshaking makes a full
//! handshake instead.

use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::task::JoinHandle;

use tlsresume_core::contract::ClientContract;
use tlsresume_core::{
    ClientContext, ClientParams, DeferredStore, Error, Handshaking, MidHandshake, ServerContext,
    ServerParams, SessionInfo, SessionStore, TlsStream as DynTlsStream,
};

/// The synchronous transport the backends run over: the tokio I/O object, polled with the
/// waker of the task that drives the connection; "not ready" is `WouldBlock`.
pub struct SyncIo<IO> {
    io: IO,
    waker: Option<Waker>,
}

impl<IO> fmt::Debug for SyncIo<IO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncIo").finish_non_exhaustive()
    }
}

impl<IO> SyncIo<IO> {
    fn new(io: IO) -> Self {
        Self { io, waker: None }
    }

    fn set_waker(&mut self, cx: &Context<'_>) {
        match &self.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => self.waker = Some(cx.waker().clone()),
        }
    }

    fn poll<T>(
        &mut self,
        f: impl FnOnce(Pin<&mut IO>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> io::Result<T>
    where
        IO: Unpin,
    {
        let Some(waker) = &self.waker else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        let mut cx = Context::from_waker(waker);
        match f(Pin::new(&mut self.io), &mut cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<IO: AsyncRead + Unpin> Read for SyncIo<IO> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut rb = ReadBuf::new(buf);
        self.poll(|io, cx| io.poll_read(cx, &mut rb))?;
        Ok(rb.filled().len())
    }
}

impl<IO: AsyncWrite + Unpin> Write for SyncIo<IO> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.poll(|io, cx| io.poll_write(cx, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.poll(|io, cx| io.poll_flush(cx))
    }
}

/// What an async transport must be: tokio's traits, movable between threads, owned.
pub trait AsyncIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncIo for T {}

/// The adapter under a connection. Every transport handed to a backend here is a `SyncIo<IO>`
/// (the type is fixed by `TlsStream<IO>`), so its absence is a bug, not an input.
fn expect_sync<T>(found: Option<T>) -> T {
    found.expect("the transport of an async connection is its SyncIo")
}

/// Runs the handshake to its end, resuming it whenever the transport is ready.
async fn drive<IO: AsyncIo>(mid: Box<dyn MidHandshake>) -> Result<Box<dyn DynTlsStream>, Error> {
    let mut mid = Some(mid);
    std::future::poll_fn(move |cx| {
        let Some(mut handshake) = mid.take() else {
            return Poll::Ready(Err(Error::Config(
                "the handshake was polled after it ended".into(),
            )));
        };
        expect_sync(handshake.transport_mut::<SyncIo<IO>>()).set_waker(cx);
        match handshake.resume() {
            Ok(Handshaking::Done(stream)) => Poll::Ready(Ok(stream)),
            Ok(Handshaking::WouldBlock(handshake)) => {
                mid = Some(handshake);
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    })
    .await
}

/// Session writes started by reads after a handshake, waited for by the next `connect`.
type Pending = Arc<Mutex<Vec<JoinHandle<()>>>>;

/// Makes client connections on tokio, over any backend: tokio-rustls's `TlsConnector` shape.
///
/// Cheap to clone; clones share the client (and so its session cache).
#[derive(Clone, Debug)]
pub struct TlsConnector {
    client: Arc<dyn ClientContext>,
    pending: Pending,
}

impl TlsConnector {
    /// A connector over a client context (from [`crate::backends::client`], or any backend's
    /// `Client` in an `Arc`).
    pub fn new(client: Arc<dyn ClientContext>) -> Self {
        Self {
            client,
            pending: Pending::default(),
        }
    }

    /// The client underneath.
    pub fn client(&self) -> &Arc<dyn ClientContext> {
        &self.client
    }

    /// Runs the client side of a handshake on `io`, offering a cached session when the policy
    /// allows; the same decisions as the backend's blocking `connect`.
    ///
    /// The future owns what it needs (`params` is copied), so it can be spawned. Dropped
    /// half-way, it leaves the session store as it was.
    pub fn connect<IO: AsyncIo>(
        &self,
        params: &ClientParams,
        io: IO,
    ) -> impl Future<Output = Result<TlsStream<IO>, Error>> + Send + 'static {
        let client = self.client.clone();
        let pending = self.pending.clone();
        let params = params.clone();
        async move {
            let store = client.client_settings().store.clone();
            let deferred = if store.blocks() {
                // Sessions stored by earlier connections' reads go in before this lookup.
                let earlier: Vec<_> = std::mem::take(&mut *lock(&pending));
                for write in earlier {
                    let _ = write.await;
                }
                let key = client
                    .client_settings()
                    .cache_key(client.backend(), &params);
                let lookup = store.clone();
                let deferred = ::tokio::task::spawn_blocking(move || {
                    DeferredStore::prefetch(lookup.as_ref(), key)
                })
                .await
                .map_err(|e| Error::Io(io::Error::other(format!("session lookup: {e}"))))?;
                Some(Arc::new(deferred))
            } else {
                None
            };
            let mid = client.start_connect(
                Box::new(SyncIo::new(io)),
                &params,
                deferred.clone().map(|d| d as Arc<dyn SessionStore>),
            )?;
            let inner = drive::<IO>(mid).await?;
            let writes = deferred.map(|d| Writes { deferred: d, store });
            if let Some(w) = &writes {
                w.flush_now().await;
            }
            Ok(TlsStream::new(inner, writes, Some(pending)))
        }
    }
}

impl From<Arc<dyn ClientContext>> for TlsConnector {
    fn from(client: Arc<dyn ClientContext>) -> Self {
        Self::new(client)
    }
}

macro_rules! connector_from {
    ($feature:literal, $client:ty, $server:ty) => {
        #[cfg(feature = $feature)]
        impl From<$client> for TlsConnector {
            fn from(client: $client) -> Self {
                Self::new(Arc::new(client))
            }
        }

        #[cfg(feature = $feature)]
        impl From<$server> for TlsAcceptor {
            fn from(server: $server) -> Self {
                Self::new(Arc::new(server))
            }
        }
    };
}

connector_from!(
    "openssl",
    tlsresume_openssl::Client,
    tlsresume_openssl::Server
);
connector_from!("gnutls", tlsresume_gnutls::Client, tlsresume_gnutls::Server);
connector_from!("rustls", tlsresume_rustls::Client, tlsresume_rustls::Server);

/// Accepts server connections on tokio, over any backend: tokio-rustls's `TlsAcceptor` shape.
#[derive(Clone, Debug)]
pub struct TlsAcceptor {
    server: Arc<dyn ServerContext>,
}

impl TlsAcceptor {
    /// An acceptor over a server context (from [`crate::backends::server`], or any backend's
    /// `Server` in an `Arc`).
    pub fn new(server: Arc<dyn ServerContext>) -> Self {
        Self { server }
    }

    /// The server underneath.
    pub fn server(&self) -> &Arc<dyn ServerContext> {
        &self.server
    }

    /// Runs the server side of a handshake on `io`; the same decisions as the backend's
    /// blocking `accept`. A ticket-key refresh that is due (a rotation, a stand-in master secret
    /// asked about again) is made first, off the runtime.
    pub fn accept<IO: AsyncIo>(
        &self,
        params: &ServerParams,
        io: IO,
    ) -> impl Future<Output = Result<TlsStream<IO>, Error>> + Send + 'static {
        let server = self.server.clone();
        let params = params.clone();
        async move {
            if server.ticket_keys_due() {
                // A failure leaves the keys as they were: the callbacks then answer as they
                // would have (no ticket), so it is not an error here.
                let refresh = server.clone();
                let _ = ::tokio::task::spawn_blocking(move || refresh.refresh_ticket_keys()).await;
            }
            let mid = server.start_accept(Box::new(SyncIo::new(io)), &params)?;
            let inner = drive::<IO>(mid).await?;
            Ok(TlsStream::new(inner, None, None))
        }
    }
}

impl From<Arc<dyn ServerContext>> for TlsAcceptor {
    fn from(server: Arc<dyn ServerContext>) -> Self {
        Self::new(server)
    }
}

/// A connection's collected session writes and the store they go to.
#[derive(Debug)]
struct Writes {
    deferred: Arc<DeferredStore>,
    store: Arc<dyn SessionStore>,
}

impl Writes {
    fn task(&self) -> impl FnOnce() + Send + 'static {
        let deferred = self.deferred.clone();
        let store = self.store.clone();
        // A failed write loses the session, never the connection.
        move || {
            let _ = deferred.flush_to(store.as_ref());
        }
    }

    /// Writes what was collected, waiting for it (a blocking task runs to its end even if
    /// this future is dropped, so an entry is never half written).
    async fn flush_now(&self) {
        if self.deferred.has_ops() {
            let _ = ::tokio::task::spawn_blocking(self.task()).await;
        }
    }

    /// Starts writing what was collected, on a blocking task.
    fn flush_later(&self, pending: Option<&Pending>) {
        if !self.deferred.has_ops() {
            return;
        }
        match ::tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let write = handle.spawn_blocking(self.task());
                if let Some(pending) = pending {
                    let mut pending = lock(pending);
                    pending.retain(|w| !w.is_finished());
                    pending.push(write);
                }
            }
            // Polled outside a runtime: nothing to keep from blocking.
            Err(_) => (self.task())(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An established TLS connection on tokio: `AsyncRead + AsyncWrite`, with what the handshake
/// (and any tickets since) produced.
pub struct TlsStream<IO> {
    inner: Box<dyn DynTlsStream>,
    writes: Option<Writes>,
    pending: Option<Pending>,
    shutdown_sent: bool,
    _io: std::marker::PhantomData<fn() -> IO>,
}

impl<IO> fmt::Debug for TlsStream<IO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<IO: AsyncIo> TlsStream<IO> {
    fn new(inner: Box<dyn DynTlsStream>, writes: Option<Writes>, pending: Option<Pending>) -> Self {
        Self {
            inner,
            writes,
            pending,
            shutdown_sent: false,
            _io: std::marker::PhantomData,
        }
    }

    /// What the handshake (and any tickets since) produced.
    pub fn info(&self) -> SessionInfo {
        self.inner.info()
    }

    /// The I/O object.
    pub fn get_ref(&self) -> &IO {
        &expect_sync(self.inner.transport::<SyncIo<IO>>()).io
    }

    /// The I/O object, mutable: for socket options. Reading or writing it directly corrupts
    /// the TLS connection.
    pub fn get_mut(&mut self) -> &mut IO {
        &mut self.sync().io
    }

    fn sync(&mut self) -> &mut SyncIo<IO> {
        expect_sync(self.inner.transport_mut::<SyncIo<IO>>())
    }

    /// Runs one call of the inner stream with this task's waker.
    fn with_waker<T>(
        &mut self,
        cx: &Context<'_>,
        f: impl FnOnce(&mut dyn DynTlsStream) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        self.sync().set_waker(cx);
        match f(self.inner.as_mut()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            other => Poll::Ready(other),
        }
    }
}

impl<IO: AsyncIo> AsyncRead for TlsStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = this.with_waker(cx, |s| s.read(buf.initialize_unfilled()));
        // A session that arrived with this read (TLS 1.3) goes to the store off the runtime.
        if let Some(writes) = &this.writes {
            writes.flush_later(this.pending.as_ref());
        }
        match result {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<IO: AsyncIo> AsyncWrite for TlsStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().with_waker(cx, |s| s.write(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().with_waker(cx, |s| s.flush())
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.shutdown_sent {
            match this.with_waker(cx, |s| s.shutdown().and_then(|()| s.flush())) {
                Poll::Ready(Ok(())) => this.shutdown_sent = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Pin::new(&mut this.sync().io).poll_shutdown(cx)
    }
}
