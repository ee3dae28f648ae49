//! [`Client`]: makes connections, offering and storing sessions through the
//! [`SessionStore`](tlsresume_core::SessionStore) in the settings.

use std::fmt;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::sync::Arc;

use tlsresume_core::contract::ClientHandshake;
use tlsresume_core::{ClientSettings, Error, NoOffer, OcspMode};

use crate::callbacks::{install_clock, ClockClaim};
use crate::client_conn::ClientPending;
use crate::config;
use crate::ffi::{Connection, Credentials, End, Session};
use crate::handshake::Handshake;
use crate::sessions::KnownSessions;

/// A GnuTLS client context.
///
/// Creating one makes `settings.clock` GnuTLS's process-wide time source.
pub struct Client {
    pub(crate) settings: Arc<ClientSettings>,
    clock: Arc<ClockClaim>,
    credentials: Arc<Credentials>,
    priority: String,
    sessions: Arc<KnownSessions>,
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

impl Client {
    /// Loads the trust anchors.
    pub fn new(settings: ClientSettings) -> Result<Self, Error> {
        settings.check()?;
        let clock = Arc::new(install_clock(&settings.clock)?);
        let credentials = config::client_credentials(&settings)?;
        let priority = config::priority(&settings.versions_in_force()?, settings.ciphers.as_ref())?;
        Ok(Self {
            settings: Arc::new(settings),
            clock,
            credentials,
            priority,
            sessions: Arc::default(),
        })
    }

    /// Sets up a client handshake over `transport` whose resumption decisions `handshake`
    /// makes (the generated `start_with_store` made it).
    pub(crate) fn begin<S: Read + Write>(
        &self,
        transport: S,
        mut handshake: ClientHandshake,
    ) -> Result<Handshake<S>, Error> {
        let settings = Arc::clone(handshake.settings());
        let mut session = Session::new(End::Client)?;
        session.set_priority(&self.priority)?;
        if handshake.server_name().parse::<IpAddr>().is_err() {
            session.set_server_name(handshake.server_name())?;
        }
        session.set_alpn(&settings.alpn)?;
        if settings.ocsp != OcspMode::Off {
            session.enable_ocsp_request()?;
        }
        // CLIENT_SUGGESTED only when GnuTLS took the stored session (as Exim sets it after
        // `gnutls_session_set_data` succeeds); one that does not open under the store's key is
        // never given to GnuTLS, and one GnuTLS refuses gives a full handshake, never an error.
        // The store's bytes this client sealed or opened last under this cache key are not
        // opened again (`sessions`): their data tag was made or checked then.
        let key = handshake.offer().key;
        let known = handshake
            .stored_session()
            .and_then(|stored| Some(&stored[self.sessions.known(&key, stored)?..]));
        let refused = match known {
            Some(data) => session.set_session_data(data).is_err(),
            None => {
                let stored = handshake.stored_session().map(<[u8]>::to_vec);
                match (handshake.session_to_offer(), stored) {
                    (Some(data), Some(stored)) => {
                        let refused = session.set_session_data(data).is_err();
                        if !refused {
                            let start = stored.len().saturating_sub(data.len());
                            self.sessions.keep(&key, stored, start);
                        }
                        refused
                    }
                    _ => false,
                }
            }
        };
        if refused {
            self.sessions.forget(&key);
            handshake.withdraw(NoOffer::LibraryRefused);
        }
        let mut conn = Connection::new(session, self.credentials.clone(), transport)?;
        conn.limit_handshake(crate::config::CLIENT_HANDSHAKE_BYTES);
        Ok(Handshake::client(
            conn,
            ClientPending {
                handshake,
                clock: self.clock.clone(),
                sessions: self.sessions.clone(),
            },
        ))
    }
}
