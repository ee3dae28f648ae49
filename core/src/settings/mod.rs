//! What a client or server context is made from, the same for every backend, checked once:
//! [`ServerSettings`], [`ClientSettings`] and their builders; and what one connection knows
//! ([`params`]).

use std::sync::Arc;

use crate::cache::store::{MemoryStore, SessionStore};
use crate::clock::{SharedClock, SystemClock};
use crate::error::Error;
use crate::identities::{IdentityTable, ServerIdentity};
use crate::info::ProtocolVersion;
use crate::keys::{KeySource, ProcessKeySource};
use crate::kind::BackendKind;
use crate::model::hostlist::HostList;
use crate::model::policy::ResumptionPolicy;
use crate::model::ticket_policy::TicketPolicy;
use crate::pki::Identity;

pub mod ciphers;
pub mod params;

use ciphers::CipherList;

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

/// Whether a server asks a client for a certificate, decided per connection from
/// [`ServerSettings::verify_hosts`] and [`ServerSettings::try_verify_hosts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientAuth {
    /// No certificate is asked for.
    Off,
    /// A certificate is asked for; the connection goes on without one, or with one that does
    /// not verify (Exim's `tls_try_verify_hosts`).
    Try,
    /// A certificate is asked for and must verify against the client CA list: the handshake is
    /// refused otherwise (Exim's `tls_verify_hosts`).
    Require,
}

impl ClientAuth {
    /// `off`, `try`, `require`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Try => "try",
            Self::Require => "require",
        }
    }
}

/// Everything a server context is made from, the same for every backend.
///
/// Made with [`ServerSettings::builder`] (which checks every field) or [`ServerSettings::new`]
/// (safe defaults); every backend checks the settings again with [`ServerSettings::check_for`]
/// when it builds a server, so a field changed after building cannot slip through.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerSettings {
    /// The certificate chain and private key; with [`identities`](Self::identities), the
    /// first identity (its names are its certificate's subjectAltName DNS names), and the
    /// default unless another is marked [`default`](ServerIdentity::default).
    pub identity: Identity,
    /// Further certificates, chosen by the name the client sends (SNI): exact name, then
    /// wildcard, then the default; several for the same names (RSA and ECDSA) are chosen
    /// between by what the client supports (see [`identities`](crate::identities)). Empty by
    /// default: every client gets [`identity`](Self::identity). A session resumes only under
    /// the server name it was issued for, on every backend.
    pub identities: Vec<ServerIdentity>,
    /// A DER OCSP response to staple on full handshakes.
    pub ocsp_response: Option<Vec<u8>>,
    /// Ticket key and lifetime rules; `None` (the default) is the backend's own library's
    /// flavour ([`BackendKind::default_ticket_policy`]).
    pub ticket_policy: Option<TicketPolicy>,
    /// How many TLS 1.3 tickets (NewSessionTicket messages) a client given tickets receives
    /// after a full TLS 1.3 handshake, at most [`MAX_TLS13_TICKETS`]; `None` (the default):
    /// the backend's own number ([`BackendKind::default_tls13_tickets`]: 1 on OpenSSL and
    /// rustls, 2 on GnuTLS). 0: none (TLS 1.2 tickets are not affected). After a resumed
    /// handshake the libraries differ, measured: rustls and GnuTLS send the same number again;
    /// OpenSSL sends one ticket when the ticket presented is renewed
    /// ([`TicketPolicy`]'s `renew_after`), none otherwise. Clients the policy gives no tickets
    /// get none whatever this says.
    pub tls13_tickets: Option<u32>,
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
    /// Clients that must present a certificate that verifies against
    /// [`client_roots`](Self::client_roots) (Exim's `tls_verify_hosts`); empty by default.
    pub verify_hosts: HostList,
    /// Clients asked for a certificate, accepted without one or with one that does not verify
    /// (Exim's `tls_try_verify_hosts`); empty by default. A host in both lists is required.
    pub try_verify_hosts: HostList,
    /// The CAs a client certificate must chain to (DER; Exim's `tls_verify_certificates`),
    /// also named to the client in the certificate request.
    pub client_roots: Vec<Vec<u8>>,
    /// The cipher suites offered and accepted, in preference order (Exim's
    /// `tls_require_ciphers`); `None` (the default): the library's own defaults.
    pub ciphers: Option<CipherList>,
}

impl ServerSettings {
    /// Safe defaults around an identity: the backend's own ticket flavour, the hardened
    /// policy ([`ResumptionPolicy::default`]; name
    /// [`exim_compatible`](ResumptionPolicy::exim_compatible) to report as Exim does), the
    /// system clock, keys made in-process, TLS 1.2 and 1.3.
    pub fn new(identity: Identity) -> Self {
        Self {
            identity,
            identities: Vec::new(),
            ocsp_response: None,
            ticket_policy: None,
            tls13_tickets: None,
            resumption: ResumptionPolicy::default(),
            clock: Arc::new(SystemClock),
            key_source: Arc::new(ProcessKeySource::new()),
            versions: Versions::ALL,
            alpn: Vec::new(),
            verify_hosts: HostList::none(),
            try_verify_hosts: HostList::none(),
            client_roots: Vec::new(),
            ciphers: None,
        }
    }

    /// The versions a server negotiates: [`versions`](Self::versions), less any version
    /// [`ciphers`](Self::ciphers) names no suite for.
    pub fn versions_in_force(&self) -> Result<Versions, Error> {
        versions_in_force(self.versions, self.ciphers.as_ref())
    }

    /// Whether a client at `ip` (named `name`, if looked up) is asked for a certificate, and
    /// whether it must verify: `verify_hosts` first, then `try_verify_hosts`, as Exim does.
    pub fn client_auth_for(&self, ip: std::net::IpAddr, name: Option<&str>) -> ClientAuth {
        if self.verify_hosts.matches(ip, name) {
            ClientAuth::Require
        } else if self.try_verify_hosts.matches(ip, name) {
            ClientAuth::Try
        } else {
            ClientAuth::Off
        }
    }

    /// Whether any client may be asked for a certificate.
    pub fn asks_client_certificates(&self) -> bool {
        !self.verify_hosts.is_empty() || !self.try_verify_hosts.is_empty()
    }

    /// A builder starting from [`ServerSettings::new`]'s defaults.
    pub fn builder(identity: Identity) -> ServerSettingsBuilder {
        ServerSettingsBuilder(Self::new(identity))
    }

    /// Every identity and how a client's name selects among them: [`identity`](Self::identity)
    /// first, then [`identities`](Self::identities).
    pub fn identity_table(&self) -> Result<IdentityTable, Error> {
        let mut entries = Vec::with_capacity(1 + self.identities.len());
        entries.push(ServerIdentity::primary(self.identity.clone()));
        entries.extend(self.identities.iter().cloned());
        IdentityTable::new(entries)
    }

    /// The ticket policy a server of `backend` runs: the one set, or the backend's own.
    pub fn ticket_policy_for(&self, backend: BackendKind) -> TicketPolicy {
        self.ticket_policy
            .unwrap_or_else(|| backend.default_ticket_policy())
    }

    /// The number of TLS 1.3 tickets a server of `backend` sends after a full handshake: the one
    /// set, or the backend's own.
    pub fn tls13_tickets_for(&self, backend: BackendKind) -> u32 {
        self.tls13_tickets
            .unwrap_or_else(|| backend.default_tls13_tickets())
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
        self.versions_in_force()?;
        check_alpn(&self.alpn)?;
        self.identity_table()?;
        if let Some(policy) = &self.ticket_policy {
            policy.validate()?;
        }
        check_tls13_tickets(self.tls13_tickets)?;
        if self.asks_client_certificates() && self.client_roots.is_empty() {
            return Err(Error::setting(
                "client_roots",
                "verify_hosts or try_verify_hosts is set but no client CA is given; load one \
                 with certificates_from_pem_file (Exim's tls_verify_certificates)",
            ));
        }
        check_certificates("client_roots", "client CA", &self.client_roots)
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

    /// One more certificate, chosen by the client's server name (SNI) or by what the client
    /// supports; the first is the one given to [`ServerSettings::builder`], which serves
    /// clients whose name matches none (unless another is marked
    /// [`default`](ServerIdentity::default)).
    ///
    /// ```
    /// # use tlsresume_core::{Identity, ServerSettings, identities::ServerIdentity};
    /// # fn load(_: &str) -> Identity { unimplemented!() }
    /// # fn example() -> Result<(), tlsresume_core::Error> {
    /// let settings = ServerSettings::builder(load("mx.example.net"))
    ///     .add_identity(ServerIdentity::new(load("mx.example.net-ecdsa"))?) // names from the SAN
    ///     .add_identity(ServerIdentity::with_names(load("other"), ["*.example.org"])?)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn add_identity(mut self, identity: ServerIdentity) -> Self {
        self.0.identities.push(identity);
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
        /// Clients that must present a certificate that verifies (Exim's `tls_verify_hosts`).
        verify_hosts: HostList;
        /// Clients asked for a certificate, accepted without (Exim's `tls_try_verify_hosts`).
        try_verify_hosts: HostList;
        /// The CAs a client certificate must chain to (DER).
        client_roots: Vec<Vec<u8>>;
    }

    /// The cipher suites accepted, in preference order (Exim's `tls_require_ciphers`).
    pub fn ciphers(mut self, ciphers: CipherList) -> Self {
        self.0.ciphers = Some(ciphers);
        self
    }

    /// The number of TLS 1.3 tickets sent after a full handshake instead of the backend's own
    /// (see [`ServerSettings::tls13_tickets`]).
    pub fn tls13_tickets(mut self, count: u32) -> Self {
        self.0.tls13_tickets = Some(count);
        self
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
    /// The certificate and key presented when a server asks for one (Exim's transport
    /// `tls_certificate` / `tls_privatekey`); `None` (the default): none is presented.
    pub identity: Option<Identity>,
    /// The cipher suites offered, in preference order (Exim's transport
    /// `tls_require_ciphers`); `None` (the default): the library's own defaults. Part of the
    /// session cache key: a session stored under one list is not offered under another.
    pub ciphers: Option<CipherList>,
}

impl ClientSettings {
    /// Safe defaults around trust anchors: verification required, no OCSP, the hardened policy
    /// ([`ResumptionPolicy::default`]; name
    /// [`exim_compatible`](ResumptionPolicy::exim_compatible) to report as Exim does), an
    /// in-memory cache, the system clock, TLS 1.2 and 1.3.
    pub fn new(roots: Vec<Vec<u8>>) -> Self {
        Self {
            roots,
            verify: VerifyMode::Require,
            ocsp: OcspMode::Off,
            resumption: ResumptionPolicy::default(),
            store: Arc::new(MemoryStore::default()),
            clock: Arc::new(SystemClock),
            versions: Versions::ALL,
            alpn: Vec::new(),
            identity: None,
            ciphers: None,
        }
    }

    /// The versions a client offers: [`versions`](Self::versions), less any version
    /// [`ciphers`](Self::ciphers) names no suite for.
    pub fn versions_in_force(&self) -> Result<Versions, Error> {
        versions_in_force(self.versions, self.ciphers.as_ref())
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
        check_certificates("roots", "trust anchor", &self.roots)?;
        check_versions(self.versions)?;
        self.versions_in_force()?;
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

    /// The certificate and key to present when a server asks for one (Exim's transport
    /// `tls_certificate` / `tls_privatekey`).
    pub fn identity(mut self, identity: Identity) -> Self {
        self.0.identity = Some(identity);
        self
    }

    /// The cipher suites offered, in preference order (Exim's transport
    /// `tls_require_ciphers`).
    pub fn ciphers(mut self, ciphers: CipherList) -> Self {
        self.0.ciphers = Some(ciphers);
        self
    }

    /// The settings, checked.
    pub fn build(self) -> Result<ClientSettings, Error> {
        self.0.check()?;
        Ok(self.0)
    }
}

/// Every X.509 certificate is a DER SEQUENCE; anything else is a mistake such as PEM text
/// passed as DER.
fn check_certificates(field: &'static str, what: &str, certs: &[Vec<u8>]) -> Result<(), Error> {
    for (i, der) in certs.iter().enumerate() {
        if der.len() < 16 || der[0] != 0x30 {
            return Err(Error::setting(
                field,
                format!("{what} {i} is not a DER certificate"),
            ));
        }
    }
    Ok(())
}

/// The most TLS 1.3 tickets a server sends after one handshake. No library here has a lower
/// limit (OpenSSL's `SSL_set_num_tickets`, GnuTLS's `gnutls_session_ticket_send` and rustls's
/// `send_tls13_tickets` take any count); more than a client keeps is only bytes on the wire and
/// work for the server: a rustls client keeps 8 per server name, OpenSSL's and GnuTLS's keep
/// the last, and an MTA's cache keeps one per destination.
pub const MAX_TLS13_TICKETS: u32 = 8;

fn check_tls13_tickets(count: Option<u32>) -> Result<(), Error> {
    match count {
        Some(n) if n > MAX_TLS13_TICKETS => Err(Error::setting(
            "tls13_tickets",
            format!(
                "{n} TLS 1.3 tickets per handshake: at most {MAX_TLS13_TICKETS} (no client keeps \
                 more: rustls keeps 8 per server name, OpenSSL and GnuTLS the last); 0 sends \
                 none; unset, the backend's own number"
            ),
        )),
        _ => Ok(()),
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

fn versions_in_force(versions: Versions, ciphers: Option<&CipherList>) -> Result<Versions, Error> {
    match ciphers {
        Some(list) => list.versions_within(versions),
        None => Ok(versions),
    }
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
