//! The seams every backend implements: settings, contexts, streams, and [`BackendKind`].

use core::fmt;
use core::str::FromStr;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::clock::{SharedClock, SystemClock};
use crate::error::Error;
use crate::info::{ProtocolVersion, SessionInfo};
use crate::keys::{KeySource, ProcessKeySource};
use crate::pki::Identity;
use crate::policy::ResumptionPolicy;
use crate::store::{MemoryStore, SessionStore};
use crate::ticket_policy::TicketPolicy;

/// The TLS libraries tlsresume runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    /// GnuTLS 3.7, through bindings generated with bindgen.
    Gnutls,
    /// OpenSSL 3, through the `openssl` crate.
    Openssl,
    /// rustls with the ring provider.
    Rustls,
}

impl BackendKind {
    /// Every backend tlsresume knows, compiled in or not.
    pub const ALL: [BackendKind; 3] = [Self::Openssl, Self::Gnutls, Self::Rustls];

    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gnutls => "gnutls",
            Self::Openssl => "openssl",
            Self::Rustls => "rustls",
        }
    }

    /// The ticket flavour this library shows under Exim.
    pub fn default_ticket_policy(self) -> TicketPolicy {
        match self {
            Self::Gnutls => TicketPolicy::GNUTLS,
            Self::Openssl | Self::Rustls => TicketPolicy::OPENSSL,
        }
    }

    /// The code stored in cache entries.
    pub fn code(self) -> u8 {
        match self {
            Self::Openssl => 1,
            Self::Gnutls => 2,
            Self::Rustls => 3,
        }
    }

    /// The backend for a stored code.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Openssl),
            2 => Some(Self::Gnutls),
            3 => Some(Self::Rustls),
            _ => None,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = Error;

    /// Parses `openssl`, `gnutls` or `rustls` (any case).
    fn from_str(s: &str) -> Result<Self, Error> {
        let wanted = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|k| k.name() == wanted)
            .ok_or_else(|| Error::UnknownBackend {
                name: s.to_owned(),
                available: Self::ALL
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

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
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// The certificate chain and private key.
    pub identity: Identity,
    /// A DER OCSP response to staple on full handshakes.
    pub ocsp_response: Option<Vec<u8>>,
    /// Ticket key and lifetime rules.
    pub ticket_policy: TicketPolicy,
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
    /// Safe defaults around an identity: OpenSSL-flavour tickets, Exim-compatible policy, the
    /// system clock, keys made in-process, TLS 1.2 and 1.3.
    pub fn new(identity: Identity) -> Self {
        Self {
            identity,
            ocsp_response: None,
            ticket_policy: TicketPolicy::OPENSSL,
            resumption: ResumptionPolicy::exim_compatible(),
            clock: Arc::new(SystemClock),
            key_source: Arc::new(ProcessKeySource::new()),
            versions: Versions::ALL,
            alpn: Vec::new(),
        }
    }
}

/// Everything a client context is made from, the same for every backend.
#[derive(Clone, Debug)]
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
}

/// What a server knows about one incoming connection.
#[derive(Clone, Debug)]
pub struct ServerParams {
    /// The client's address.
    pub peer: SocketAddr,
    /// The address the connection came in on (its port is the server's port).
    pub local: SocketAddr,
    /// The client's host name, if looked up.
    pub peer_name: Option<String>,
}

/// What a client knows about one outgoing connection.
#[derive(Clone, Debug)]
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

/// A byte stream TLS runs over: a `TcpStream`, a Unix socket, an in-memory pipe.
pub trait Transport: Read + Write + Send + fmt::Debug {}

impl<T: Read + Write + Send + fmt::Debug> Transport for T {}

/// An established TLS connection.
pub trait TlsStream: Read + Write + Send + fmt::Debug {
    /// What the handshake (and any tickets since) produced.
    fn info(&self) -> SessionInfo;

    /// Sends close_notify.
    fn shutdown(&mut self) -> io::Result<()>;
}

/// A server configuration that accepts TLS connections.
pub trait ServerContext: Send + Sync + fmt::Debug {
    /// Which library is underneath.
    fn backend(&self) -> BackendKind;

    /// Runs the server side of a handshake on `transport`.
    fn accept(
        &self,
        transport: Box<dyn Transport>,
        params: &ServerParams,
    ) -> Result<Box<dyn TlsStream>, Error>;
}

/// A client configuration that makes TLS connections.
pub trait ClientContext: Send + Sync + fmt::Debug {
    /// Which library is underneath.
    fn backend(&self) -> BackendKind;

    /// Runs the client side of a handshake on `transport`, offering a cached session when the
    /// policy allows.
    fn connect(
        &self,
        transport: Box<dyn Transport>,
        params: &ClientParams,
    ) -> Result<Box<dyn TlsStream>, Error>;
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
