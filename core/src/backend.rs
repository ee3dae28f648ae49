//! The seams every backend implements: settings, contexts, streams.

use core::any::Any;
use core::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::clock::{SharedClock, SystemClock};
use crate::error::Error;
use crate::info::{ProtocolVersion, SessionInfo};
use crate::keys::{KeySource, ProcessKeySource};
pub use crate::kind::BackendKind;
use crate::lifecycle::KeyRing;
use crate::pki::Identity;
use crate::policy::ResumptionPolicy;
use crate::store::{MemoryStore, SessionStore};
use crate::ticket_policy::TicketPolicy;

/// The range of TLS versions a context allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Versions {
    /// The lowest version.
    pub min: ProtocolVersion,
    /// The highest version.
    pub max: ProtocolVersion,
}

impl Versions {
    /// TLS 1.2 and 1.3.
    pub const ALL: Self = Self {
        min: ProtocolVersion::Tls12,
        max: ProtocolVersion::Tls13,
    };

    /// Only `version`.
    pub fn only(version: ProtocolVersion) -> Self {
        Self {
            min: version,
            max: version,
        }
    }

    /// Whether `version` is allowed.
    pub fn allows(&self, version: ProtocolVersion) -> bool {
        self.min <= version && version <= self.max
    }
}

impl Default for Versions {
    fn default() -> Self {
        Self::ALL
    }
}

/// How a client treats the server's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VerifyMode {
    /// Verification is required: a chain that does not verify fails the handshake.
    Require,
    /// Verification is tried and the result reported, but a failure does not stop the
    /// connection (Exim's `tls_try_verify_hosts`). Sessions made so are stored with
    /// verify-override set.
    Try,
}

/// Whether a client asks for, and insists on, an OCSP staple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OcspMode {
    /// No status request.
    Off,
    /// Status requested; a missing or bad staple is only reported.
    Request,
    /// Status requested and required (Exim's `hosts_require_ocsp`): the connection fails
    /// unless the staple verifies.
    Require,
}

/// Everything a server context is made from, the same for every backend.
///
/// Made with [`ServerSettings::builder`] (which checks every field) or [`ServerSettings::new`]
/// (safe defaults); every backend checks the settings again with [`ServerSettings::check_for`]
/// when it builds a server, so a field changed after building cannot slip through.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerSettings {
    /// The certificate chain and private key.
    pub identity: Identity,
    /// A DER OCSP response to staple on full handshakes.
    pub ocsp_response: Option<Vec<u8>>,
    /// Ticket key and lifetime rules; `None` (the default) is the backend's own library's
    /// flavour ([`BackendKind::default_ticket_policy`]).
    pub ticket_policy: Option<TicketPolicy>,
    /// Which clients get tickets; known-issue treatment.
    pub resumption: ResumptionPolicy,
    /// The clock every time decision uses.
    pub clock: SharedClock,
    /// Where ticket keys come from.
    pub key_source: Arc<dyn KeySource>,
    /// Allowed versions.
    pub versions: Versions,
    /// ALPN protocols, in preference order.
    pub alpn: Vec<Vec<u8>>,
}

impl ServerSettings {
    /// Safe defaults around an identity: the backend's own ticket flavour, Exim-compatible
    /// policy, the system clock, keys made in-process, TLS 1.2 and 1.3.
    pub fn new(identity: Identity) -> Self {
        Self {
            identity,
            ocsp_response: None,
            ticket_policy: None,
            resumption: ResumptionPolicy::exim_compatible(),
            clock: Arc::new(SystemClock),
            key_source: Arc::new(ProcessKeySource::new()),
            versions: Versions::ALL,
            alpn: Vec::new(),
        }
    }

    /// A builder starting from [`ServerSettings::new`]'s defaults.
    pub fn builder(identity: Identity) -> ServerSettingsBuilder {
        ServerSettingsBuilder(Self::new(identity))
    }

    /// The ticket policy a server of `backend` runs: the one set, or the backend's own.
    pub fn ticket_policy_for(&self, backend: BackendKind) -> TicketPolicy {
        self.ticket_policy
            .unwrap_or_else(|| backend.default_ticket_policy())
    }

    /// Checks every field, and that `backend` can carry the settings out; the error names the
    /// field and says what would do instead.
    ///
    /// GnuTLS derives its ticket keys itself, one per period of three ticket lifetimes, keeps
    /// the previous period's key and never renews a ticket early: only
    /// [`TicketPolicy::GNUTLS`] and [`TicketPolicy::periodic`] policies can run on it.
    pub fn check_for(&self, backend: BackendKind) -> Result<(), Error> {
        self.check()?;
        if let Some(policy) = &self.ticket_policy {
            if backend == BackendKind::Gnutls && !policy.is_gnutls_compatible() {
                return Err(Error::setting(
                    "ticket_policy",
                    format!(
                        "GnuTLS cannot carry out {policy}: it derives its ticket keys itself, one \
                         per period of 3 x the ticket lifetime, keeps the previous period's key \
                         and never renews early; use TicketPolicy::GNUTLS or \
                         TicketPolicy::periodic(lifetime) on GnuTLS, or the OpenSSL or rustls \
                         backend for rolling keys"
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl ServerSettings {
    /// The checks that hold for every backend ([`check_for`](Self::check_for) adds the
    /// backend's own limits).
    pub fn check(&self) -> Result<(), Error> {
        if self.ocsp_response.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::setting(
                "ocsp_response",
                "empty; give a DER OCSP response or None",
            ));
        }
        check_versions(self.versions)?;
        check_alpn(&self.alpn)?;
        if let Some(policy) = &self.ticket_policy {
            policy.validate()?;
        }
        Ok(())
    }
}

/// Builder methods that set one settings field each, documented at the call.
macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty;)*) => {
        $(
            $(#[$doc])*
            pub fn $field(mut self, value: $ty) -> Self {
                self.0.$field = value;
                self
            }
        )*
    };
}

/// Builds [`ServerSettings`], checking them in [`build`](Self::build).
#[derive(Clone, Debug)]
pub struct ServerSettingsBuilder(ServerSettings);

impl ServerSettingsBuilder {
    /// A DER OCSP response to staple on full handshakes.
    pub fn ocsp_response(mut self, der: Vec<u8>) -> Self {
        self.0.ocsp_response = Some(der);
        self
    }

    /// A ticket policy other than the backend's own.
    pub fn ticket_policy(mut self, policy: TicketPolicy) -> Self {
        self.0.ticket_policy = Some(policy);
        self
    }

    setters! {
        /// Which clients get tickets, and the known-issue treatment.
        resumption: ResumptionPolicy;
        /// The clock (a [`ManualClock`](crate::ManualClock) in tests).
        clock: SharedClock;
        /// Where ticket keys come from (a shared source for a fleet).
        key_source: Arc<dyn KeySource>;
        /// Allowed versions.
        versions: Versions;
        /// ALPN protocols, in preference order.
        alpn: Vec<Vec<u8>>;
    }

    /// The settings, checked for any backend ([`ServerSettings::check_for`] is run again, for
    /// the backend's own limits, when a server is made).
    pub fn build(self) -> Result<ServerSettings, Error> {
        self.0.check()?;
        Ok(self.0)
    }
}

/// Everything a client context is made from, the same for every backend.
///
/// Made with [`ClientSettings::builder`] (which checks every field) or [`ClientSettings::new`];
/// every backend checks them again with [`ClientSettings::check`] when it builds a client.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientSettings {
    /// Trust anchors (DER certificates).
    pub roots: Vec<Vec<u8>>,
    /// Certificate verification.
    pub verify: VerifyMode,
    /// OCSP.
    pub ocsp: OcspMode,
    /// Which servers are offered sessions; known-issue treatment.
    pub resumption: ResumptionPolicy,
    /// The session cache.
    pub store: Arc<dyn SessionStore>,
    /// The clock every time decision uses.
    pub clock: SharedClock,
    /// Allowed versions.
    pub versions: Versions,
    /// ALPN protocols offered.
    pub alpn: Vec<Vec<u8>>,
}

impl ClientSettings {
    /// Safe defaults around trust anchors: verification required, no OCSP, Exim-compatible
    /// policy, an in-memory cache, the system clock, TLS 1.2 and 1.3.
    pub fn new(roots: Vec<Vec<u8>>) -> Self {
        Self {
            roots,
            verify: VerifyMode::Require,
            ocsp: OcspMode::Off,
            resumption: ResumptionPolicy::exim_compatible(),
            store: Arc::new(MemoryStore::default()),
            clock: Arc::new(SystemClock),
            versions: Versions::ALL,
            alpn: Vec::new(),
        }
    }

    /// A builder starting from [`ClientSettings::new`]'s defaults.
    pub fn builder(roots: Vec<Vec<u8>>) -> ClientSettingsBuilder {
        ClientSettingsBuilder(Self::new(roots))
    }

    /// Checks every field; the error names the field. The same checks run for every backend,
    /// so a setting one library would accept and another refuse is refused everywhere.
    pub fn check(&self) -> Result<(), Error> {
        if self.roots.is_empty() {
            return Err(Error::setting(
                "roots",
                "no trust anchors given; load a CA file with certificates_from_pem_file",
            ));
        }
        for (i, der) in self.roots.iter().enumerate() {
            // Every X.509 certificate is a DER SEQUENCE; anything else is a mistake such as
            // PEM text passed as DER.
            if der.len() < 16 || der[0] != 0x30 {
                return Err(Error::setting(
                    "roots",
                    format!("trust anchor {i} is not a DER certificate"),
                ));
            }
        }
        check_versions(self.versions)?;
        check_alpn(&self.alpn)
    }
}

/// Builds [`ClientSettings`], checking them in [`build`](Self::build).
#[derive(Clone, Debug)]
pub struct ClientSettingsBuilder(ClientSettings);

impl ClientSettingsBuilder {
    setters! {
        /// Certificate verification.
        verify: VerifyMode;
        /// OCSP.
        ocsp: OcspMode;
        /// Which servers are offered sessions, and the known-issue treatment.
        resumption: ResumptionPolicy;
        /// The session cache (shared by processes with `tlsresume-stores`). The store's
        /// [`session_key`](SessionStore::session_key) seals what is stored in it.
        store: Arc<dyn SessionStore>;
        /// The clock (a [`ManualClock`](crate::ManualClock) in tests).
        clock: SharedClock;
        /// Allowed versions.
        versions: Versions;
        /// ALPN protocols offered.
        alpn: Vec<Vec<u8>>;
    }

    /// The settings, checked.
    pub fn build(self) -> Result<ClientSettings, Error> {
        self.0.check()?;
        Ok(self.0)
    }
}

fn check_versions(versions: Versions) -> Result<(), Error> {
    let known = |v: ProtocolVersion| matches!(v, ProtocolVersion::Tls12 | ProtocolVersion::Tls13);
    if !known(versions.min) || !known(versions.max) {
        return Err(Error::setting(
            "versions",
            format!(
                "only TLS 1.2 and 1.3 are supported (got {} to {})",
                versions.min, versions.max
            ),
        ));
    }
    if versions.min > versions.max {
        return Err(Error::setting(
            "versions",
            format!("the range {} to {} is empty", versions.min, versions.max),
        ));
    }
    Ok(())
}

fn check_alpn(protocols: &[Vec<u8>]) -> Result<(), Error> {
    for p in protocols {
        if p.is_empty() || p.len() > 255 {
            return Err(Error::setting(
                "alpn",
                format!(
                    "each protocol name must be 1 to 255 bytes (got {} bytes)",
                    p.len()
                ),
            ));
        }
    }
    Ok(())
}

/// What a server knows about one incoming connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerParams {
    /// The client's address.
    pub peer: SocketAddr,
    /// The address the connection came in on (its port is the server's port).
    pub local: SocketAddr,
    /// The client's host name, if looked up.
    pub peer_name: Option<String>,
}

impl ServerParams {
    /// A connection from `peer` arriving on `local` (a `TcpStream`'s `peer_addr()` and
    /// `local_addr()`).
    pub fn new(peer: SocketAddr, local: SocketAddr) -> Self {
        Self {
            peer,
            local,
            peer_name: None,
        }
    }

    /// The client's host name, as looked up (host lists may match on it).
    pub fn peer_name(mut self, name: impl Into<String>) -> Self {
        self.peer_name = Some(name.into());
        self
    }
}

/// What a client knows about one outgoing connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientParams {
    /// The server's address.
    pub peer: SocketAddr,
    /// Our local address.
    pub local: Option<IpAddr>,
    /// The server name: sent as SNI and checked against the certificate.
    pub server_name: String,
    /// The host name from the server's EHLO response (load balancers); `None` for
    /// TLS-on-connect ([`crate::NEVER_LB`]).
    pub lb_name: Option<String>,
    /// The DANE TLSA answer, if DANE is in use.
    pub dane: Option<Vec<u8>>,
}

impl ClientParams {
    /// A connection to `server_name` at `peer`.
    pub fn new(server_name: impl Into<String>, peer: SocketAddr) -> Self {
        Self {
            peer,
            local: None,
            server_name: server_name.into(),
            lb_name: None,
            dane: None,
        }
    }

    /// The local address the connection is made from (part of the cache key, as in Exim).
    pub fn local(mut self, local: IpAddr) -> Self {
        self.local = Some(local);
        self
    }

    /// The host name the server gave in its EHLO response (SMTP STARTTLS).
    pub fn lb_name(mut self, name: impl Into<String>) -> Self {
        self.lb_name = Some(name.into());
        self
    }

    /// The DANE TLSA answer.
    pub fn dane(mut self, tlsa: Vec<u8>) -> Self {
        self.dane = Some(tlsa);
        self
    }
}

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
    /// What the handshake (and any tickets since) produced.
    fn info(&self) -> SessionInfo;

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

    /// Whether the next handshake would ask the key source first (which may block): a
    /// rotation of the [`ticket_key_ring`](Self::ticket_key_ring) due, or a master secret
    /// that was a stand-in to be asked about again (GnuTLS). An async server checks this
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
    /// The async layer passes a [`DeferredStore`](crate::DeferredStore) here so a store that
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
    /// write timeout set on the socket: an [`Error::Io`] of kind `WouldBlock`, as the blocking
    /// `connect`/`accept` have always reported it.
    pub fn blocking(self) -> Result<T, Error> {
        match self {
            Self::Done(value) => Ok(value),
            Self::WouldBlock(_) => Err(Error::Io(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the transport would block during the handshake",
            ))),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_parse_and_unknown_names_list_the_choices() {
        for kind in BackendKind::ALL {
            assert_eq!(kind.name().parse::<BackendKind>().ok(), Some(kind));
            assert_eq!(BackendKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(
            "OpenSSL".parse::<BackendKind>().ok(),
            Some(BackendKind::Openssl)
        );
        let err = "boringssl".parse::<BackendKind>().expect_err("unknown");
        let text = err.to_string();
        assert!(
            text.contains("boringssl") && text.contains("openssl, gnutls, rustls"),
            "{text}"
        );
    }
}
