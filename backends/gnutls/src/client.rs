//! [`Client`]: makes connections, offering and storing sessions through the
//! [`SessionStore`](tlsresume_core::SessionStore) in the settings.

use std::fmt;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tlsresume_core::contract::{connection_settings, ClientContract};
use tlsresume_core::{
    BackendKind, ClientContext, ClientOffer, ClientParams, ClientSettings, Error, MidHandshake,
    OcspMode, OcspStatus, ProtocolVersion, Resumption, SessionInfo, SessionKey, SessionStore, Side,
    TlsFailure, TlsStream, Transport, Verification, VerifyMode,
};

use crate::callbacks::{install_clock, ClockClaim};
use crate::config;
use crate::error::handshake;
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

/// The first bytes of [`seal_session_data`]'s output (`2`: keyed; the unkeyed `TRG1` of
/// earlier versions no longer opens, so such entries give a full handshake).
const SESSION_MAGIC: &[u8; 4] = b"TRG2";
const TAG_LEN: usize = 32;

/// This backend's serialisation of a GnuTLS session for the cache: `TRG2`, HMAC-SHA256 of the
/// data under the client's [`SessionKey`], then `gnutls_session_get_data2`'s bytes.
///
/// GnuTLS 3.7.9 trusts the session data it is given: a flipped byte in a TLS 1.2 session made
/// `gnutls_session_set_data` succeed and `gnutls_session_get_data2` crash later, and forged data
/// found by fuzzing crashes `gnutls_deinit` or makes GnuTLS use a failed 47 GB allocation
/// (`fuzz/regressions/gnutls_*`). An unkeyed digest stops only accidents: a writer of the
/// cache (the file, Redis) can compute it. The key can be shared only by the processes that
/// share the cache, so what does not open under it is never given to GnuTLS (a full handshake).
pub fn seal_session_data(key: &SessionKey, data: &[u8]) -> Vec<u8> {
    let tag = ring::hmac::sign(&hmac_key(key), data);
    let mut out = Vec::with_capacity(SESSION_MAGIC.len() + TAG_LEN + data.len());
    out.extend_from_slice(SESSION_MAGIC);
    out.extend_from_slice(tag.as_ref());
    out.extend_from_slice(data);
    out
}

/// The GnuTLS session data inside [`seal_session_data`]'s output under `key`, or `None` when it
/// is not such output, was damaged, or was sealed under another key.
pub fn open_session_data<'a>(key: &SessionKey, sealed: &'a [u8]) -> Option<&'a [u8]> {
    let rest = sealed.strip_prefix(SESSION_MAGIC)?;
    if rest.len() < TAG_LEN {
        return None;
    }
    let (tag, data) = rest.split_at(TAG_LEN);
    ring::hmac::verify(&hmac_key(key), data, tag).ok()?;
    Some(data)
}

fn hmac_key(key: &SessionKey) -> ring::hmac::Key {
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes())
}

/// Stores the session whenever GnuTLS has a ticket for it: after the handshake and after each
/// read on which the NEW_SESSION_TICKET hook saw a ticket (TLS 1.3).
#[derive(Debug)]
pub(crate) struct TicketSaver {
    settings: Arc<ClientSettings>,
    offer: ClientOffer,
    resumed: bool,
    verification: Verification,
    ocsp: OcspStatus,
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
        info.resumption |= Resumption::SERVER_TICKET;
        if !self.offer.may_resume {
            self.saved_tickets = conn.tickets_received();
            return;
        }
        let Ok(data) = session.session_data() else {
            return;
        };
        // The lifetime the NewSessionTicket carried (read by the handshake hook); when the hook
        // saw none, "unspecified" (0), which `entry_for` resolves for the store.
        let sent = conn
            .ticket_lifetime()
            .map(|secs| Duration::from_secs(u64::from(secs)));
        let lifetime = sent.unwrap_or(Duration::ZERO);
        let entry = self.settings.entry_for(
            BACKEND,
            &self.offer,
            self.resumed,
            self.verification,
            self.ocsp,
            self.protocol,
            lifetime,
            seal_session_data(&self.settings.session_key, data.as_slice()),
        );
        // A store failure loses the session, never the connection.
        if self.settings.store.put(&self.offer.key, entry).is_ok() {
            info.ticket_lifetime = sent;
        }
        self.saved_tickets = conn.tickets_received();
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
        let settings = &connection_settings(&self.settings, store);
        // GnuTLS does no expiry filtering of its own; only the hardened policy filters.
        let mut offer = settings.offer(BACKEND, params, false);
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
        // `gnutls_session_set_data` succeeds); one that does not open or load is removed and the
        // handshake is a full one, never an error.
        if let Some(entry) = &offer.entry {
            let loaded = open_session_data(&settings.session_key, &entry.session)
                .is_some_and(|data| session.set_session_data(data).is_ok());
            if !loaded {
                let _ = settings.store.remove(&offer.key);
                offer.withdraw();
            }
        }
        let conn = Connection::new(session, self.credentials.clone(), transport)?;
        Ok(Handshake::client(
            conn,
            ClientPending {
                settings: Arc::clone(settings),
                offer,
                server_name: params.server_name.clone(),
                clock: self.clock.clone(),
            },
        ))
    }
}

/// What a client handshake needs once GnuTLS has finished it.
#[derive(Debug)]
pub(crate) struct ClientPending {
    settings: Arc<ClientSettings>,
    offer: ClientOffer,
    server_name: String,
    clock: Arc<ClockClaim>,
}

impl ClientPending {
    /// After the handshake: verification, OCSP, the bits, the first session stored.
    pub(crate) fn finish<S: Read + Write>(
        self,
        mut conn: Connection<S>,
    ) -> Result<Stream<S>, Error> {
        let Self {
            settings,
            offer,
            server_name,
            clock,
        } = self;
        let settings = &settings;
        let s = conn.session();
        let resumed = s.is_resumed();
        let protocol = s.protocol();
        let peer_certificates = s.peer_certificates();
        let seen = if peer_certificates.is_empty() {
            Verification::NotChecked
        } else {
            match s.verify_peers(Some(&server_name)) {
                Ok(0) => Verification::Verified,
                _ => Verification::Failed,
            }
        };
        if seen == Verification::Failed && settings.verify == VerifyMode::Require {
            let _ = conn.bye();
            return Err(handshake(
                TlsFailure::Certificate,
                format!("the certificate of {server_name} did not verify"),
            ));
        }
        let ocsp_seen = if settings.ocsp == OcspMode::Off {
            OcspStatus::NotRequested
        } else if s.ocsp_verified() {
            OcspStatus::Verified
        } else if s.ocsp_received() {
            OcspStatus::Failed
        } else {
            OcspStatus::NoResponse
        };
        let verification = settings.reported_verification(&offer, resumed, seen);
        let ocsp = settings.reported_ocsp(&offer, resumed, ocsp_seen);
        if settings.ocsp_requirement_failed(ocsp) {
            let _ = conn.bye();
            return Err(handshake(
                TlsFailure::Ocsp,
                format!("OCSP required and the status is {ocsp} (resumed: {resumed})"),
            ));
        }
        let mut bits = offer.bits;
        if resumed {
            bits |= Resumption::USED;
        }
        let mut info = SessionInfo {
            side: Side::Client,
            protocol,
            cipher: cipher_names(s, settings.resumption.known_issues().iana_cipher_names),
            resumption: bits,
            resumed,
            verification,
            ocsp,
            ocsp_detail: None,
            peer_certificates,
            sni: Some(server_name.clone()),
            alpn: s.alpn_selected(),
            ticket_lifetime: None,
        };
        let mut saver = TicketSaver {
            settings: settings.clone(),
            offer,
            resumed,
            verification,
            ocsp,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_session_data_opens_and_damage_is_detected() {
        let key = SessionKey::from_bytes([7; 32]);
        let sealed = seal_session_data(&key, b"gnutls session");
        assert_eq!(
            open_session_data(&key, &sealed),
            Some(&b"gnutls session"[..])
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(open_session_data(&key, &bad), None, "byte {i}");
        }
        assert_eq!(open_session_data(&key, b""), None);
        assert_eq!(open_session_data(&key, b"TRG2short"), None);
        // Another key, or the old unkeyed format: never opens.
        let other = SessionKey::from_bytes([8; 32]);
        assert_eq!(open_session_data(&other, &sealed), None);
        let digest = ring::digest::digest(&ring::digest::SHA256, b"gnutls session");
        let mut old = b"TRG1".to_vec();
        old.extend_from_slice(&digest.as_ref()[..16]);
        old.extend_from_slice(b"gnutls session");
        assert_eq!(open_session_data(&key, &old), None);
    }
}
