//! The client: [`Client`], an OpenSSL context whose connections offer and store sessions
//! through the [`SessionStore`](tlsresume_core::SessionStore) in the settings.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use openssl::ssl::{Ssl, SslContext, SslMethod, SslSessionCacheMode, StatusType};
use std::io::{Read, Write};

use tlsresume_core::contract::ClientHandshake;
use tlsresume_core::dane::DanePlan;
use tlsresume_core::{ClientSettings, Error, NoOffer, OcspMode};

use crate::certs::PeerChains;
use crate::client_conn::{client_index, ClientConn, ClientShared, ClientState, Roots};
use crate::config;
use crate::error;
use crate::ffi;
use crate::handshake::Handshake;
use crate::sessions::DecodedSessions;
use crate::BACKEND;

/// An OpenSSL client configuration: trust anchors, versions, OCSP, and the session cache
/// bridge (cache mode CLIENT without OpenSSL's internal cache; sessions go to
/// [`ClientSettings::store`] as DER).
pub struct Client {
    ctx: SslContext,
    pub(crate) settings: Arc<ClientSettings>,
    pub(crate) shared: Arc<ClientShared>,
    alpn: Vec<u8>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("backend", &BACKEND)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client from the common settings.
    pub fn new(settings: ClientSettings) -> Result<Self, Error> {
        settings.check()?;
        if client_index().is_none() {
            return Err(error::tls("could not allocate an SSL ex_data index"));
        }
        let mut ctx = openssl::ssl::SslContext::builder(SslMethod::tls_client())
            .map_err(|e| error::config("SSL context", e))?;
        let versions = settings.versions_in_force()?;
        config::set_versions(&mut ctx, versions)?;
        if let Some(list) = &settings.ciphers {
            config::set_ciphers(&mut ctx, list, versions)?;
        }
        match &settings.identity {
            Some(identity) => {
                config::load_identity(&mut ctx, identity)?;
            }
            None => ffi::set_client_cert_cb(&mut ctx, crate::callbacks::raw_client_cert),
        }
        let (store, certs) = config::roots(&settings.roots)?;
        // The chain check uses a store of our own, so the system's default paths never count.
        let (ctx_store, _) = config::roots(&settings.roots)?;
        ctx.set_cert_store(ctx_store);
        ctx.set_session_cache_mode(SslSessionCacheMode::CLIENT | SslSessionCacheMode::NO_INTERNAL);
        // Every connection verifies the server; the connection's state records and decides.
        ffi::set_verify_peer_cb(&mut ctx, crate::callbacks::raw_client_verify);
        ffi::ctx_dane_enable(&mut ctx).map_err(|e| error::config("DANE", e))?;
        // New sessions and the server's OCSP status go to the connection's state.
        ffi::set_new_session_cb(&mut ctx, crate::callbacks::raw_new_session);
        ffi::set_status_cb(&mut ctx, crate::callbacks::raw_client_status)
            .map_err(|e| error::config("OCSP status callback", e))?;
        let alpn = config::alpn_wire(&settings.alpn)?;
        Ok(Self {
            ctx: ctx.build(),
            settings: Arc::new(settings),
            shared: Arc::new(ClientShared {
                roots: Roots { store, certs },
                sessions: DecodedSessions::default(),
                chains: PeerChains::default(),
            }),
            alpn,
        })
    }

    /// Sets up a client handshake over `transport` whose resumption decisions `handshake`
    /// makes (the generated `start_with_store` made it).
    pub(crate) fn begin<S: Read + Write>(
        &self,
        transport: S,
        mut handshake: ClientHandshake,
    ) -> Result<Handshake<S>, Error> {
        let index = client_index().ok_or_else(|| error::tls("no SSL ex_data index"))?;
        let settings = Arc::clone(handshake.settings());
        let mut ssl = Ssl::new(&self.ctx).map_err(|e| error::stack("SSL", e))?;

        // The session to offer: a copy of the one kept decoded while the store holds the same
        // bytes; otherwise the stored bytes opened under the store's key and decoded. One that
        // does not open is not offered; one OpenSSL refuses gives a full handshake. The store's
        // entry stays either way.
        let key = handshake.offer().key;
        let mut session = handshake
            .stored_session()
            .and_then(|stored| self.shared.sessions.kept(&key, stored));
        if session.is_none() {
            if let Some(stored) = handshake.stored_session().map(<[u8]>::to_vec) {
                let decoded = handshake
                    .session_to_offer()
                    .map(|der| self.shared.sessions.decode(&key, &stored, der));
                match decoded {
                    Some(Ok(s)) => session = Some(s),
                    Some(Err(_)) => handshake.withdraw(NoOffer::LibraryRefused),
                    None => {}
                }
            }
        }
        if let Some(s) = &session {
            if ffi::set_session(&mut ssl, s).is_err() {
                self.shared.sessions.forget(&key);
                handshake.withdraw(NoOffer::LibraryRefused);
                session = None;
            }
        }
        let offered_ticket = session
            .as_ref()
            .map(|s| ffi::session_ticket(s))
            .unwrap_or_default();
        if !handshake.may_resume() {
            ffi::set_no_ticket(&mut ssl);
        }

        // SNI and the name checked against the certificate: by DANE (libssl's own, with the
        // base domain and reference names), or by PKIX.
        let server_name = handshake.server_name();
        let dane = handshake.dane();
        if let DanePlan::Verify(check) = dane {
            let records: Vec<(u8, u8, u8, &[u8])> = check
                .records
                .iter()
                .map(|r| {
                    (
                        r.usage.code(),
                        r.selector.code(),
                        r.matching.code(),
                        r.data.as_slice(),
                    )
                })
                .collect();
            ffi::dane_enable(&mut ssl, &check.names, &records)
                .map_err(|e| error::stack("DANE TLSA records", e))?;
        } else if *dane == DanePlan::Unauthenticated {
            ssl.set_hostname(server_name)
                .map_err(|e| error::stack("SNI", e))?;
        } else {
            match server_name.parse::<IpAddr>() {
                Ok(ip) => ssl
                    .param_mut()
                    .set_ip(ip)
                    .map_err(|e| error::stack("peer IP", e))?,
                Err(_) => {
                    ssl.set_hostname(server_name)
                        .map_err(|e| error::stack("SNI", e))?;
                    ssl.param_mut()
                        .set_host(server_name)
                        .map_err(|e| error::stack("peer name", e))?;
                }
            }
        }
        let dane = !matches!(handshake.dane(), DanePlan::Off);
        let conn = Arc::new(ClientConn {
            settings,
            shared: Arc::clone(&self.shared),
            state: Mutex::new(ClientState {
                handshake,
                offered_ticket,
                verify_failed: false,
                dane_seen: false,
                received: None,
            }),
            dane,
        });
        index.set(&mut ssl, Arc::clone(&conn));

        if conn.settings.ocsp != OcspMode::Off {
            ssl.set_status_type(StatusType::OCSP)
                .map_err(|e| error::stack("OCSP status request", e))?;
        }
        if !self.alpn.is_empty() {
            ssl.set_alpn_protos(&self.alpn)
                .map_err(|e| error::stack("ALPN", e))?;
        }

        Ok(Handshake::client(ssl, transport, conn, session))
    }
}

#[cfg(test)]
mod tests {
    use crate::test_harness::Setup;
    use tlsresume_core::ProtocolVersion;

    /// The session a client stores is kept decoded: later resumptions with the same stored
    /// bytes decode nothing; bytes that change are decoded again.
    #[test]
    fn stored_sessions_are_decoded_once() {
        for version in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
            let pair = Setup::new(version).build();
            let sessions = &pair.client.shared.sessions;
            assert!(!pair.connect().client.resumed, "{version}: full");
            assert_eq!(sessions.len(), 1, "{version}: the stored session is kept");
            for i in 0..3 {
                assert!(pair.connect().client.resumed, "{version}: resumption {i}");
            }
            assert_eq!(sessions.decodes(), 0, "{version}: nothing decoded");

            // A stored session the client does not hold decoded (as one another process
            // wrote) is decoded once, then kept.
            sessions.forget(&pair.key());
            assert!(pair.connect().client.resumed, "{version}: resumed");
            assert!(pair.connect().client.resumed, "{version}: resumed");
            assert_eq!(sessions.decodes(), 1, "{version}: decoded once");

            // Damaged bytes do not open under the store's key: never decoded; a full
            // handshake, whose new session is kept.
            let mut entry = pair.entry().expect("entry");
            entry.session.truncate(entry.session.len() / 2);
            pair.put(entry.clone());
            assert!(!pair.connect().client.resumed, "{version}: damaged");
            assert_eq!(
                sessions.decodes(),
                1,
                "{version}: damaged bytes not decoded"
            );
            assert_eq!(sessions.len(), 1, "{version}: the new session is kept");

            // Other bytes than the kept session's that open (sealed DER OpenSSL refuses):
            // decoded (and refused), a full handshake, whose new session is kept.
            let der = pair.open(&pair.entry().expect("entry"));
            pair.reseal(&mut entry, &der[..der.len() / 2]);
            pair.put(entry);
            assert!(!pair.connect().client.resumed, "{version}: refused");
            assert_eq!(sessions.decodes(), 2, "{version}: decoded once more");
            assert_eq!(sessions.len(), 1, "{version}: the new session is kept");
        }
    }
}
