//! [`Server`]: accepts connections, issuing and accepting tickets under GnuTLS's own key
//! derivation from the key source's master secret.

use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;

use tlsresume_core::contract::ServerStart;
use tlsresume_core::contract::TlsServer;
use tlsresume_core::keys::key_ring::KeyRing;
use tlsresume_core::{BackendKind, ClientAuth, Error, ServerParams, ServerSettings, SharedClock};

use crate::callbacks::{install_clock, ClockClaim};
use crate::config;
use crate::ffi::{Connection, Credentials, End, Session};
use crate::handshake::Handshake;
use crate::names::NameChoice;
use crate::server_conn::{OwnLeaves, ServerPending};
use crate::tickets;
use crate::BACKEND;
use tlsresume_core::identities::IdentityTable;

/// A GnuTLS server context.
///
/// Creating one makes `settings.clock` GnuTLS's process-wide time source.
pub struct Server {
    pub(crate) settings: ServerSettings,
    clock: Arc<ClockClaim>,
    table: Arc<IdentityTable>,
    /// The credentials of each set of identities (set 0: the default).
    credentials: Arc<Vec<Arc<Credentials>>>,
    master: tickets::MasterKey,
    priority: String,
    leaves: Arc<OwnLeaves>,
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
        let table = Arc::new(settings.identity_table()?);
        let credentials = Arc::new(config::server_credentials(&settings, &table)?);
        let priority = config::priority(&settings.versions_in_force()?, settings.ciphers.as_ref())?;
        let master = tickets::MasterKey::fetch(&settings)?;
        let leaf = |entry: &tlsresume_core::identities::ServerIdentity| {
            entry
                .identity()
                .chain()
                .first()
                .map(|der| Arc::<[u8]>::from(der.as_slice()))
        };
        let all: Vec<Arc<[u8]>> = table.entries().iter().filter_map(leaf).collect();
        // The first identity's leaf, when it has one, is the first kept.
        let primary = table
            .entries()
            .first()
            .and_then(|first| first.identity().chain().first())
            .and(all.first().cloned());
        Ok(Self {
            settings,
            clock,
            table,
            credentials,
            master,
            priority,
            leaves: Arc::new(OwnLeaves { primary, all }),
        })
    }

    /// Sets up a server handshake over `transport` that starts as `start` decided (the
    /// generated `start` decided it).
    pub(crate) fn begin<S: Read + Write>(
        &self,
        transport: S,
        start: ServerStart,
    ) -> Result<Handshake<S>, Error> {
        // GnuTLS sends two TLS 1.3 tickets by itself; another count is sent on request after
        // the handshake (by `Handshake::resume`), to clients given tickets only.
        let count = self.settings.tls13_tickets_for(BACKEND);
        let automatic = count == BACKEND.default_tls13_tickets();
        let mut session = if automatic {
            Session::new(End::Server)?
        } else {
            Session::server_sending_tickets_on_request()?
        };
        session.set_priority(&self.priority)?;
        session.set_alpn(&self.settings.alpn)?;
        let lifetime = tickets::expiration_secs(&self.settings);
        let mut master = None;
        if start.may_issue {
            // A stand-in master asked about again (a blocking server; an async one did it
            // off the runtime before, see `refresh_ticket_keys`).
            let now = self.settings.clock.now();
            if self.master.due(now) {
                self.master.refresh(&self.settings, now);
            }
            let current = self.master.current();
            session.enable_tickets_server(current.bytes())?;
            session.set_cache_expiration(lifetime);
            master = Some(current);
        }
        match start.client_auth {
            ClientAuth::Off => {}
            ClientAuth::Try => session.request_client_certificate(false),
            ClientAuth::Require => session.request_client_certificate(true),
        }
        let default = self
            .credentials
            .first()
            .cloned()
            .ok_or_else(|| Error::Config("no server certificate".into()))?;
        let mut conn = Connection::new(session, default, transport)?;
        conn.limit_handshake(crate::config::SERVER_HANDSHAKE_BYTES);
        conn.choose_by_name(NameChoice {
            table: Arc::clone(&self.table),
            credentials: Arc::clone(&self.credentials),
            master,
        });
        Ok(Handshake::server(
            conn,
            ServerPending {
                start,
                stapling: self.settings.ocsp_response.is_some(),
                leaves: Arc::clone(&self.leaves),
                iana_names: self.settings.resumption.known_issues().iana_cipher_names,
                tickets_on_request: (!automatic && start.may_issue && count > 0).then_some(count),
                clock: self.clock.clone(),
            },
        ))
    }
}

impl TlsServer for Server {
    const KIND: BackendKind = BACKEND;
    type Handshake<S: Read + Write> = Handshake<S>;

    fn settings(&self) -> &ServerSettings {
        &self.settings
    }

    fn start_accept<S: Read + Write>(
        &self,
        transport: S,
        params: &ServerParams,
    ) -> Result<Handshake<S>, Error> {
        Server::start(self, transport, params)
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
