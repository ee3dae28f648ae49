//! [`Server`]: accepts connections, issuing and accepting tickets under GnuTLS's own key
//! derivation from the key source's master secret.

use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use tlsresume_core::contract::ServerContract;
use tlsresume_core::{
    BackendKind, Error, KeyRing, MidHandshake, OcspStatus, Resumption, ServerContext, ServerParams,
    ServerSettings, SessionInfo, SharedClock, Side, TlsStream, Transport,
};

use crate::callbacks::{install_clock, ClockClaim};
use crate::config;
use crate::ffi::{Connection, Credentials, End, Session};
use crate::handshake::Handshake;
use crate::info::{cipher_names, Stream};
use crate::tickets;
use crate::BACKEND;

/// A GnuTLS server context.
///
/// Creating one makes `settings.clock` GnuTLS's process-wide time source.
pub struct Server {
    settings: ServerSettings,
    clock: Arc<ClockClaim>,
    credentials: Arc<Credentials>,
    master: tickets::MasterKey,
    priority: String,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("priority", &self.priority)
            .field("ticket_policy", &self.settings.ticket_policy_for(BACKEND))
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Loads the identity (and OCSP staple) and fetches the master ticket key (asked for again
    /// later when the key source says it is a stand-in; see
    /// [`KeySource::master_retry_after`](tlsresume_core::KeySource::master_retry_after)).
    pub fn new(settings: ServerSettings) -> Result<Self, Error> {
        settings.check_for(BACKEND)?;
        let clock = Arc::new(install_clock(&settings.clock)?);
        let credentials = config::server_credentials(&settings)?;
        let priority = config::priority(&settings.versions)?;
        let master = tickets::MasterKey::fetch(&settings)?;
        Ok(Self {
            settings,
            clock,
            credentials,
            master,
            priority,
        })
    }

    /// Runs the server side of a handshake.
    pub fn accept<S: Read + Write>(
        &self,
        transport: S,
        params: &ServerParams,
    ) -> Result<Stream<S>, Error> {
        self.start(transport, params)?.resume()?.blocking()
    }

    /// Sets up the server side of a handshake without running it: [`Handshake::resume`] drives
    /// it, over a transport that may report `WouldBlock`. [`accept`](Self::accept) is this,
    /// resumed once.
    pub fn start<S: Read + Write>(
        &self,
        transport: S,
        params: &ServerParams,
    ) -> Result<Handshake<S>, Error> {
        let start = self.settings.start(params);
        let mut session = Session::new(End::Server)?;
        session.set_priority(&self.priority)?;
        session.set_alpn(&self.settings.alpn)?;
        let lifetime = tickets::expiration_secs(&self.settings);
        if start.may_issue {
            // A stand-in master asked about again (a blocking server; an async one did it
            // off the runtime before, see `refresh_ticket_keys`).
            let now = self.settings.clock.now();
            if self.master.due(now) {
                self.master.refresh(&self.settings, now);
            }
            self.master
                .with_bytes(|bytes| session.enable_tickets_server(bytes))?;
            session.set_cache_expiration(lifetime);
        }
        let conn = Connection::new(session, self.credentials.clone(), transport)?;
        Ok(Handshake::server(
            conn,
            ServerPending {
                bits: start.bits,
                stapling: self.settings.ocsp_response.is_some(),
                iana_names: self.settings.resumption.known_issues().iana_cipher_names,
                clock: self.clock.clone(),
            },
        ))
    }
}

/// What a server handshake needs once GnuTLS has finished it.
#[derive(Debug)]
pub(crate) struct ServerPending {
    bits: Resumption,
    stapling: bool,
    iana_names: bool,
    clock: Arc<ClockClaim>,
}

impl ServerPending {
    /// After the handshake: the bits and what the session reports.
    pub(crate) fn finish<S: Read + Write>(self, conn: Connection<S>) -> Stream<S> {
        let s = conn.session();
        let resumed = s.is_resumed();
        let mut bits = self.bits;
        if conn.ticket_sent() {
            bits |= Resumption::CLIENT_REQUESTED;
        }
        // Also true for a plain ticket request: the source of Exim's odd 0x05.
        if s.resumption_requested() {
            bits |= Resumption::CLIENT_SUGGESTED;
        }
        if resumed {
            bits |= Resumption::USED;
        }
        // "Asked for" is GnuTLS's status-request state; whether a response went out is inferred:
        // GnuTLS 3.7 staples the configured response on full handshakes only and says nothing
        // about it afterwards.
        let ocsp = if !s.client_requested_ocsp() {
            OcspStatus::NotRequested
        } else if self.stapling && !resumed {
            OcspStatus::NotVerified
        } else {
            OcspStatus::NoResponse
        };
        let mut info = SessionInfo::new(Side::Server, s.protocol());
        info.cipher = cipher_names(s, self.iana_names);
        info.resumption = bits;
        info.resumed = resumed;
        info.ocsp = ocsp;
        info.peer_certificates = s.peer_certificates();
        info.sni = s.server_name();
        info.alpn = s.alpn_selected();
        // The lifetime in the NewSessionTicket GnuTLS sent (read by the handshake hook).
        info.ticket_lifetime = conn
            .ticket_sent()
            .then(|| conn.ticket_lifetime())
            .flatten()
            .map(|secs| Duration::from_secs(u64::from(secs)));
        Stream::new(conn, info, None, self.clock)
    }
}

impl ServerContext for Server {
    fn backend(&self) -> BackendKind {
        BACKEND
    }

    fn accept(
        &self,
        transport: Box<dyn Transport>,
        params: &ServerParams,
    ) -> Result<Box<dyn TlsStream>, Error> {
        Server::accept(self, transport, params).map(|s| Box::new(s) as Box<dyn TlsStream>)
    }

    fn start_accept(
        &self,
        transport: Box<dyn Transport>,
        params: &ServerParams,
    ) -> Result<Box<dyn MidHandshake>, Error> {
        Server::start(self, transport, params).map(|h| Box::new(h) as Box<dyn MidHandshake>)
    }

    /// GnuTLS derives its ticket keys itself from the master secret fetched in
    /// [`Server::new`]: no key source is asked from inside a handshake.
    fn ticket_key_ring(&self) -> Option<(Arc<KeyRing>, SharedClock)> {
        None
    }

    /// Due when the master secret is a stand-in whose delay has passed.
    fn ticket_keys_due(&self) -> bool {
        self.master.due(self.settings.clock.now())
    }

    /// Asks the key source again about a stand-in master secret.
    fn refresh_ticket_keys(&self) -> Result<(), Error> {
        self.master
            .refresh(&self.settings, self.settings.clock.now());
        Ok(())
    }
}
