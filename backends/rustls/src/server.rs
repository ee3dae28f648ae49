//! The server: `Server` builds two rustls configurations (tickets for allowed clients, none
//! for the rest) and runs handshakes with a per-connection ticketer.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::server::NoServerSessionStorage;
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use tlsresume_core::contract::ServerStart;
use tlsresume_core::keys::key_ring::KeyRing;
use tlsresume_core::keys::seal::TicketSealer;
use tlsresume_core::{Error, ServerSettings};

use crate::config::{chain_and_key, provider, versions, ClockTime};
use crate::error::tls;
use crate::handshake::Handshake;
use crate::info::ServerState;
use crate::tickets::{TicketRecord, Ticketer};
use tlsresume_core::contract::ServerHandshake;

/// A rustls server whose tickets follow the settings' `TicketPolicy` on the settings' clock.
///
/// Session IDs are off (no server-side session cache): resumption is by stateless tickets only,
/// sealed by the core `KeyRing`.
#[derive(Debug)]
pub struct Server {
    pub(crate) settings: ServerSettings,
    with_tickets: Arc<ServerConfig>,
    without_tickets: Arc<ServerConfig>,
    pub(crate) ring: Arc<KeyRing>,
    sealer: TicketSealer,
    lifetime: Duration,
}

impl Server {
    /// Builds the server. Fails on an invalid ticket policy, a key that does not match the
    /// certificate, or a version range rustls cannot serve.
    pub fn new(settings: ServerSettings) -> Result<Self, Error> {
        settings.check_for(crate::BACKEND)?;
        let policy = settings.ticket_policy_for(crate::BACKEND);
        let (chain, key) = chain_and_key(&settings.identity);
        let builder = ServerConfig::builder_with_details(
            provider(),
            Arc::new(ClockTime(settings.clock.clone())),
        )
        .with_protocol_versions(&versions(&settings.versions)?)
        .map_err(tls)?
        .with_no_client_auth();
        let built = match &settings.ocsp_response {
            Some(ocsp) => builder.with_single_cert_with_ocsp(chain, key, ocsp.clone()),
            None => builder.with_single_cert(chain, key),
        };
        let mut config =
            built.map_err(|e| Error::Config(format!("server certificate and private key: {e}")))?;
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.alpn_protocols = settings.alpn.clone();
        let mut without = config.clone();
        without.send_tls13_tickets = 0;
        let ring = Arc::new(KeyRing::new(policy, settings.key_source.clone()));
        let sealer = TicketSealer::new(ring.clone());
        config.send_tls13_tickets = 1;
        Ok(Self {
            settings,
            with_tickets: Arc::new(config),
            without_tickets: Arc::new(without),
            ring,
            sealer,
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
        }));
        let config = if start.may_issue {
            let mut config = ServerConfig::clone(&self.with_tickets);
            config.ticketer = Arc::new(Ticketer {
                sealer: self.sealer.clone(),
                clock: self.settings.clock.clone(),
                lifetime_secs: u32::try_from(self.lifetime.as_secs()).unwrap_or(u32::MAX),
                record: record.clone(),
            });
            Arc::new(config)
        } else {
            self.without_tickets.clone()
        };
        let conn = ServerConnection::new(config).map_err(tls)?;
        Ok(Handshake::server(
            Box::new(StreamOwned::new(conn, transport)),
            ServerState {
                record,
                stapling: self.settings.ocsp_response.is_some(),
                lifetime: self.lifetime,
            },
        ))
    }
}
