//! The type-erased seams, for a backend chosen at run time: [`Transport`], [`TlsStream`],
//! [`ServerContext`], [`ClientContext`], [`MidHandshake`] and [`Handshaking`]. Every backend has
//! them through the generic contract ([`crate::contract`]).

use core::any::Any;
use core::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;

use crate::cache::store::SessionStore;
use crate::clock::SharedClock;
use crate::error::Error;
use crate::info::SessionInfo;
use crate::keys::key_ring::KeyRing;
use crate::kind::BackendKind;
use crate::settings::params::{ClientParams, ServerParams};
use crate::settings::ClientSettings;

/// A byte stream TLS runs over, type-erased: a `TcpStream`, a Unix socket, an in-memory pipe.
///
/// The backends' own `Client::connect` and `Server::accept` take any `Read + Write` value and
/// give it back through `Stream::get_ref`/`get_mut`; this trait is for the run-time choice of
/// backend ([`ClientContext`], [`ServerContext`]), where the stream is a `Box<dyn Transport>`.
pub trait Transport: Read + Write + Send + fmt::Debug + 'static {
    /// The transport as [`Any`], to get the concrete type back.
    fn as_any(&self) -> &(dyn Any + 'static);
    /// The transport as mutable [`Any`].
    fn as_any_mut(&mut self) -> &mut (dyn Any + 'static);
}

impl<T: Read + Write + Send + fmt::Debug + 'static> Transport for T {
    fn as_any(&self) -> &(dyn Any + 'static) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + 'static) {
        self
    }
}

fn downcast_ref<'a, T: 'static>(transport: &'a (dyn Transport + 'static)) -> Option<&'a T> {
    let any = (*transport).as_any();
    if let Some(found) = any.downcast_ref::<T>() {
        return Some(found);
    }
    any.downcast_ref::<Box<dyn Transport>>()
        .and_then(|inner| downcast_ref(&**inner))
}

fn downcast_mut<'a, T: 'static>(transport: &'a mut (dyn Transport + 'static)) -> Option<&'a mut T> {
    // Through `*transport`: `&mut dyn Transport` is itself a `Transport`.
    if (*transport).as_any().is::<T>() {
        return (*transport).as_any_mut().downcast_mut::<T>();
    }
    (*transport)
        .as_any_mut()
        .downcast_mut::<Box<dyn Transport>>()
        .and_then(|inner| downcast_mut(&mut **inner))
}

/// An established TLS connection, type-erased (a backend chosen at run time).
///
/// ```no_run
/// # fn f(tls: &mut dyn tlsresume_core::TlsStream) -> std::io::Result<()> {
/// use std::net::TcpStream;
/// use std::time::Duration;
///
/// // Back to the socket: a longer read timeout for DATA, the peer's address.
/// let tcp = tls.transport_mut::<TcpStream>().expect("a TCP connection");
/// tcp.set_read_timeout(Some(Duration::from_secs(600)))?;
/// println!("{}", tcp.peer_addr()?);
/// # Ok(()) }
/// ```
pub trait TlsStream: Read + Write + Send + fmt::Debug {
    /// What the handshake (and any tickets since) produced, borrowed (nothing copied: the
    /// async layer's `info` is this).
    fn session_info(&self) -> &SessionInfo;

    /// What the handshake (and any tickets since) produced: a copy of
    /// [`session_info`](Self::session_info), for a caller that keeps it.
    fn info(&self) -> SessionInfo {
        self.session_info().clone()
    }

    /// Sends close_notify.
    fn shutdown(&mut self) -> io::Result<()>;

    /// The transport underneath.
    fn transport_dyn(&self) -> &dyn Transport;

    /// The transport underneath, mutable. Reading or writing it directly corrupts the TLS
    /// connection; setting timeouts or shutting down the socket is what it is for.
    fn transport_dyn_mut(&mut self) -> &mut (dyn Transport + 'static);
}

impl<'a> dyn TlsStream + 'a {
    /// The transport as its concrete type (looking through a `Box<dyn Transport>`), or `None`
    /// when it is another type.
    pub fn transport<T: 'static>(&self) -> Option<&T> {
        downcast_ref(self.transport_dyn())
    }

    /// The transport as its concrete type, mutable.
    pub fn transport_mut<T: 'static>(&mut self) -> Option<&mut T> {
        downcast_mut(self.transport_dyn_mut())
    }
}

/// A server configuration that accepts TLS connections, type-erased (a backend chosen at run
/// time). Every backend's server has it through its [`TlsServer`](crate::contract::TlsServer)
/// impl.
pub trait ServerContext: Send + Sync + fmt::Debug {
    /// Which library is underneath.
    fn backend(&self) -> BackendKind;

    /// Runs the server side of a handshake on `transport`.
    fn accept(
        &self,
        transport: Box<dyn Transport>,
        params: &ServerParams,
    ) -> Result<Box<dyn TlsStream>, Error> {
        self.start_accept(transport, params)?.resume()?.blocking()
    }

    /// Sets up the server side of a handshake on `transport` without running it: the
    /// handshake is driven by [`MidHandshake::resume`], over a transport that may block.
    /// [`accept`](Self::accept) is this, resumed until done.
    fn start_accept(
        &self,
        transport: Box<dyn Transport>,
        params: &ServerParams,
    ) -> Result<Box<dyn MidHandshake>, Error>;

    /// The key ring sealing this server's tickets and the clock its decisions read, when the
    /// server seals them through one (OpenSSL, rustls; GnuTLS derives its keys itself from a
    /// master secret fetched when the server is made). An async server rotates the ring off
    /// the runtime before a handshake, so a key source that blocks (Redis) is not asked from
    /// inside the library's callbacks.
    fn ticket_key_ring(&self) -> Option<(Arc<KeyRing>, SharedClock)>;

    /// Whether the next handshake would have to wait for the key source (which may block):
    /// the [`ticket_key_ring`](Self::ticket_key_ring) holds no usable key
    /// ([`KeyRing::rotation_due`](crate::keys::key_ring::KeyRing::rotation_due); a rotation with
    /// a usable key held never waits), or a master secret that was a stand-in is to be asked
    /// about again (GnuTLS). An async server checks this
    /// before a handshake and then calls [`refresh_ticket_keys`](Self::refresh_ticket_keys)
    /// on a blocking-task thread.
    fn ticket_keys_due(&self) -> bool;

    /// Does what [`ticket_keys_due`](Self::ticket_keys_due) found due (may block on the key
    /// source). Fails only when there is no usable key at all; the handshakes then go on as
    /// they would have (no ticket).
    fn refresh_ticket_keys(&self) -> Result<(), Error>;
}

/// A client configuration that makes TLS connections, type-erased (a backend chosen at run
/// time). Every backend's client has it through its [`TlsClient`](crate::contract::TlsClient)
/// impl.
pub trait ClientContext: Send + Sync + fmt::Debug {
    /// Which library is underneath.
    fn backend(&self) -> BackendKind;

    /// Runs the client side of a handshake on `transport`, offering a cached session when the
    /// policy allows.
    fn connect(
        &self,
        transport: Box<dyn Transport>,
        params: &ClientParams,
    ) -> Result<Box<dyn TlsStream>, Error> {
        self.start_connect(transport, params, None)?
            .resume()?
            .blocking()
    }

    /// Sets up the client side of a handshake on `transport` without running it, with `store`
    /// in place of the settings' session store for this connection (`None`: the settings'
    /// store). The handshake is driven by [`MidHandshake::resume`];
    /// [`connect`](Self::connect) is this, resumed until done.
    ///
    /// The async layer passes a [`DeferredStore`](crate::cache::deferred::DeferredStore) here so a store that
    /// blocks (SQLite, Redis) is never called from inside the library's callbacks.
    fn start_connect(
        &self,
        transport: Box<dyn Transport>,
        params: &ClientParams,
        store: Option<Arc<dyn SessionStore>>,
    ) -> Result<Box<dyn MidHandshake>, Error>;

    /// The settings this client was made from.
    fn client_settings(&self) -> &ClientSettings;
}

/// How far a handshake driven on a transport that may not block got: finished, or stopped
/// because the transport would block, with the handshake handed back to be resumed once the
/// transport is ready.
///
/// `WouldBlock` is never an error: the same handshake (the same callbacks, the same resumption
/// decisions) goes on from where it stopped when `resume` is called again.
#[derive(Debug)]
pub enum Handshaking<H, T> {
    /// The handshake is complete.
    Done(T),
    /// The transport would block; resume `H` when it is ready.
    WouldBlock(H),
}

impl<H, T> Handshaking<H, T> {
    /// The finished value on a blocking transport, where "would block" can only mean a read or
    /// write timeout set on the socket passed: an [`Error::Io`] of kind `TimedOut` saying so.
    pub fn blocking(self) -> Result<T, Error> {
        match self {
            Self::Done(value) => Ok(value),
            Self::WouldBlock(_) => Err(Error::Io(crate::deadline::idle_in_handshake())),
        }
    }
}

/// A handshake in progress, type-erased (a backend chosen at run time), over a transport that
/// may report `WouldBlock`. Made by [`ClientContext::start_connect`] and
/// [`ServerContext::start_accept`]; the async layer resumes it whenever its socket is ready.
pub trait MidHandshake: Send + fmt::Debug {
    /// Drives the handshake as far as the transport allows.
    #[allow(clippy::type_complexity)]
    fn resume(
        self: Box<Self>,
    ) -> Result<Handshaking<Box<dyn MidHandshake>, Box<dyn TlsStream>>, Error>;

    /// The transport underneath, mutable (to hand it a waker between calls).
    fn transport_dyn_mut(&mut self) -> &mut (dyn Transport + 'static);
}

impl<'a> dyn MidHandshake + 'a {
    /// The transport as its concrete type (looking through a `Box<dyn Transport>`).
    pub fn transport_mut<T: 'static>(&mut self) -> Option<&mut T> {
        downcast_mut(self.transport_dyn_mut())
    }
}
