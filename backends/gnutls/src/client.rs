//! [`Client`]: makes connections, offering and storing sessions through the
//! [`SessionStore`](tlsresume_core::SessionStore) in the settings.

use std::fmt;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tlsresume_core::contract::{ClientHandshake, ReceivedSession};
use tlsresume_core::{
    BackendKind, ClientContext, ClientParams, ClientSettings, Error, MidHandshake, NoOffer,
    OcspMode, OcspStatus, ProtocolVersion, SessionInfo, SessionStore, Side, TlsStream, Transport,
    Verification,
};

use crate::callbacks::{install_clock, ClockClaim};
use crate::config;
use crate::ffi::{Connection, Credentials, End, Session};
use crate::handshake::Handshake;
use crate::info::{cipher_names, Stream};
use crate::BACKEND;

/// A GnuTLS client context.
///
/// Creating one makes `settings.clock` GnuTLS's process-wide time source.
pub struct Client {
    settings: Arc<ClientSettings>,
    clock: Arc<ClockClaim>,
    credentials: Arc<Credentials>,
    priority: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("priority", &self.priority)
            .field("verify", &self.settings.verify)
            .field("ocsp", &self.settings.ocsp)
            .finish_non_exhaustive()
    }
}

/// Stores the session whenever GnuTLS has a ticket for it: after the handshake and after each
/// read on which the NEW_SESSION_TICKET hook saw a ticket (TLS 1.3). What is stored, sealed
/// and reported is decided by the connection's [`ClientHandshake`].
#[derive(Debug)]
pub(crate) struct TicketSaver {
    handshake: ClientHandshake,
    protocol: ProtocolVersion,
    saved_tickets: u32,
}

impl TicketSaver {
    /// Saves if the session carries a ticket GnuTLS has not handed over yet.
    fn save<S>(&mut self, conn: &Connection<S>, info: &mut SessionInfo) {
        let session = conn.session();
        // In TLS 1.3 a ticket has arrived only once the NEW_SESSION_TICKET hook saw one (and
        // `get_data2` returns placeholder data until then).
        let tls13_waiting = self.protocol == ProtocolVersion::Tls13 && conn.tickets_received() == 0;
        if !session.has_ticket_flag() || tls13_waiting {
            return;
        }
        // GnuTLS always asks for tickets, and Exim's GnuTLS client sets SERVER_TICKET whenever
        // one arrived (`GNUTLS_SFLAGS_SESSION_TICKET`), also when it is not configured to
        // resume (0x09, "no client request"); it only stores the session when it may resume.
        self.handshake.ticket_seen();
        if self.handshake.may_resume() {
            if let Ok(data) = session.session_data() {
                // The lifetime the NewSessionTicket carried (read by the handshake hook); when
                // the hook saw none, "unspecified".
                let _ = self.handshake.store_session(ReceivedSession {
                    resumed: self.handshake.resumed(),
                    protocol: self.protocol,
                    lifetime_hint: conn
                        .ticket_lifetime()
                        .map(|secs| Duration::from_secs(u64::from(secs))),
                    data: data.as_slice(),
                });
            }
        }
        self.saved_tickets = conn.tickets_received();
        *info = self.handshake.report(info.clone());
    }

    /// Called by the stream after each read.
    pub(crate) fn after_read<S>(&mut self, conn: &Connection<S>, info: &mut SessionInfo) {
        if conn.tickets_received() > self.saved_tickets {
            self.save(conn, info);
        }
    }
}

impl Client {
    /// Loads the trust anchors.
    pub fn new(settings: ClientSettings) -> Result<Self, Error> {
        settings.check()?;
        let clock = Arc::new(install_clock(&settings.clock)?);
        let credentials = config::client_credentials(&settings)?;
        let priority = config::priority(&settings.versions)?;
        Ok(Self {
            settings: Arc::new(settings),
            clock,
            credentials,
            priority,
        })
    }

    /// Runs the client side of a handshake, offering a cached session when the policy allows.
    pub fn connect<S: Read + Write>(
        &self,
        transport: S,
        params: &ClientParams,
    ) -> Result<Stream<S>, Error> {
        self.start(transport, params)?.resume()?.blocking()
    }

    /// Sets up the client side of a handshake without running it: [`Handshake::resume`] drives
    /// it, over a transport that may report `WouldBlock` (GnuTLS's pull/push then return
    /// EAGAIN and `gnutls_handshake` is called again). [`connect`](Self::connect) is this,
    /// resumed once.
    pub fn start<S: Read + Write>(
        &self,
        transport: S,
        params: &ClientParams,
    ) -> Result<Handshake<S>, Error> {
        self.start_with_store(transport, params, None)
    }

    /// [`start`](Self::start) with `store` in place of the settings' session store for this
    /// connection (a [`DeferredStore`](tlsresume_core::DeferredStore) in the async layer).
    pub fn start_with_store<S: Read + Write>(
        &self,
        transport: S,
        params: &ClientParams,
        store: Option<Arc<dyn SessionStore>>,
    ) -> Result<Handshake<S>, Error> {
        // GnuTLS does no expiry filtering of its own; only the hardened policy filters.
        let mut handshake = ClientHandshake::start(&self.settings, store, BACKEND, params, false);
        let settings = Arc::clone(handshake.settings());
        let mut session = Session::new(End::Client)?;
        session.set_priority(&self.priority)?;
        if params.server_name.parse::<IpAddr>().is_err() {
            session.set_server_name(&params.server_name)?;
        }
        session.set_alpn(&settings.alpn)?;
        if settings.ocsp != OcspMode::Off {
            session.enable_ocsp_request()?;
        }
        // CLIENT_SUGGESTED only when GnuTLS took the stored session (as Exim sets it after
        // `gnutls_session_set_data` succeeds); one that does not open under the store's key is
        // never given to GnuTLS, and one GnuTLS refuses gives a full handshake, never an error.
        let refused = handshake
            .session_to_offer()
            .is_some_and(|data| session.set_session_data(data).is_err());
        if refused {
            handshake.withdraw(NoOffer::LibraryRefused);
        }
        let conn = Connection::new(session, self.credentials.clone(), transport)?;
        Ok(Handshake::client(
            conn,
            ClientPending {
                handshake,
                clock: self.clock.clone(),
            },
        ))
    }
}

/// What a client handshake needs once GnuTLS has finished it.
#[derive(Debug)]
pub(crate) struct ClientPending {
    handshake: ClientHandshake,
    clock: Arc<ClockClaim>,
}

impl ClientPending {
    /// After the handshake: what GnuTLS saw goes to the connection's [`ClientHandshake`], which
    /// decides; then the first session is stored.
    pub(crate) fn finish<S: Read + Write>(
        self,
        mut conn: Connection<S>,
    ) -> Result<Stream<S>, Error> {
        let Self {
            mut handshake,
            clock,
        } = self;
        let s = conn.session();
        let resumed = s.is_resumed();
        let protocol = s.protocol();
        let peer_certificates = s.peer_certificates();
        // GnuTLS checks the chain only when asked, and only when it has one (not on resumption:
        // the known issue shows under the Exim policy).
        if !peer_certificates.is_empty() {
            handshake.saw_verification(match s.verify_peers(Some(handshake.server_name())) {
                Ok(0) => Verification::Verified,
                _ => Verification::Failed,
            });
        }
        if handshake.settings().ocsp != OcspMode::Off {
            let status = if s.ocsp_verified() {
                OcspStatus::Verified
            } else if s.ocsp_received() {
                OcspStatus::Failed
            } else {
                OcspStatus::NoResponse
            };
            handshake.saw_ocsp(status, None);
        }
        if let Err(e) = handshake.finish(resumed) {
            let _ = conn.bye();
            return Err(e);
        }
        let mut library = SessionInfo::new(Side::Client, protocol);
        library.cipher = cipher_names(
            s,
            handshake
                .settings()
                .resumption
                .known_issues()
                .iana_cipher_names,
        );
        library.peer_certificates = peer_certificates;
        library.alpn = s.alpn_selected();
        let mut info = handshake.report(library);
        let mut saver = TicketSaver {
            handshake,
            protocol,
            saved_tickets: 0,
        };
        saver.save(&conn, &mut info);
        Ok(Stream::new(conn, info, Some(saver), clock))
    }
}

impl ClientContext for Client {
    fn backend(&self) -> BackendKind {
        BACKEND
    }

    fn connect(
        &self,
        transport: Box<dyn Transport>,
        params: &ClientParams,
    ) -> Result<Box<dyn TlsStream>, Error> {
        Client::connect(self, transport, params).map(|s| Box::new(s) as Box<dyn TlsStream>)
    }

    fn start_connect(
        &self,
        transport: Box<dyn Transport>,
        params: &ClientParams,
        store: Option<Arc<dyn SessionStore>>,
    ) -> Result<Box<dyn MidHandshake>, Error> {
        Client::start_with_store(self, transport, params, store)
            .map(|h| Box::new(h) as Box<dyn MidHandshake>)
    }

    fn client_settings(&self) -> &ClientSettings {
        &self.settings
    }
}
