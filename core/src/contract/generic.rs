//! The backend contract in types: what each backend crate implements once ([`Backend`],
//! [`TlsClient`], [`TlsServer`], [`TlsHandshake`], [`TlsConnection`]), generic over the
//! transport; the type-erased forms chosen at run time ([`ClientContext`], [`ServerContext`],
//! [`MidHandshake`], [`TlsStream`]) are derived from these here, once, for every backend.
//!
//! A backend keeps its inherent API (`Client::connect`, `Stream::info`, …, the same on every
//! backend) and implements these traits by delegating to it with
//! [`impl_backend!`](crate::impl_backend); inherent methods take precedence, so a caller of a
//! concrete backend type never meets two methods of one name.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;

use crate::cache::store::SessionStore;
use crate::clock::SharedClock;
use crate::error::Error;
use crate::info::SessionInfo;
use crate::keys::key_ring::KeyRing;
use crate::kind::BackendKind;
use crate::seams::{ClientContext, Handshaking, MidHandshake, ServerContext, TlsStream, Transport};
use crate::settings::params::{ClientParams, ServerParams};
use crate::settings::{ClientSettings, ServerSettings};

/// An established TLS connection of one backend over its transport.
pub trait TlsConnection: Read + Write {
    /// The transport underneath.
    type Transport: Read + Write;

    /// What the handshake (and any tickets since) produced.
    fn info(&self) -> &SessionInfo;

    /// Sends close_notify.
    fn shutdown(&mut self) -> io::Result<()>;

    /// The transport.
    fn get_ref(&self) -> &Self::Transport;

    /// The transport, mutable: for timeouts and socket options; reading or writing it directly
    /// corrupts the TLS connection.
    fn get_mut(&mut self) -> &mut Self::Transport;
}

/// A handshake of one backend in progress over a transport that may report `WouldBlock`.
pub trait TlsHandshake: Sized {
    /// The transport underneath.
    type Transport: Read + Write;
    /// The connection a finished handshake gives.
    type Connection: TlsConnection<Transport = Self::Transport>;

    /// Drives the handshake as far as the transport allows.
    fn resume(self) -> Result<Handshaking<Self, Self::Connection>, Error>;

    /// The transport.
    fn get_ref(&self) -> &Self::Transport;

    /// The transport, mutable.
    fn get_mut(&mut self) -> &mut Self::Transport;
}

/// A backend's client: connections that offer and store sessions as the settings say.
pub trait TlsClient: Send + Sync + fmt::Debug + 'static {
    /// Which library is underneath.
    const KIND: BackendKind;
    /// The handshake over a transport `S`.
    type Handshake<S: Read + Write>: TlsHandshake<Transport = S>;

    /// The settings this client was made from.
    fn settings(&self) -> &ClientSettings;

    /// Sets up a handshake on `transport` without running it, with `store` in place of the
    /// settings' store for this connection (`None`: the settings' store).
    fn start_with_store<S: Read + Write>(
        &self,
        transport: S,
        params: &ClientParams,
        store: Option<Arc<dyn SessionStore>>,
    ) -> Result<Self::Handshake<S>, Error>;

    /// Runs a handshake on a blocking `transport`.
    #[allow(clippy::type_complexity)]
    fn connect_to<S: Read + Write>(
        &self,
        transport: S,
        params: &ClientParams,
    ) -> Result<<Self::Handshake<S> as TlsHandshake>::Connection, Error> {
        self.start_with_store(transport, params, None)?
            .resume()?
            .blocking()
    }
}

/// A backend's server: handshakes that issue and accept tickets as the settings say.
pub trait TlsServer: Send + Sync + fmt::Debug + 'static {
    /// Which library is underneath.
    const KIND: BackendKind;
    /// The handshake over a transport `S`.
    type Handshake<S: Read + Write>: TlsHandshake<Transport = S>;

    /// The settings this server was made from.
    fn settings(&self) -> &ServerSettings;

    /// Sets up a handshake on `transport` without running it.
    fn start_accept<S: Read + Write>(
        &self,
        transport: S,
        params: &ServerParams,
    ) -> Result<Self::Handshake<S>, Error>;

    /// Runs a handshake on a blocking `transport`.
    #[allow(clippy::type_complexity)]
    fn accept_on<S: Read + Write>(
        &self,
        transport: S,
        params: &ServerParams,
    ) -> Result<<Self::Handshake<S> as TlsHandshake>::Connection, Error> {
        self.start_accept(transport, params)?.resume()?.blocking()
    }

    /// The key ring sealing this server's tickets and the clock its decisions read (see
    /// [`ServerContext::ticket_key_ring`]).
    fn ticket_key_ring(&self) -> Option<(Arc<KeyRing>, SharedClock)>;

    /// Whether the next handshake would ask the key source first (see
    /// [`ServerContext::ticket_keys_due`]). Asked before every async handshake: a server that
    /// holds its ring overrides it to read the ring in place (this default raises and drops
    /// the counts of the ring and the clock, which every thread writes).
    fn ticket_keys_due(&self) -> bool {
        self.ticket_key_ring()
            .is_some_and(|(ring, clock)| ring.rotation_due(clock.now()))
    }

    /// Does what [`ticket_keys_due`](Self::ticket_keys_due) found due (may block).
    fn refresh_ticket_keys(&self) -> Result<(), Error> {
        match self.ticket_key_ring() {
            Some((ring, clock)) => Ok(ring.rotate_if_due(clock.now())?),
            None => Ok(()),
        }
    }
}

/// One backend crate: its client and server types, for code generic over the library (the
/// async layer, the suites run on every backend).
pub trait Backend: 'static {
    /// Which library.
    const KIND: BackendKind;
    /// Its client.
    type Client: TlsClient;
    /// Its server.
    type Server: TlsServer;

    /// A client from the common settings.
    fn client(settings: ClientSettings) -> Result<Self::Client, Error>;

    /// A server from the common settings.
    fn server(settings: ServerSettings) -> Result<Self::Server, Error>;
}

impl<T> TlsStream for T
where
    T: TlsConnection + Send + fmt::Debug,
    T::Transport: Transport,
{
    fn session_info(&self) -> &SessionInfo {
        TlsConnection::info(self)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        TlsConnection::shutdown(self)
    }

    fn transport_dyn(&self) -> &dyn Transport {
        TlsConnection::get_ref(self)
    }

    fn transport_dyn_mut(&mut self) -> &mut (dyn Transport + 'static) {
        TlsConnection::get_mut(self)
    }
}

impl<H> MidHandshake for H
where
    H: TlsHandshake + Send + fmt::Debug + 'static,
    H::Transport: Transport,
    H::Connection: TlsStream + 'static,
{
    fn resume(
        self: Box<Self>,
    ) -> Result<Handshaking<Box<dyn MidHandshake>, Box<dyn TlsStream>>, Error> {
        Ok(match TlsHandshake::resume(*self)? {
            Handshaking::Done(stream) => Handshaking::Done(Box::new(stream)),
            Handshaking::WouldBlock(h) => Handshaking::WouldBlock(Box::new(h)),
        })
    }

    fn transport_dyn_mut(&mut self) -> &mut (dyn Transport + 'static) {
        TlsHandshake::get_mut(self)
    }
}

/// A handshake boxed once for its whole connection: [`MidHandshake::resume`] moves the
/// backend's handshake out of the slot and, when the transport would block, back into the same
/// box (boxing the handshake itself would make a new box on every `WouldBlock`).
struct Slot<H>(Option<H>);

impl<H: fmt::Debug> fmt::Debug for Slot<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(handshake) => handshake.fmt(f),
            None => f.write_str("Slot(resuming)"),
        }
    }
}

impl<H> Slot<H> {
    /// The handshake in the slot (there but while `resume` runs, which holds the box).
    fn handshake_mut(&mut self) -> &mut H {
        match &mut self.0 {
            Some(handshake) => handshake,
            None => unreachable!("the slot is empty only inside resume, which owns it"),
        }
    }
}

impl<H> MidHandshake for Slot<H>
where
    H: TlsHandshake + Send + fmt::Debug + 'static,
    H::Transport: Transport,
    H::Connection: TlsStream + 'static,
{
    fn resume(
        mut self: Box<Self>,
    ) -> Result<Handshaking<Box<dyn MidHandshake>, Box<dyn TlsStream>>, Error> {
        let Some(handshake) = self.0.take() else {
            unreachable!("the slot is empty only inside resume, which owns it")
        };
        Ok(match TlsHandshake::resume(handshake)? {
            Handshaking::Done(stream) => Handshaking::Done(Box::new(stream)),
            Handshaking::WouldBlock(h) => {
                self.0 = Some(h);
                Handshaking::WouldBlock(self)
            }
        })
    }

    fn transport_dyn_mut(&mut self) -> &mut (dyn Transport + 'static) {
        TlsHandshake::get_mut(self.handshake_mut())
    }
}

impl<C> ClientContext for C
where
    C: TlsClient,
    C::Handshake<Box<dyn Transport>>: MidHandshake + 'static,
    <C::Handshake<Box<dyn Transport>> as TlsHandshake>::Connection: TlsStream + 'static,
{
    fn backend(&self) -> BackendKind {
        C::KIND
    }

    fn start_connect(
        &self,
        transport: Box<dyn Transport>,
        params: &ClientParams,
        store: Option<Arc<dyn SessionStore>>,
    ) -> Result<Box<dyn MidHandshake>, Error> {
        Ok(Box::new(Slot(Some(
            self.start_with_store(transport, params, store)?,
        ))))
    }

    fn client_settings(&self) -> &ClientSettings {
        TlsClient::settings(self)
    }
}

impl<T> ServerContext for T
where
    T: TlsServer,
    T::Handshake<Box<dyn Transport>>: MidHandshake + 'static,
    <T::Handshake<Box<dyn Transport>> as TlsHandshake>::Connection: TlsStream + 'static,
{
    fn backend(&self) -> BackendKind {
        T::KIND
    }

    fn start_accept(
        &self,
        transport: Box<dyn Transport>,
        params: &ServerParams,
    ) -> Result<Box<dyn MidHandshake>, Error> {
        Ok(Box::new(Slot(Some(TlsServer::start_accept(
            self, transport, params,
        )?))))
    }

    fn ticket_key_ring(&self) -> Option<(Arc<KeyRing>, SharedClock)> {
        TlsServer::ticket_key_ring(self)
    }

    fn ticket_keys_due(&self) -> bool {
        TlsServer::ticket_keys_due(self)
    }

    fn refresh_ticket_keys(&self) -> Result<(), Error> {
        TlsServer::refresh_ticket_keys(self)
    }
}

/// Implements the generic contract for a backend crate's types, and the inherent methods that
/// are the same on every backend, once: `impl_backend!(Openssl, BACKEND, filters_expiry: true,
/// ticket_keys: ring);` in the backend's root.
///
/// The backend's types are named `Client`, `Server`, `Handshake` and `Stream`; it writes by
/// hand what differs: `Client::new`, `Client::begin` (the library's setup of a handshake whose
/// decisions a [`ClientHandshake`](crate::contract::ClientHandshake) makes), `Server::new`,
/// `Server::begin` (from the [`ServerStart`](crate::contract::ServerStart) decision), and its `Handshake`
/// and `Stream` (`resume`, `info`, `shutdown`, `get_ref`, `get_mut`; `io`, the library's stream
/// the `Read`/`Write` impls go through, `after_read`, what a read brings: a TLS 1.3 ticket, and
/// `io_failed`, a failed read or write given to the client's lifecycle). This gives them, on every
/// backend alike: `Client::{settings, connect, start, start_with_store}`,
/// `Server::{settings, accept, start}`, and the [`Backend`], [`TlsClient`], [`TlsHandshake`]
/// and [`TlsConnection`] impls (delegating to the inherent methods). `filters_expiry` says
/// whether the library drops a stored session past its lifetime by itself (see
/// [`ClientContract::offer`](crate::contract::ClientContract::offer)). With `ticket_keys:
/// ring`, the [`TlsServer`] impl of a server whose tickets are sealed through a
/// `ring: Arc<KeyRing>` field; with `ticket_keys: custom` the backend writes its own. The
/// client and server need a `settings` field.
#[macro_export]
macro_rules! impl_backend {
    ($backend:ident, $kind:expr, filters_expiry: $filters:expr, ticket_keys: ring $(,)?) => {
        $crate::impl_backend!($backend, $kind, filters_expiry: $filters, ticket_keys: custom);

        impl Server {
            /// The key ring sealing this server's tickets.
            pub fn key_ring(&self) -> &::std::sync::Arc<$crate::keys::key_ring::KeyRing> {
                &self.ring
            }
        }

        impl $crate::contract::TlsServer for Server {
            const KIND: $crate::BackendKind = $kind;
            type Handshake<S: ::std::io::Read + ::std::io::Write> = Handshake<S>;

            fn settings(&self) -> &$crate::ServerSettings {
                &self.settings
            }

            fn start_accept<S: ::std::io::Read + ::std::io::Write>(
                &self,
                transport: S,
                params: &$crate::ServerParams,
            ) -> Result<Handshake<S>, $crate::Error> {
                Server::start(self, transport, params)
            }

            fn ticket_key_ring(
                &self,
            ) -> Option<(::std::sync::Arc<$crate::keys::key_ring::KeyRing>, $crate::SharedClock)> {
                Some((
                    ::std::sync::Arc::clone(&self.ring),
                    ::std::sync::Arc::clone(&self.settings.clock),
                ))
            }

            // Asked before every async handshake: the ring and the clock read where the server
            // holds them (through `ticket_key_ring`, two counts every thread writes were raised
            // and dropped per handshake).
            fn ticket_keys_due(&self) -> bool {
                self.ring.rotation_due(self.settings.clock.now())
            }

            fn refresh_ticket_keys(&self) -> Result<(), $crate::Error> {
                Ok(self.ring.rotate_if_due(self.settings.clock.now())?)
            }
        }
    };
    ($backend:ident, $kind:expr, filters_expiry: $filters:expr, ticket_keys: custom $(,)?) => {
        impl Client {
            /// The settings this client was made from.
            pub fn settings(&self) -> &$crate::ClientSettings {
                &self.settings
            }

            /// Runs the client side of a handshake on a blocking `transport`, offering a
            /// cached session when the policy allows. A stored session the library cannot
            /// load gives a full handshake, never an error; the connection fails when OCSP is
            /// required and the status reported is not "verified".
            pub fn connect<S: ::std::io::Read + ::std::io::Write>(
                &self,
                transport: S,
                params: &$crate::ClientParams,
            ) -> Result<Stream<S>, $crate::Error> {
                self.start(transport, params)?.resume()?.blocking()
            }

            /// Sets up the client side of a handshake without running it: the handshake's
            /// `resume` drives it as far as a transport that may report `WouldBlock` allows
            /// (the async layer's). [`connect`](Self::connect) is this, resumed once.
            pub fn start<S: ::std::io::Read + ::std::io::Write>(
                &self,
                transport: S,
                params: &$crate::ClientParams,
            ) -> Result<Handshake<S>, $crate::Error> {
                self.start_with_store(transport, params, None)
            }

            /// [`start`](Self::start) with `store` in place of the settings' session store
            /// for this connection (a [`DeferredStore`]($crate::cache::deferred::DeferredStore) in the async
            /// layer).
            pub fn start_with_store<S: ::std::io::Read + ::std::io::Write>(
                &self,
                transport: S,
                params: &$crate::ClientParams,
                store: Option<::std::sync::Arc<dyn $crate::SessionStore>>,
            ) -> Result<Handshake<S>, $crate::Error> {
                let handshake = $crate::contract::ClientHandshake::start(
                    &self.settings,
                    store,
                    $kind,
                    params,
                    $filters,
                );
                self.begin(transport, handshake)
            }
        }

        impl Server {
            /// The settings this server was made from.
            pub fn settings(&self) -> &$crate::ServerSettings {
                &self.settings
            }

            /// Runs the server side of a handshake on a blocking `transport`.
            /// [`start`](Self::start) sets one up without running it.
            pub fn accept<S: ::std::io::Read + ::std::io::Write>(
                &self,
                transport: S,
                params: &$crate::ServerParams,
            ) -> Result<Stream<S>, $crate::Error> {
                self.start(transport, params)?.resume()?.blocking()
            }

            /// Sets up the server side of a handshake without running it: the handshake's
            /// `resume` drives it as far as a transport that may report `WouldBlock` allows.
            /// [`accept`](Self::accept) is this, resumed once.
            pub fn start<S: ::std::io::Read + ::std::io::Write>(
                &self,
                transport: S,
                params: &$crate::ServerParams,
            ) -> Result<Handshake<S>, $crate::Error> {
                let settings: &$crate::ServerSettings = &self.settings;
                let start = $crate::contract::ServerContract::start(settings, params);
                self.begin(transport, start)
            }
        }

        impl $crate::contract::Backend for $backend {
            const KIND: $crate::BackendKind = $kind;
            type Client = Client;
            type Server = Server;

            fn client(settings: $crate::ClientSettings) -> Result<Client, $crate::Error> {
                Client::new(settings)
            }

            fn server(settings: $crate::ServerSettings) -> Result<Server, $crate::Error> {
                Server::new(settings)
            }
        }

        impl<S: ::std::io::Read + ::std::io::Write> ::std::io::Read for Stream<S> {
            fn read(&mut self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                let result = ::std::io::Read::read(Stream::io(self), buf);
                Stream::after_read(self);
                result.map_err(|e| Stream::io_failed(self, e))
            }
        }

        impl<S: ::std::io::Read + ::std::io::Write> ::std::io::Write for Stream<S> {
            fn write(&mut self, buf: &[u8]) -> ::std::io::Result<usize> {
                ::std::io::Write::write(Stream::io(self), buf)
                    .map_err(|e| Stream::io_failed(self, e))
            }

            fn flush(&mut self) -> ::std::io::Result<()> {
                ::std::io::Write::flush(Stream::io(self)).map_err(|e| Stream::io_failed(self, e))
            }
        }

        impl<S: ::std::io::Read + ::std::io::Write> $crate::contract::TlsConnection for Stream<S> {
            type Transport = S;

            fn info(&self) -> &$crate::SessionInfo {
                Stream::info(self)
            }

            fn shutdown(&mut self) -> ::std::io::Result<()> {
                Stream::shutdown(self)
            }

            fn get_ref(&self) -> &S {
                Stream::get_ref(self)
            }

            fn get_mut(&mut self) -> &mut S {
                Stream::get_mut(self)
            }
        }

        impl<S: ::std::io::Read + ::std::io::Write> $crate::contract::TlsHandshake
            for Handshake<S>
        {
            type Transport = S;
            type Connection = Stream<S>;

            fn resume(self) -> Result<$crate::Handshaking<Self, Stream<S>>, $crate::Error> {
                Handshake::resume(self)
            }

            fn get_ref(&self) -> &S {
                Handshake::get_ref(self)
            }

            fn get_mut(&mut self) -> &mut S {
                Handshake::get_mut(self)
            }
        }

        impl $crate::contract::TlsClient for Client {
            const KIND: $crate::BackendKind = $kind;
            type Handshake<S: ::std::io::Read + ::std::io::Write> = Handshake<S>;

            fn settings(&self) -> &$crate::ClientSettings {
                &self.settings
            }

            fn start_with_store<S: ::std::io::Read + ::std::io::Write>(
                &self,
                transport: S,
                params: &$crate::ClientParams,
                store: Option<::std::sync::Arc<dyn $crate::SessionStore>>,
            ) -> Result<Handshake<S>, $crate::Error> {
                Client::start_with_store(self, transport, params, store)
            }
        }
    };
}
