//! [`Client`]: makes connections, offering and storing sessions through the
//! [`SessionStore`](tlsresume_core::SessionStore) in the settings.

use std::fmt;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::sync::Arc;

use tlsresume_core::contract::ClientHandshake;
use tlsresume_core::{ClientParams, ClientSettings, Error, NoOffer, OcspMode, SessionStore};

use crate::callbacks::{install_clock, ClockClaim};
use crate::client_conn::ClientPending;
use crate::config;
use crate::ffi::{Connection, Credentials, End, Session};
use crate::handshake::Handshake;
use crate::BACKEND;

/// A GnuTLS client context.
///
/// Creating one makes `settings.clock` GnuTLS's process-wide time source.
pub struct Client {
    pub(crate) settings: Arc<ClientSettings>,
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
