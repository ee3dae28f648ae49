//! The server: `Server` builds two rustls configurations (tickets for allowed clients, none
//! for the rest) and runs handshakes with a per-connection ticketer.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::server::NoServerSessionStorage;
use rustls::{ServerConfig, ServerConnection};
use tlsresume_core::contract::ServerStart;
use tlsresume_core::keys::key_ring::KeyRing;
use tlsresume_core::keys::seal::TicketSealer;
use tlsresume_core::{ClientAuth, Error, ServerSettings};

use crate::client_auth::ClientVerifier;
use crate::config::{provider_for, versions, ClockTime};
use crate::error::tls;
use crate::handshake::Handshake;
use crate::identities::{Keys, Resolver};
use crate::info::ServerState;
use crate::io::Tls;
use crate::tickets::{TicketRecord, Ticketer};
use tlsresume_core::contract::ServerHandshake;

/// A rustls server whose tickets follow the settings' `TicketPolicy` on the settings' clock.
///
/// Session IDs are off (no server-side session cache): resumption is by stateless tickets only,
/// sealed by the core `KeyRing`.
#[derive(Debug)]
pub struct Server {
    pub(crate) settings: ServerSettings,
    /// One pair of configurations per client-certificate mode in use: off always, try and
    /// require when the settings ask some clients for certificates (rustls sets the verifier
    /// when a configuration is built).
    configs: Vec<Configs>,
    pub(crate) ring: Arc<KeyRing>,
    keys: Arc<Keys>,
    lifetime: Duration,
}

impl Server {
    /// Builds the server. Fails on an invalid ticket policy, a key that does not match the
    /// certificate, or a version range rustls cannot serve.
    pub fn new(settings: ServerSettings) -> Result<Self, Error> {
        settings.check_for(crate::BACKEND)?;
        let policy = settings.ticket_policy_for(crate::BACKEND);
        let keys = Arc::new(Keys::new(&settings)?);
        let ring = Arc::new(KeyRing::new(policy, settings.key_source.clone()));
        let ticketer = Arc::new(Ticketer {
            sealer: TicketSealer::new(ring.clone()),
            clock: settings.clock.clone(),
            lifetime_secs: u32::try_from(policy.lifetime().as_secs()).unwrap_or(u32::MAX),
        });
        let mut configs = vec![Configs::new(&settings, &keys, ClientAuth::Off, &ticketer)?];
        if settings.asks_client_certificates() {
            configs.push(Configs::new(&settings, &keys, ClientAuth::Try, &ticketer)?);
            configs.push(Configs::new(
                &settings,
                &keys,
                ClientAuth::Require,
                &ticketer,
            )?);
        }
        Ok(Self {
            settings,
            configs,
            ring,
            keys,
            lifetime: policy.lifetime(),
        })
    }

    /// Sets up a server handshake over `transport` that starts as `start` decided (the
    /// generated `start` decided it).
    pub(crate) fn begin<S: Read + Write>(
        &self,
        transport: S,
        start: ServerStart,
    ) -> Result<Handshake<S>, Error> {
        let record = Arc::new(Mutex::new(TicketRecord {
            handshake: ServerHandshake::new(crate::BACKEND, start),
            decision: None,
            // One certificate: it is the one sent (the resolver says so again when it runs).
            served: self.keys.only(),
            stapling: self.settings.ocsp_response.is_some(),
            lifetime: self.lifetime,
        }));
        let configs = self
            .configs
            .iter()
            .find(|c| c.auth == start.client_auth)
            .ok_or_else(|| {
                Error::Config(format!(
                    "client certificates ({}) asked of a client by a server without client CAs",
                    start.client_auth.name()
                ))
            })?;
        // The configurations are shared: their ticketer and certificate resolver reach this
        // connection's record through `recording`, around each handshake step.
        let config = if start.may_issue {
            configs.with_tickets.clone()
        } else {
            configs.without_tickets.clone()
        };
        let conn = ServerConnection::new(config).map_err(tls)?;
        Ok(Handshake::server(
            Box::new(Tls::new(conn, transport)),
            ServerState {
                record,
                client_verifier: configs.verifier.clone(),
            },
        ))
    }
}

/// The configurations of one client-certificate mode: with tickets and without.
#[derive(Debug)]
struct Configs {
    auth: ClientAuth,
    with_tickets: Arc<ServerConfig>,
    without_tickets: Arc<ServerConfig>,
    verifier: Option<Arc<ClientVerifier>>,
}

impl Configs {
    fn new(
        settings: &ServerSettings,
        keys: &Arc<Keys>,
        auth: ClientAuth,
        ticketer: &Arc<Ticketer>,
    ) -> Result<Self, Error> {
        let builder = ServerConfig::builder_with_details(
            provider_for(settings.ciphers.as_ref())?,
            Arc::new(ClockTime(settings.clock.clone())),
        )
        .with_protocol_versions(&versions(&settings.versions_in_force()?)?)
        .map_err(tls)?;
        let verifier = match auth {
            ClientAuth::Off => None,
            ClientAuth::Try | ClientAuth::Require => Some(Arc::new(ClientVerifier::new(
                &settings.client_roots,
                auth == ClientAuth::Require,
                settings.clock.clone(),
            )?)),
        };
        let builder = match &verifier {
            Some(v) => builder.with_client_cert_verifier(v.clone()),
            None => builder.with_no_client_auth(),
        };
        // A connection that gets tickets records the name the client sent (its tickets are
        // bound to it) and the certificate chosen; one that does not, the certificate chosen
        // when there is a choice.
        let mut config = builder.with_cert_resolver(Arc::new(Resolver {
            keys: Arc::clone(keys),
            records: true,
        }));
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.alpn_protocols = settings.alpn.clone();
        let mut without = config.clone();
        without.send_tls13_tickets = 0;
        without.cert_resolver = Arc::new(Resolver {
            keys: Arc::clone(keys),
            records: keys.several(),
        });
        // After every TLS 1.3 handshake, full or resumed (rustls sends the same number).
        config.send_tls13_tickets =
            usize::try_from(settings.tls13_tickets_for(crate::BACKEND)).unwrap_or(usize::MAX);
        config.ticketer = ticketer.clone();
        Ok(Self {
            auth,
            with_tickets: Arc::new(config),
            without_tickets: Arc::new(without),
            verifier,
        })
    }
}
