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
//! # By type, or chosen at run time
//!
//! `TlsConnector::from(client)` over a backend's `Client` (and `TlsAcceptor::from(server)`) is
//! generic: the connection is a [`TlsStream<IO, S>`](TlsStream) whose `S` is that backend's
//! `Stream<SyncIo<IO>>` ([`TlsStream::connection`] gives it, with its escape hatch to the
//! library), driven through the backend's `Handshake`, neither boxed, with no look-up by type.
//! `TlsConnector::new(backends::client(kind, …)?)` erases the backend, for a library chosen at
//! run time ([`DynClient`], [`Erased`]); the connection's type is then `TlsStream<IO>`. Both
//! give named futures ([`Connect`], [`Accept`]), `get_ref` / `get_mut` (the I/O object), and
//! `into_inner` (the I/O object back, the TLS connection dropped).
//!
//! # Deadlines
//!
//! A tokio I/O object has no read timeout of its own, and a socket's idle timeout would restart
//! with every byte anyway: `TlsAcceptor::handshake_timeout(limit)` (and the connector's, or
//! [`Handshake::timeout`] on one handshake) fails a handshake not finished `limit` after it
//! started with an [`Error::Io`] of kind `TimedOut`, "the handshake deadline passed", so a peer
//! dribbling its bytes holds a connection no longer than that. A server facing the Internet
//! wants one (`tlsresume serve` uses 30 s for its blocking handshakes).
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
//! `gnutls_handshake` is called again, rustls's handshake loop stops and goes on (tokio-rustls
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
//! - **Ticket keys.** The servers ask their [`KeyRing`](crate::keys::key_ring::KeyRing) for keys inside the
//!   ticket callbacks; while the ring holds a usable key it never waits there on its
//!   [`KeySource`](crate::KeySource): it rotates with the key the source fetched ahead of the
//!   boundary in a thread of its own ([`KeySource::key_now`](crate::KeySource::key_now),
//!   [`KeySource::fetch_ahead`](crate::KeySource::fetch_ahead)), and a ticket sealed with a key
//!   it does not hold yet gets a full handshake at once. Only a ring with no usable key (the
//!   first handshake; after an outage longer than a key's life) must wait: before each
//!   handshake the acceptor checks
//!   [`KeyRing::rotation_due`](crate::keys::key_ring::KeyRing::rotation_due) and, if so, asks on a
//!   `spawn_blocking` thread. GnuTLS derives its keys from a master secret fetched when the
//!   server is made: make a GnuTLS server (or any server over a Redis key source) before the
//!   runtime, or in `spawn_blocking`.
//!
//! A session write that fails after the handshake (the store's disk or Redis failed) loses the
//! session, as in the blocking API, but the connection has already reported `SERVER_TICKET`
//! (the stand-in store took the write).
//!
//! # Per-connection state
//!
//! Each connection's state travels with its handshake and stream, never in a thread-local, so
//! a task may move between worker threads at any await point (only the task's waker is lent
//! through one, for the length of one synchronous call into the backend). On rustls that means a
//! configuration per connection for servers (its own ticketer) and a verifier per connection
//! for clients, except that a connection offering a stored session runs under the verifier
//! kept with that session (rustls resumes a session under no other), pointed at this
//! connection; a stored TLS 1.2 session is lent to one handshake at a time, and a second
//! connection to the same server starting while the first is still handshaking makes a full
//! handshake instead.

use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::task::JoinHandle;

use tlsresume_core::cache::deferred::DeferredStore;
use tlsresume_core::contract::{ClientContract, TlsClient, TlsConnection, TlsHandshake, TlsServer};
use tlsresume_core::{
    BackendKind, ClientContext, ClientParams, ClientSettings, Error, Handshaking, MidHandshake,
    ServerContext, ServerParams, SessionInfo, SessionStore, TlsStream as DynTlsStream,
};

/// The synchronous transport the backends run over: the tokio I/O object, polled with the
/// waker of the task that drives the connection; "not ready" is `WouldBlock`.
///
/// The waker is not kept here: the call a task's poll makes into the backend runs inside
/// `with_task`, which lends the task's waker to every `SyncIo` polled during that call through
/// a thread-local and takes it back when the call returns (so reaching it costs no look-up of
/// the transport through the backend's stream, and no connection holds a waker while idle).
pub struct SyncIo<IO> {
    /// Taken only by [`TlsStream::into_inner`], which consumes the stream.
    io: Option<IO>,
}

::scoped_tls::scoped_thread_local! {
    /// The waker of the task whose poll is running a backend call on this thread, lent by
    /// `with_task` for that call only (never across an await point): borrowed, not cloned, as
    /// tokio-openssl and tokio-rustls lend the task's `Context` (no reference count touched
    /// per poll).
    static TASK_WAKER: Waker
}

/// Runs `call` (one synchronous call into a backend) with `cx`'s waker lent to the [`SyncIo`]s
/// it polls; the waker lent before (a TLS stream whose I/O object is another one) is restored
/// afterwards, unwinding included.
fn with_task<T>(cx: &Context<'_>, call: impl FnOnce() -> T) -> T {
    TASK_WAKER.set(cx.waker(), call)
}

impl<IO> fmt::Debug for SyncIo<IO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncIo").finish_non_exhaustive()
    }
}

impl<IO> SyncIo<IO> {
    fn new(io: IO) -> Self {
        Self { io: Some(io) }
    }

    /// The I/O object (there until `into_inner` consumes the stream around it).
    fn io(&self) -> &IO {
        match &self.io {
            Some(io) => io,
            None => unreachable!("only TlsStream::into_inner takes the I/O object, consuming it"),
        }
    }

    fn io_mut(&mut self) -> &mut IO {
        match &mut self.io {
            Some(io) => io,
            None => unreachable!("only TlsStream::into_inner takes the I/O object, consuming it"),
        }
    }

    fn poll<T>(
        &mut self,
        f: impl FnOnce(Pin<&mut IO>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> io::Result<T>
    where
        IO: Unpin,
    {
        let Some(io) = &mut self.io else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        // The waker lent by the task's poll. Outside a poll (a backend writing as its stream is
        // dropped) there is none: tried, and nobody woken. An I/O object that is itself a TLS
        // stream lends its own for its call (and restores this one after).
        let run = |waker: &Waker| f(Pin::new(io), &mut Context::from_waker(waker));
        let polled = if TASK_WAKER.is_set() {
            TASK_WAKER.with(run)
        } else {
            run(Waker::noop())
        };
        match polled {
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

    /// One gathered write when the I/O object takes one: rustls queues a flight as several
    /// records and writes them with `write_vectored`, whose default sends only the first
    /// (measured: a resumed TLS 1.2 handshake made 8 `sendto` instead of 4 `writev`).
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.poll(|io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.poll(|io, cx| io.poll_flush(cx))
    }
}

/// What an async transport must be: tokio's traits, movable between threads, owned.
pub trait AsyncIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncIo for T {}

/// A connection the async layer reads and writes over a [`SyncIo`]: a backend's `Stream` by
/// type, or one chosen at run time ([`Erased`]).
pub trait AsyncConnection<IO>: Read + Write {
    /// What the handshake (and any tickets since) produced.
    fn info(&self) -> &SessionInfo;

    /// Sends close_notify.
    fn shutdown(&mut self) -> io::Result<()>;

    /// The adapter over the I/O object.
    fn adapter(&self) -> &SyncIo<IO>;

    /// The adapter, mutable.
    fn adapter_mut(&mut self) -> &mut SyncIo<IO>;
}

impl<T, IO> AsyncConnection<IO> for T
where
    T: TlsConnection<Transport = SyncIo<IO>>,
{
    fn info(&self) -> &SessionInfo {
        TlsConnection::info(self)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        TlsConnection::shutdown(self)
    }

    fn adapter(&self) -> &SyncIo<IO> {
        TlsConnection::get_ref(self)
    }

    fn adapter_mut(&mut self) -> &mut SyncIo<IO> {
        TlsConnection::get_mut(self)
    }
}

/// A handshake the async layer drives over a [`SyncIo`]: a backend's `Handshake` by type, or
/// one chosen at run time ([`ErasedHandshake`]).
pub trait AsyncHandshake<IO>: Sized {
    /// The connection a finished handshake gives.
    type Stream: AsyncConnection<IO>;

    /// Drives the handshake as far as the I/O object allows (the task's waker reaches the
    /// adapter through `with_task`, so the handshake is never asked for its transport).
    fn resume(self) -> Result<Handshaking<Self, Self::Stream>, Error>;
}

impl<H, IO> AsyncHandshake<IO> for H
where
    H: TlsHandshake<Transport = SyncIo<IO>>,
{
    type Stream = H::Connection;

    fn resume(self) -> Result<Handshaking<Self, Self::Stream>, Error> {
        TlsHandshake::resume(self)
    }
}

/// The adapter under a connection chosen at run time. Every transport handed to a run-time
/// backend here is a `SyncIo<IO>` (the type is fixed by the [`Erased`] around it), so its
/// absence is a bug, not an input: the one place the async layer looks a transport up by type
/// is this, and only for a backend chosen at run time, and only for `TlsStream::get_ref`,
/// `get_mut`, `poll_shutdown` and `into_inner` (not on reads and writes).
fn expect_sync<T>(found: Option<T>) -> T {
    found.expect("the transport of an async connection is its SyncIo")
}

/// A handshake of a backend chosen at run time, over a `SyncIo<IO>`.
pub struct ErasedHandshake<IO> {
    mid: Box<dyn MidHandshake>,
    _io: PhantomData<fn() -> IO>,
}

impl<IO> fmt::Debug for ErasedHandshake<IO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErasedHandshake")
            .field("mid", &self.mid)
            .finish()
    }
}

impl<IO: AsyncIo> AsyncHandshake<IO> for ErasedHandshake<IO> {
    type Stream = Erased<IO>;

    fn resume(self) -> Result<Handshaking<Self, Self::Stream>, Error> {
        Ok(match self.mid.resume()? {
            Handshaking::Done(stream) => Handshaking::Done(Erased {
                stream,
                _io: PhantomData,
            }),
            Handshaking::WouldBlock(mid) => Handshaking::WouldBlock(Self {
                mid,
                _io: PhantomData,
            }),
        })
    }
}

/// A connection of a backend chosen at run time, over a `SyncIo<IO>`.
pub struct Erased<IO> {
    stream: Box<dyn DynTlsStream>,
    _io: PhantomData<fn() -> IO>,
}

impl<IO> fmt::Debug for Erased<IO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Erased")
            .field("stream", &self.stream)
            .finish()
    }
}

impl<IO> Read for Erased<IO> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl<IO> Write for Erased<IO> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl<IO: AsyncIo> AsyncConnection<IO> for Erased<IO> {
    fn info(&self) -> &SessionInfo {
        self.stream.session_info()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.stream.shutdown()
    }

    fn adapter(&self) -> &SyncIo<IO> {
        expect_sync(self.stream.transport::<SyncIo<IO>>())
    }

    fn adapter_mut(&mut self) -> &mut SyncIo<IO> {
        expect_sync(self.stream.transport_mut::<SyncIo<IO>>())
    }
}

/// Runs a handshake to its end, resuming it whenever the I/O object is ready.
async fn drive<IO, H>(handshake: H) -> Result<H::Stream, Error>
where
    H: AsyncHandshake<IO>,
{
    let mut pending = Some(handshake);
    std::future::poll_fn(move |cx| {
        let Some(handshake) = pending.take() else {
            return Poll::Ready(Err(Error::Config(
                "the handshake was polled after it ended".into(),
            )));
        };
        match with_task(cx, || handshake.resume()) {
            Ok(Handshaking::Done(stream)) => Poll::Ready(Ok(stream)),
            Ok(Handshaking::WouldBlock(handshake)) => {
                pending = Some(handshake);
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    })
    .await
}

/// A client a [`TlsConnector`] drives: a backend's `Client` by type (no type erasure: the
/// stream is that backend's `Stream`), or one chosen at run time ([`DynClient`]).
pub trait AsyncClient: Send + Sync + 'static {
    /// The handshake over `SyncIo<IO>`.
    type Handshake<IO: AsyncIo>: AsyncHandshake<IO>;

    /// Which library is underneath.
    fn backend(&self) -> BackendKind;

    /// The settings it was made from.
    fn client_settings(&self) -> &ClientSettings;

    /// Sets a handshake up on `io`, with `store` in place of the settings' store.
    fn start_async<IO: AsyncIo>(
        &self,
        io: SyncIo<IO>,
        params: &ClientParams,
        store: Option<Arc<dyn SessionStore>>,
    ) -> Result<Self::Handshake<IO>, Error>;
}

impl<C: TlsClient> AsyncClient for C {
    type Handshake<IO: AsyncIo> = C::Handshake<SyncIo<IO>>;

    fn backend(&self) -> BackendKind {
        C::KIND
    }

    fn client_settings(&self) -> &ClientSettings {
        TlsClient::settings(self)
    }

    fn start_async<IO: AsyncIo>(
        &self,
        io: SyncIo<IO>,
        params: &ClientParams,
        store: Option<Arc<dyn SessionStore>>,
    ) -> Result<Self::Handshake<IO>, Error> {
        self.start_with_store(io, params, store)
    }
}

/// A client chosen at run time ([`crate::backends::client`]), for a [`TlsConnector`].
#[derive(Clone, Debug)]
pub struct DynClient(pub Arc<dyn ClientContext>);

impl AsyncClient for DynClient {
    type Handshake<IO: AsyncIo> = ErasedHandshake<IO>;

    fn backend(&self) -> BackendKind {
        self.0.backend()
    }

    fn client_settings(&self) -> &ClientSettings {
        self.0.client_settings()
    }

    fn start_async<IO: AsyncIo>(
        &self,
        io: SyncIo<IO>,
        params: &ClientParams,
        store: Option<Arc<dyn SessionStore>>,
    ) -> Result<Self::Handshake<IO>, Error> {
        Ok(ErasedHandshake {
            mid: self.0.start_connect(Box::new(io), params, store)?,
            _io: PhantomData,
        })
    }
}

/// A server a [`TlsAcceptor`] drives: a backend's `Server` by type, or one chosen at run time
/// ([`DynServer`]).
pub trait AsyncServer: Send + Sync + 'static {
    /// The handshake over `SyncIo<IO>`.
    type Handshake<IO: AsyncIo>: AsyncHandshake<IO>;

    /// Whether the next handshake would ask the key source first (which may block).
    fn ticket_keys_due(&self) -> bool;

    /// Does what is due (may block on the key source).
    fn refresh_ticket_keys(&self) -> Result<(), Error>;

    /// Sets a handshake up on `io`.
    fn start_async<IO: AsyncIo>(
        &self,
        io: SyncIo<IO>,
        params: &ServerParams,
    ) -> Result<Self::Handshake<IO>, Error>;
}

impl<T: TlsServer> AsyncServer for T {
    type Handshake<IO: AsyncIo> = T::Handshake<SyncIo<IO>>;

    fn ticket_keys_due(&self) -> bool {
        TlsServer::ticket_keys_due(self)
    }

    fn refresh_ticket_keys(&self) -> Result<(), Error> {
        TlsServer::refresh_ticket_keys(self)
    }

    fn start_async<IO: AsyncIo>(
        &self,
        io: SyncIo<IO>,
        params: &ServerParams,
    ) -> Result<Self::Handshake<IO>, Error> {
        self.start_accept(io, params)
    }
}

/// A server chosen at run time ([`crate::backends::server`]), for a [`TlsAcceptor`].
#[derive(Clone, Debug)]
pub struct DynServer(pub Arc<dyn ServerContext>);

impl AsyncServer for DynServer {
    type Handshake<IO: AsyncIo> = ErasedHandshake<IO>;

    fn ticket_keys_due(&self) -> bool {
        self.0.ticket_keys_due()
    }

    fn refresh_ticket_keys(&self) -> Result<(), Error> {
        self.0.refresh_ticket_keys()
    }

    fn start_async<IO: AsyncIo>(
        &self,
        io: SyncIo<IO>,
        params: &ServerParams,
    ) -> Result<Self::Handshake<IO>, Error> {
        Ok(ErasedHandshake {
            mid: self.0.start_accept(Box::new(io), params)?,
            _io: PhantomData,
        })
    }
}

/// The connection type a client or server of type `K` gives over `IO`.
pub type StreamOf<K, IO> = <<K as AsyncClient>::Handshake<IO> as AsyncHandshake<IO>>::Stream;

/// The connection type a server of type `K` gives over `IO`.
pub type ServerStreamOf<K, IO> = <<K as AsyncServer>::Handshake<IO> as AsyncHandshake<IO>>::Stream;

/// Session writes started by reads after a handshake, waited for by the next `connect`.
type Pending = Arc<Mutex<Vec<JoinHandle<()>>>>;

/// Makes client connections on tokio: tokio-rustls's `TlsConnector` shape, over a backend's
/// `Client` by type (`TlsConnector::from(client)`: the streams are that backend's, nothing is
/// erased) or one chosen at run time (`TlsConnector::new(backends::client(kind, …)?)`).
///
/// Cheap to clone; clones share the client (and so its session cache).
pub struct TlsConnector<C = DynClient> {
    client: Arc<C>,
    pending: Pending,
    handshake_timeout: Option<Duration>,
}

impl<C> Clone for TlsConnector<C> {
    fn clone(&self) -> Self {
        Self {
            client: Arc::clone(&self.client),
            pending: Arc::clone(&self.pending),
            handshake_timeout: self.handshake_timeout,
        }
    }
}

impl<C: fmt::Debug> fmt::Debug for TlsConnector<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("client", &self.client)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsConnector<DynClient> {
    /// A connector over a client chosen at run time ([`crate::backends::client`], or any
    /// backend's `Client` in an `Arc`).
    pub fn new(client: Arc<dyn ClientContext>) -> Self {
        Self::with(DynClient(client))
    }

    /// The client underneath.
    pub fn client(&self) -> &Arc<dyn ClientContext> {
        &self.client.0
    }
}

impl<C: TlsClient> From<C> for TlsConnector<C> {
    fn from(client: C) -> Self {
        Self::with(client)
    }
}

impl From<Arc<dyn ClientContext>> for TlsConnector<DynClient> {
    fn from(client: Arc<dyn ClientContext>) -> Self {
        Self::new(client)
    }
}

impl<C: AsyncClient> TlsConnector<C> {
    fn with(client: C) -> Self {
        Self {
            client: Arc::new(client),
            pending: Pending::default(),
            handshake_timeout: None,
        }
    }

    /// Every handshake of this connector (and its clones made from now on) fails with an
    /// [`Error::Io`] of kind `TimedOut`, "the handshake deadline passed", when it has not
    /// finished `limit` after `connect` was first polled, however the server paces its bytes;
    /// see [`Handshake::timeout`]. None by default.
    pub fn handshake_timeout(mut self, limit: Duration) -> Self {
        self.handshake_timeout = Some(limit);
        self
    }

    /// Runs the client side of a handshake on `io`, offering a cached session when the policy
    /// allows; the same decisions as the backend's blocking `connect`.
    ///
    /// The handshake is set up as `connect` is called (the session store looked up, the
    /// library's connection made), as tokio-rustls's `connect` does; over a store that blocks,
    /// the lookup is made off the runtime when the future is first polled instead. Either way
    /// the future owns what it needs, so it can be spawned, and a failure to set up is what it
    /// returns. Dropped half-way, it leaves the session store as it was.
    pub fn connect<IO: AsyncIo>(&self, params: &ClientParams, io: IO) -> Connect<IO, C>
    where
        C::Handshake<IO>: Send + 'static,
        StreamOf<C, IO>: Send + 'static,
    {
        let limit = self.handshake_timeout;
        // A store that does not block is looked up as the handshake is set up, here, as
        // tokio-rustls sets its connection up in `connect`: the future holds the handshake
        // alone (no copy of the parameters, no count of the client raised), and a failure to
        // set it up is what its first poll returns.
        if !self.client.client_settings().store.blocks() {
            let started = self.client.start_async(SyncIo::new(io), params, None);
            return Handshake::within(limit, run(started));
        }
        let client = Arc::clone(&self.client);
        // A store that blocks has its lookup and writes made off the runtime: the connection
        // holds the store and the connector's writes under way.
        let pending = Arc::clone(&self.pending);
        let params = params.clone();
        Handshake::within(limit, async move {
            // Sessions stored by earlier connections' reads go in before this lookup.
            let earlier: Vec<_> = std::mem::take(&mut *lock(&pending));
            for write in earlier {
                let _ = write.await;
            }
            let key = client
                .client_settings()
                .cache_key(client.backend(), &params);
            let lookup = Arc::clone(&client.client_settings().store);
            let deferred = ::tokio::task::spawn_blocking(move || {
                DeferredStore::prefetch(lookup.as_ref(), key)
            })
            .await
            .map_err(|e| Error::Io(io::Error::other(format!("session lookup: {e}"))))?;
            let deferred = Arc::new(deferred);
            let handshake = client.start_async(
                SyncIo::new(io),
                &params,
                Some(Arc::clone(&deferred) as Arc<dyn SessionStore>),
            )?;
            let inner = drive(handshake).await?;
            let writes = Box::new(Writes {
                deferred,
                store: Arc::clone(&client.client_settings().store),
                pending,
            });
            writes.flush_now().await;
            Ok(TlsStream::new(inner, Some(writes)))
        })
    }
}

/// A handshake running on tokio, giving `T`: the future of [`TlsConnector::connect`]
/// ([`Connect`]) and of [`TlsAcceptor::accept`] ([`Accept`]).
pub struct Handshake<T>(Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'static>>);

impl<T: 'static> Handshake<T> {
    fn within(
        limit: Option<Duration>,
        run: impl Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Self {
        let this = Self(Box::pin(run));
        match limit {
            Some(limit) => this.timeout(limit),
            None => this,
        }
    }

    /// This handshake, failing with an [`Error::Io`] of kind `TimedOut`, "the handshake
    /// deadline passed", when it has not finished `limit` after it is first polled, however the
    /// peer paces its bytes (a socket's idle timeout restarts with each byte; this does not).
    /// The handshake is dropped then: the session store is left as it was, and the I/O object
    /// is closed. (`TlsConnector::handshake_timeout` and `TlsAcceptor::handshake_timeout` set
    /// it for every handshake.)
    ///
    /// It runs on tokio's timer: on a runtime built without it (no `enable_time` or
    /// `enable_all`; `#[tokio::main]` has it) the handshake fails with an [`Error::Config`]
    /// saying so (tokio reports the missing timer as a panic, which is caught here).
    pub fn timeout(self, limit: Duration) -> Self {
        let mut run = self.0;
        Self(Box::pin(async move {
            let Ok(sleep) = std::panic::catch_unwind(|| ::tokio::time::sleep(limit)) else {
                return Err(Error::Config(
                    "a handshake timeout needs tokio's timer: build the runtime with \
                     enable_time() or enable_all()"
                        .into(),
                ));
            };
            let mut sleep = std::pin::pin!(sleep);
            std::future::poll_fn(|cx| {
                if let Poll::Ready(done) = run.as_mut().poll(cx) {
                    return Poll::Ready(done);
                }
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(Error::Io(
                        tlsresume_core::deadline::deadline_passed("handshake"),
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await
        }))
    }
}

impl<T> Future for Handshake<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for Handshake<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake").finish_non_exhaustive()
    }
}

/// The future of [`TlsConnector::connect`]: a client handshake on tokio.
pub type Connect<IO, C = DynClient> = Handshake<TlsStream<IO, StreamOf<C, IO>>>;

/// The future of [`TlsAcceptor::accept`]: a server handshake on tokio.
pub type Accept<IO, S = DynServer> = Handshake<TlsStream<IO, ServerStreamOf<S, IO>>>;

/// Accepts server connections on tokio: tokio-rustls's `TlsAcceptor` shape, over a backend's
/// `Server` by type (`TlsAcceptor::from(server)`) or one chosen at run time
/// (`TlsAcceptor::new(backends::server(kind, …)?)`).
pub struct TlsAcceptor<S = DynServer> {
    served: Arc<Served<S>>,
    handshake_timeout: Option<Duration>,
}

/// The server and its refresh lock, shared by an acceptor's clones and its handshakes (one
/// `Arc` to count per handshake).
struct Served<S> {
    server: S,
    /// Held while a ticket-key refresh runs.
    refreshing: ::tokio::sync::Mutex<()>,
}

impl<S> TlsAcceptor<S> {
    fn over(server: S) -> Self {
        Self {
            served: Arc::new(Served {
                server,
                refreshing: ::tokio::sync::Mutex::new(()),
            }),
            handshake_timeout: None,
        }
    }
}

impl<S> Clone for TlsAcceptor<S> {
    fn clone(&self) -> Self {
        Self {
            served: Arc::clone(&self.served),
            handshake_timeout: self.handshake_timeout,
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for TlsAcceptor<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("server", &self.served.server)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

impl TlsAcceptor<DynServer> {
    /// An acceptor over a server chosen at run time ([`crate::backends::server`], or any
    /// backend's `Server` in an `Arc`).
    pub fn new(server: Arc<dyn ServerContext>) -> Self {
        Self::over(DynServer(server))
    }

    /// The server underneath.
    pub fn server(&self) -> &Arc<dyn ServerContext> {
        &self.served.server.0
    }
}

impl<S: TlsServer> From<S> for TlsAcceptor<S> {
    fn from(server: S) -> Self {
        Self::over(server)
    }
}

impl From<Arc<dyn ServerContext>> for TlsAcceptor<DynServer> {
    fn from(server: Arc<dyn ServerContext>) -> Self {
        Self::new(server)
    }
}

impl<S: AsyncServer> TlsAcceptor<S> {
    /// Every handshake of this acceptor (and its clones made from now on) fails with an
    /// [`Error::Io`] of kind `TimedOut`, "the handshake deadline passed", when it has not
    /// finished `limit` after `accept` was first polled: a client dribbling its ClientHello a
    /// byte at a time holds its connection no longer than that. See [`Handshake::timeout`].
    /// None by default; a server facing the Internet wants one (`tlsresume serve` uses 30 s).
    pub fn handshake_timeout(mut self, limit: Duration) -> Self {
        self.handshake_timeout = Some(limit);
        self
    }

    /// Runs the server side of a handshake on `io`; the same decisions as the backend's
    /// blocking `accept`. A ticket-key refresh that is due (a rotation, a stand-in master secret
    /// asked about again) is made first, off the runtime: one at a time, the handshakes that
    /// find it due meanwhile wait for that one (on the runtime, not each on a blocking thread
    /// of its own: a burst of connections when the keys fall due made a thread each). With none
    /// due, the handshake is set up as `accept` is called, as tokio-rustls's `accept` does; a
    /// failure to set up is what the future returns.
    pub fn accept<IO: AsyncIo>(&self, params: &ServerParams, io: IO) -> Accept<IO, S>
    where
        S::Handshake<IO>: Send + 'static,
        ServerStreamOf<S, IO>: Send + 'static,
    {
        // With no refresh of the ticket keys due, the handshake is set up here, as tokio-rustls
        // sets its connection up in `accept`: the future holds the handshake alone (no copy of
        // the parameters, no count of the server raised), and a failure to set it up is what
        // its first poll returns. (Keys falling due from here on are met as they would be
        // during the handshake itself.)
        if !self.served.server.ticket_keys_due() {
            let started = self.served.server.start_async(SyncIo::new(io), params);
            return Handshake::within(self.handshake_timeout, run(started));
        }
        let served = Arc::clone(&self.served);
        let params = params.clone();
        Handshake::within(self.handshake_timeout, async move {
            if served.server.ticket_keys_due() {
                let _one = served.refreshing.lock().await;
                // Made by the refresh this handshake waited for, or still due.
                if served.server.ticket_keys_due() {
                    // A failure leaves the keys as they were: the callbacks then answer as
                    // they would have (no ticket), so it is not an error here.
                    let refresh = Arc::clone(&served);
                    let _ =
                        ::tokio::task::spawn_blocking(move || refresh.server.refresh_ticket_keys())
                            .await;
                }
            }
            run(served.server.start_async(SyncIo::new(io), &params)).await
        })
    }
}

/// Drives a handshake set up already (or answers the failure to set it up) to its stream, one
/// with no session writes to carry: the tail of every `accept`, and of `connect` over a store
/// that does not block.
async fn run<IO: AsyncIo, H: AsyncHandshake<IO>>(
    started: Result<H, Error>,
) -> Result<TlsStream<IO, H::Stream>, Error> {
    let inner = drive(started?).await?;
    Ok(TlsStream::new(inner, None))
}

/// A connection's collected session writes, the store they go to, and its connector's list
/// of writes under way (boxed in the stream: only a store that blocks has them).
#[derive(Debug)]
struct Writes {
    deferred: Arc<DeferredStore>,
    store: Arc<dyn SessionStore>,
    pending: Pending,
}

impl Writes {
    fn task(&self) -> impl FnOnce() + Send + 'static {
        let deferred = Arc::clone(&self.deferred);
        let store = Arc::clone(&self.store);
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
    fn flush_later(&self) {
        if !self.deferred.has_ops() {
            return;
        }
        match ::tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let write = handle.spawn_blocking(self.task());
                let mut pending = lock(&self.pending);
                pending.retain(|w| !w.is_finished());
                pending.push(write);
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
/// (and any tickets since) produced. `S` is the backend's stream over the [`SyncIo`] adapter
/// (`tlsresume::rustls::Stream<SyncIo<IO>>`, …) when the backend was chosen by type, and
/// [`Erased`] when it was chosen at run time.
pub struct TlsStream<IO, S = Erased<IO>> {
    inner: S,
    writes: Option<Box<Writes>>,
    shutdown_sent: bool,
    _io: PhantomData<fn() -> IO>,
}

impl<IO, S: fmt::Debug> fmt::Debug for TlsStream<IO, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<IO: AsyncIo, S: AsyncConnection<IO>> TlsStream<IO, S> {
    fn new(inner: S, writes: Option<Box<Writes>>) -> Self {
        Self {
            inner,
            writes,
            shutdown_sent: false,
            _io: PhantomData,
        }
    }

    /// What the handshake (and any tickets since) produced, borrowed as the blocking
    /// `Stream::info` is (nothing is copied on a handshake's path; `.clone()` it to keep it
    /// past the connection).
    pub fn info(&self) -> &SessionInfo {
        self.inner.info()
    }

    /// The I/O object.
    pub fn get_ref(&self) -> &IO {
        self.inner.adapter().io()
    }

    /// The I/O object, mutable: for socket options. Reading or writing it directly corrupts
    /// the TLS connection.
    pub fn get_mut(&mut self) -> &mut IO {
        self.inner.adapter_mut().io_mut()
    }

    /// The backend's connection (by type: its `Stream`, with its escape hatch to the library).
    pub fn connection(&self) -> &S {
        &self.inner
    }

    /// The I/O object back, the TLS connection dropped without a close_notify (send one first
    /// with `shutdown` when the peer should see a clean end). Session writes still collected
    /// are carried out first.
    pub fn into_inner(mut self) -> IO {
        if let Some(writes) = &self.writes {
            writes.flush_later();
        }
        match self.inner.adapter_mut().io.take() {
            Some(io) => io,
            None => unreachable!("the I/O object is taken only here, and self is consumed"),
        }
    }

    /// Runs one call of the inner stream with this task's waker.
    fn with_waker<T>(
        &mut self,
        cx: &Context<'_>,
        f: impl FnOnce(&mut S) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        let result = with_task(cx, || f(&mut self.inner));
        match result {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            other => Poll::Ready(other),
        }
    }
}

impl<IO: AsyncIo, S: AsyncConnection<IO> + Unpin> AsyncRead for TlsStream<IO, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = this.with_waker(cx, |s| s.read(buf.initialize_unfilled()));
        // A session that arrived with this read (TLS 1.3) goes to the store off the runtime.
        if let Some(writes) = &this.writes {
            writes.flush_later();
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

impl<IO: AsyncIo, S: AsyncConnection<IO> + Unpin> AsyncWrite for TlsStream<IO, S> {
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
        Pin::new(this.inner.adapter_mut().io_mut()).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gathered write reaches the socket in one call (rustls writes a flight's records this
    /// way; the default `write_vectored` would take only the first).
    #[::tokio::test]
    async fn write_vectored_gathers_every_buffer() {
        let (a, mut b) = ::tokio::net::UnixStream::pair().expect("socket pair");
        let mut io = SyncIo::new(a);
        let bufs = [
            io::IoSlice::new(b"first "),
            io::IoSlice::new(b"second "),
            io::IoSlice::new(b"third"),
        ];
        let written = std::future::poll_fn(|cx| match with_task(cx, || io.write_vectored(&bufs)) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            other => Poll::Ready(other),
        })
        .await
        .expect("write");
        assert_eq!(written, 18, "one call writes all three buffers");
        let mut got = [0u8; 18];
        ::tokio::io::AsyncReadExt::read_exact(&mut b, &mut got)
            .await
            .expect("read");
        assert_eq!(&got, b"first second third");
    }
}

/// STARTTLS for the async SMTP client ([`tlsresume_smtp::tokio::Client`]) through a
/// [`TlsConnector`]: the handshake on tokio with a [`tlsresume_smtp::TlsUpgrade`]'s client and
/// parameters (server name, local address, DANE, the EHLO host name as the load-balancer name
/// of the session cache key), so the async client resumes sessions as the blocking one does.
///
/// ```no_run
/// # async fn f(client: std::sync::Arc<dyn tlsresume::ClientContext>) -> Result<(), Box<dyn std::error::Error>> {
/// use tlsresume::smtp::{tokio::Client, ClientConfig, Message, TlsUpgrade};
/// use tlsresume::tokio::SmtpStartTls;
///
/// let smtp = Client::new(ClientConfig::new("client.example.net")?);
/// let tls = SmtpStartTls::new(TlsUpgrade::new(client).server_name("mx.example.org"));
/// let message = Message::new("a@example.net", ["b@example.org"], "Subject: hi\r\n\r\nhello\r\n");
/// let peer = "192.0.2.1:25".parse()?;
/// let d = smtp.connect(peer, Some("mx.example.org"), Some(&tls), &message).await?;
/// println!("{:?} resumed={:?}", d.l_field(), d.tls_info.map(|i| i.resumed));
/// # Ok(()) }
/// ```
#[cfg(feature = "smtp")]
#[cfg_attr(docsrs, doc(cfg(feature = "smtp")))]
#[derive(Clone, Debug)]
pub struct SmtpStartTls {
    connector: TlsConnector,
    upgrade: tlsresume_smtp::TlsUpgrade,
}

#[cfg(feature = "smtp")]
impl SmtpStartTls {
    /// STARTTLS with `upgrade`'s client and parameters, on tokio.
    pub fn new(upgrade: tlsresume_smtp::TlsUpgrade) -> Self {
        Self {
            connector: TlsConnector::new(Arc::clone(upgrade.client())),
            upgrade,
        }
    }

    /// Fails a handshake not finished `limit` after it started
    /// ([`TlsConnector::handshake_timeout`]).
    pub fn handshake_timeout(mut self, limit: Duration) -> Self {
        self.connector = self.connector.handshake_timeout(limit);
        self
    }

    /// The parameters' source.
    pub fn upgrade(&self) -> &tlsresume_smtp::TlsUpgrade {
        &self.upgrade
    }
}

#[cfg(feature = "smtp")]
impl<IO: AsyncIo> tlsresume_smtp::tokio::AsyncStartTls<IO> for SmtpStartTls {
    type Stream = TlsStream<IO>;
    type Error = Error;

    async fn upgrade(
        &self,
        plain: IO,
        context: &tlsresume_smtp::UpgradeContext<'_>,
    ) -> Result<TlsStream<IO>, Error> {
        let params = self.upgrade.params(context)?;
        self.connector.connect(&params, plain).await
    }

    fn classify(error: &Error) -> tlsresume_smtp::ErrorClass {
        tlsresume_smtp::ErrorClass::of_tls(error)
    }

    fn session_info(stream: &TlsStream<IO>) -> Option<SessionInfo> {
        Some(stream.info().clone())
    }
}
