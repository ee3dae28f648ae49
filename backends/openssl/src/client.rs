//! The client: [`Client`], its per-connection state, and the bridge to the [`SessionStore`].
//!
//! [`SessionStore`]: tlsresume_core::SessionStore

use std::fmt;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use openssl::ex_data::Index;
use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspCertId, OcspCertStatus, OcspFlag, OcspResponse, OcspResponseStatus};
use openssl::ssl::{
    Ssl, SslContext, SslMethod, SslRef, SslSession, SslSessionCacheMode, SslSessionRef, SslStream,
    SslVerifyMode, StatusType,
};
use openssl::stack::StackRef;
use openssl::x509::store::X509Store;
use openssl::x509::{X509Ref, X509VerifyResult, X509};
use std::io::{Read, Write};

use tlsresume_core::contract::{connection_settings, ClientContract};
use tlsresume_core::{
    BackendKind, ClientContext, ClientOffer, ClientParams, ClientSettings, Error, MidHandshake,
    OcspMode, OcspStatus, ProtocolVersion, Resumption, SessionStore, TlsFailure, TlsStream,
    Transport, Verification, VerifyMode,
};

use crate::config;
use crate::error;
use crate::ffi;
use crate::handshake::Handshake;
use crate::info::{protocol_of, Stream};
use crate::sessions::DecodedSessions;
use crate::BACKEND;

/// The trust anchors: a store for chain and OCSP verification, and the certificates for
/// finding an OCSP issuer.
struct Roots {
    store: X509Store,
    certs: Vec<X509>,
}

/// What the client side of one connection has seen, shared with the callbacks.
#[derive(Debug)]
pub(crate) struct ClientState {
    /// The offer made before the handshake (its entry dropped if the library refused it).
    pub(crate) offer: ClientOffer,
    /// The ticket of the offered session (to spot a TLS 1.2 renewal).
    offered_ticket: Vec<u8>,
    /// Exim's bits so far.
    pub(crate) bits: Resumption,
    verify_called: bool,
    verify_failed: bool,
    ocsp_seen: Option<OcspStatus>,
    /// Whether the handshake resumed (known once it is done).
    pub(crate) resumed: bool,
    /// The verification reported (after the handshake).
    pub(crate) verification: Verification,
    /// The OCSP status reported (after the handshake).
    pub(crate) ocsp: OcspStatus,
    /// The lifetime hint of the newest session stored.
    pub(crate) ticket_lifetime: Option<Duration>,
}

impl ClientState {
    /// Verification as this handshake's verify callback saw it (not called on resumption:
    /// the known issue).
    fn seen_verification(&self) -> Verification {
        match (self.verify_called, self.verify_failed) {
            (false, _) => Verification::NotChecked,
            (true, true) => Verification::Failed,
            (true, false) => Verification::Verified,
        }
    }
}

/// The client side of one connection.
pub(crate) struct ClientConn {
    settings: Arc<ClientSettings>,
    roots: Arc<Roots>,
    sessions: Arc<DecodedSessions>,
    state: Mutex<ClientState>,
}

impl fmt::Debug for ClientConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConn")
            .field("state", &*self.state())
            .finish_non_exhaustive()
    }
}

impl ClientConn {
    /// Locks the state; a poisoned lock still gives the data.
    pub(crate) fn state(&self) -> MutexGuard<'_, ClientState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The verify callback: records what it sees; fails the handshake only under
    /// [`VerifyMode::Require`].
    fn verify(&self, preverify_ok: bool) -> bool {
        let mut st = self.state();
        st.verify_called = true;
        if !preverify_ok {
            st.verify_failed = true;
        }
        preverify_ok || self.settings.verify == VerifyMode::Try
    }

    /// The OCSP status callback: checks the staple; under [`OcspMode::Require`] a full
    /// handshake without a good staple fails here, as Exim's `hosts_require_ocsp` does.
    fn status(&self, ssl: &SslRef) -> bool {
        let status = match ssl.ocsp_status() {
            None => OcspStatus::NoResponse,
            Some(der) => match ssl.peer_cert_chain() {
                Some(chain) => check_ocsp(der, chain, &self.roots),
                None => OcspStatus::Failed,
            },
        };
        self.state().ocsp_seen = Some(status);
        // A resumed handshake is judged after it completes (carried status, hardened).
        ssl.session_reused()
            || !(self.settings.ocsp == OcspMode::Require && status != OcspStatus::Verified)
    }

    /// Stores a resumable session the library handed over (new-session callback, or a TLS 1.2
    /// ticket renewed on a resumed handshake) and sets SERVER_TICKET.
    fn save(&self, ssl: &SslRef, session: &SslSessionRef) {
        let settings = &self.settings;
        let mut st = self.state();
        if !st.offer.may_resume || !ffi::session_is_resumable(session) {
            return;
        }
        let resumed = ssl.session_reused();
        let verification = st.seen_verification();
        let ocsp = st
            .ocsp_seen
            .unwrap_or_else(|| settings.ocsp_without_staple());
        if settings.ocsp_requirement_failed(settings.reported_ocsp(&st.offer, resumed, ocsp)) {
            return;
        }
        // The hint as the server sent it; 0 means "unspecified" (RFC 5077; OpenSSL sends it on
        // TLS 1.2 tickets renewed on resumption), which `entry_for` resolves for the store.
        let hint = ffi::ticket_lifetime_hint(session);
        let Ok(der) = session.to_der() else {
            return;
        };
        let protocol = protocol_of(ssl).unwrap_or(ProtocolVersion::Other(0));
        let lifetime = Duration::from_secs(hint);
        let entry = settings.entry_for(
            BACKEND,
            &st.offer,
            resumed,
            verification,
            ocsp,
            protocol,
            lifetime,
            der,
        );
        let kept = entry.session.clone();
        if settings.store.put(&st.offer.key, entry).is_ok() {
            st.bits |= Resumption::SERVER_TICKET;
            st.ticket_lifetime = Some(lifetime);
            // The next connection to this server finds these bytes in the store: it gets a
            // copy of this session instead of decoding them.
            self.sessions.keep(&st.offer.key, kept, session);
        }
    }
}

/// Checks a stapled OCSP response against the peer chain and the trust anchors.
fn check_ocsp(der: &[u8], chain: &StackRef<X509>, roots: &Roots) -> OcspStatus {
    let Ok(response) = OcspResponse::from_der(der) else {
        return OcspStatus::Failed;
    };
    if response.status() != OcspResponseStatus::SUCCESSFUL {
        return OcspStatus::Failed;
    }
    let Ok(basic) = response.basic() else {
        return OcspStatus::Failed;
    };
    if basic
        .verify(chain, &roots.store, OcspFlag::empty())
        .is_err()
    {
        return OcspStatus::Failed;
    }
    let Some(leaf) = chain.get(0) else {
        return OcspStatus::Failed;
    };
    let issuer: Option<&X509Ref> = chain
        .iter()
        .skip(1)
        .chain(roots.certs.iter().map(|c| &**c))
        .find(|candidate| candidate.issued(leaf) == X509VerifyResult::OK);
    let Some(issuer) = issuer else {
        return OcspStatus::Failed;
    };
    let Ok(id) = OcspCertId::from_cert(MessageDigest::sha1(), leaf, issuer) else {
        return OcspStatus::Failed;
    };
    match basic.find_status(&id) {
        Some(s) if s.status == OcspCertStatus::GOOD && s.check_validity(300, None).is_ok() => {
            OcspStatus::Verified
        }
        _ => OcspStatus::Failed,
    }
}

/// The ex_data slot holding each client connection's [`ClientConn`].
fn client_index() -> Option<Index<Ssl, Arc<ClientConn>>> {
    static INDEX: OnceLock<Option<Index<Ssl, Arc<ClientConn>>>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().ok())
}

fn client_conn(ssl: &SslRef) -> Option<Arc<ClientConn>> {
    ssl.ex_data(client_index()?).cloned()
}

/// An OpenSSL client configuration: trust anchors, versions, OCSP, and the session cache
/// bridge (cache mode CLIENT without OpenSSL's internal cache; sessions go to
/// [`ClientSettings::store`] as DER).
pub struct Client {
    ctx: SslContext,
    settings: Arc<ClientSettings>,
    roots: Arc<Roots>,
    sessions: Arc<DecodedSessions>,
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
        config::set_versions(&mut ctx, settings.versions)?;
        let (store, certs) = config::roots(&settings.roots)?;
        // The chain check uses a store of our own, so the system's default paths never count.
        let (ctx_store, _) = config::roots(&settings.roots)?;
        ctx.set_cert_store(ctx_store);
        ctx.set_session_cache_mode(SslSessionCacheMode::CLIENT | SslSessionCacheMode::NO_INTERNAL);
        ctx.set_new_session_callback(|ssl: &mut SslRef, session: SslSession| {
            // AssertUnwindSafe: the connection state is plain data behind a mutex whose
            // poisoning its readers tolerate; nothing else is reused after a panic.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                if let Some(conn) = client_conn(ssl) {
                    conn.save(ssl, &session);
                }
            }));
        });
        ctx.set_status_callback(|ssl: &mut SslRef| {
            // AssertUnwindSafe: as above; a panic fails the handshake.
            Ok(catch_unwind(AssertUnwindSafe(|| {
                client_conn(ssl).is_some_and(|conn| conn.status(ssl))
            }))
            .unwrap_or(false))
        })
        .map_err(|e| error::config("OCSP status callback", e))?;
        let alpn = config::alpn_wire(&settings.alpn)?;
        Ok(Self {
            ctx: ctx.build(),
            settings: Arc::new(settings),
            roots: Arc::new(Roots { store, certs }),
            sessions: Arc::default(),
            alpn,
        })
    }

    /// The settings this client was made from.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// Runs the client side of a handshake, offering a cached session when the policy allows.
    ///
    /// A stored session OpenSSL cannot load is dropped (a full handshake, never an error). The
    /// connection fails when OCSP is required and the reported status is not "verified".
    pub fn connect<S: Read + Write>(
        &self,
        transport: S,
        params: &ClientParams,
    ) -> Result<Stream<S>, Error> {
        self.start(transport, params)?.resume()?.blocking()
    }

    /// Sets up the client side of a handshake without running it: [`Handshake::resume`] drives
    /// it, over a transport that may report `WouldBlock` (the async layer's).
    /// [`connect`](Self::connect) is this, resumed once.
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
        let index = client_index().ok_or_else(|| error::tls("no SSL ex_data index"))?;
        let settings = &connection_settings(&self.settings, store);
        let mut offer = settings.offer(BACKEND, params, true);
        let mut ssl = Ssl::new(&self.ctx).map_err(|e| error::stack("SSL", e))?;

        // The session to offer: DER written by this backend (decoded once, then copied while
        // the store holds the same bytes); anything OpenSSL refuses to load is removed from the
        // store and the handshake is a full one.
        let mut session = None;
        if let Some(entry) = &offer.entry {
            match self.sessions.session(&offer.key, &entry.session) {
                Ok(s) if ffi::set_session(&mut ssl, &s).is_ok() => session = Some(s),
                _ => {
                    self.sessions.forget(&offer.key);
                    let _ = settings.store.remove(&offer.key);
                    offer.withdraw();
                }
            }
        }
        let offered_ticket = session
            .as_ref()
            .map(|s| ffi::session_ticket(s))
            .unwrap_or_default();
        if !offer.may_resume {
            ffi::set_no_ticket(&mut ssl);
        }

        let conn = Arc::new(ClientConn {
            settings: Arc::clone(settings),
            roots: Arc::clone(&self.roots),
            sessions: Arc::clone(&self.sessions),
            state: Mutex::new(ClientState {
                bits: offer.bits,
                offer,
                offered_ticket,
                verify_called: false,
                verify_failed: false,
                ocsp_seen: None,
                resumed: false,
                verification: Verification::NotChecked,
                ocsp: settings.ocsp_without_staple(),
                ticket_lifetime: None,
            }),
        });
        ssl.set_ex_data(index, Arc::clone(&conn));

        // SNI and the name checked against the certificate.
        match params.server_name.parse::<IpAddr>() {
            Ok(ip) => ssl
                .param_mut()
                .set_ip(ip)
                .map_err(|e| error::stack("peer IP", e))?,
            Err(_) => {
                ssl.set_hostname(&params.server_name)
                    .map_err(|e| error::stack("SNI", e))?;
                ssl.param_mut()
                    .set_host(&params.server_name)
                    .map_err(|e| error::stack("peer name", e))?;
            }
        }
        let verifier = Arc::clone(&conn);
        ssl.set_verify_callback(SslVerifyMode::PEER, move |ok, _ctx| {
            // AssertUnwindSafe: as for the context callbacks; a panic fails verification.
            catch_unwind(AssertUnwindSafe(|| verifier.verify(ok))).unwrap_or(false)
        });
        if settings.ocsp != OcspMode::Off {
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

/// After the handshake: USED, the reported verification and OCSP status, the OCSP
/// requirement, and, when the policy stores them, a TLS 1.2 ticket renewed on resumption (for
/// which OpenSSL calls no new-session callback).
pub(crate) fn finish<S>(conn: &ClientConn, stream: &SslStream<S>) -> Result<(), Error> {
    let ssl = stream.ssl();
    let settings = &conn.settings;
    let resumed = ssl.session_reused();
    let (reported_ocsp, renewal_check) = {
        let mut st = conn.state();
        st.resumed = resumed;
        if resumed {
            st.bits |= Resumption::USED;
        }
        let seen_v = st.seen_verification();
        st.verification = settings.reported_verification(&st.offer, resumed, seen_v);
        let seen_o = st
            .ocsp_seen
            .unwrap_or_else(|| settings.ocsp_without_staple());
        st.ocsp = settings.reported_ocsp(&st.offer, resumed, seen_o);
        // OpenSSL calls the new-session callback only after a full TLS 1.2 handshake: a ticket
        // renewed on a resumed one is not handed over (Exim's client keeps the old ticket).
        // Under a policy that fixes that, the renewed ticket is read off the session.
        let renewal = resumed
            && st.offer.may_resume
            && settings
                .resumption
                .known_issues()
                .store_renewed_tls12_ticket
            && protocol_of(ssl) == Some(ProtocolVersion::Tls12);
        (st.ocsp, renewal.then(|| st.offered_ticket.clone()))
    };
    if settings.ocsp_requirement_failed(reported_ocsp) {
        return Err(Error::tls_failure(
            error::NAME,
            TlsFailure::Ocsp,
            format!("OCSP is required and the status is {reported_ocsp}"),
        ));
    }
    if let (Some(offered), Some(session)) = (renewal_check, ssl.session()) {
        let ticket = ffi::session_ticket(session);
        if !ticket.is_empty() && ticket != offered {
            conn.save(ssl, session);
        }
    }
    Ok(())
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
    use crate::test_harness::Setup;

    /// The session a client stores is kept decoded: later resumptions with the same stored
    /// bytes decode nothing; bytes that change are decoded again.
    #[test]
    fn stored_sessions_are_decoded_once() {
        for version in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
            let pair = Setup::new(version).build();
            let sessions = &pair.client.sessions;
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

            // Other bytes than the kept session's (damaged here): decoded (and refused),
            // forgotten, a full handshake, whose new session is kept.
            let mut entry = pair.entry().expect("entry");
            entry.session.truncate(entry.session.len() / 2);
            pair.put(entry);
            assert!(!pair.connect().client.resumed, "{version}: damaged");
            assert_eq!(sessions.decodes(), 2, "{version}");
            assert_eq!(sessions.len(), 1, "{version}: the new session is kept");
        }
    }
}
