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

use tlsresume_core::contract::{ClientHandshake, ReceivedSession};
use tlsresume_core::{
    BackendKind, ClientContext, ClientParams, ClientSettings, Error, MidHandshake, NoOffer,
    OcspMode, OcspStatus, ProtocolVersion, SessionStore, TlsStream, Transport, Verification,
    VerifyMode,
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

/// What the client side of one connection has seen, shared with the callbacks: the core's
/// [`ClientHandshake`], which decides, and what only OpenSSL's shape needs.
#[derive(Debug)]
pub(crate) struct ClientState {
    /// The connection's resumption lifecycle.
    pub(crate) handshake: ClientHandshake,
    /// The ticket of the offered session (to spot a TLS 1.2 renewal).
    offered_ticket: Vec<u8>,
    /// Whether the verify callback saw a failure anywhere in the chain.
    verify_failed: bool,
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
    /// [`VerifyMode::Require`]. Not called on resumption: the known issue.
    fn verify(&self, preverify_ok: bool) -> bool {
        let mut st = self.state();
        st.verify_failed |= !preverify_ok;
        let seen = if st.verify_failed {
            Verification::Failed
        } else {
            Verification::Verified
        };
        st.handshake.saw_verification(seen);
        preverify_ok || self.settings.verify == VerifyMode::Try
    }

    /// The OCSP status callback: checks the staple; under [`OcspMode::Require`] a full
    /// handshake without a good staple fails here, as Exim's `hosts_require_ocsp` does (the
    /// handshake's error is then an OCSP failure).
    fn status(&self, ssl: &SslRef) -> bool {
        let status = match ssl.ocsp_status() {
            None => OcspStatus::NoResponse,
            Some(der) => match ssl.peer_cert_chain() {
                Some(chain) => check_ocsp(der, chain, &self.roots),
                None => OcspStatus::Failed,
            },
        };
        let mut st = self.state();
        st.handshake.saw_ocsp(status, None);
        // A resumed handshake is judged after it completes (carried status, hardened).
        ssl.session_reused() || !st.handshake.refuses_full_handshake(status)
    }

    /// Stores a resumable session the library handed over (new-session callback, or a TLS 1.2
    /// ticket renewed on a resumed handshake).
    fn save(&self, ssl: &SslRef, session: &SslSessionRef) {
        let mut st = self.state();
        if !st.handshake.may_resume() || !ffi::session_is_resumable(session) {
            return;
        }
        let Ok(der) = session.to_der() else {
            return;
        };
        // The hint as the server sent it; 0 means "unspecified" (RFC 5077; OpenSSL sends it on
        // TLS 1.2 tickets renewed on resumption).
        let hint = Duration::from_secs(ffi::ticket_lifetime_hint(session));
        let stored = st.handshake.store_session(ReceivedSession {
            resumed: ssl.session_reused(),
            protocol: protocol_of(ssl).unwrap_or(ProtocolVersion::Other(0)),
            lifetime_hint: Some(hint),
            data: &der,
        });
        if let Some(stored) = stored {
            // The next connection to this server finds these bytes in the store: it gets a
            // copy of this session instead of opening and decoding them.
            self.sessions
                .keep(&st.handshake.offer().key, stored, session);
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
        let mut handshake = ClientHandshake::start(&self.settings, store, BACKEND, params, true);
        let settings = Arc::clone(handshake.settings());
        let mut ssl = Ssl::new(&self.ctx).map_err(|e| error::stack("SSL", e))?;

        // The session to offer: a copy of the one kept decoded while the store holds the same
        // bytes; otherwise the stored bytes opened under the store's key and decoded. One that
        // does not open is not offered; one OpenSSL refuses gives a full handshake. The store's
        // entry stays either way.
        let key = handshake.offer().key;
        let mut session = handshake
            .stored_session()
            .and_then(|stored| self.sessions.kept(&key, stored));
        if session.is_none() {
            if let Some(stored) = handshake.stored_session().map(<[u8]>::to_vec) {
                let decoded = handshake
                    .session_to_offer()
                    .map(|der| self.sessions.decode(&key, &stored, der));
                match decoded {
                    Some(Ok(s)) => session = Some(s),
                    Some(Err(_)) => handshake.withdraw(NoOffer::LibraryRefused),
                    None => {}
                }
            }
        }
        if let Some(s) = &session {
            if ffi::set_session(&mut ssl, s).is_err() {
                self.sessions.forget(&key);
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

        let conn = Arc::new(ClientConn {
            settings: Arc::clone(&settings),
            roots: Arc::clone(&self.roots),
            sessions: Arc::clone(&self.sessions),
            state: Mutex::new(ClientState {
                handshake,
                offered_ticket,
                verify_failed: false,
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

/// After the handshake: the connection's [`ClientHandshake`] decides (USED, what is reported,
/// the OCSP requirement); then, when the policy stores them, a TLS 1.2 ticket renewed on
/// resumption (for which OpenSSL calls no new-session callback) is stored.
pub(crate) fn finish<S>(conn: &ClientConn, stream: &SslStream<S>) -> Result<(), Error> {
    let ssl = stream.ssl();
    let resumed = ssl.session_reused();
    let renewal_check = {
        let mut st = conn.state();
        st.handshake.finish(resumed)?;
        // OpenSSL calls the new-session callback only after a full TLS 1.2 handshake: a ticket
        // renewed on a resumed one is not handed over (Exim's client keeps the old ticket).
        // Under a policy that fixes that, the renewed ticket is read off the session.
        let renewal = resumed
            && st.handshake.may_resume()
            && conn
                .settings
                .resumption
                .known_issues()
                .store_renewed_tls12_ticket
            && protocol_of(ssl) == Some(ProtocolVersion::Tls12);
        renewal.then(|| st.offered_ticket.clone())
    };
    if let (Some(offered), Some(session)) = (renewal_check, ssl.session()) {
        let ticket = ffi::session_ticket(session);
        if !ticket.is_empty() && ticket != offered {
            conn.save(ssl, session);
        }
    }
    Ok(())
}

/// The error of a client handshake OpenSSL failed: an OCSP failure when the status callback
/// failed it for the OCSP requirement.
pub(crate) fn failed(conn: &ClientConn, error: Error) -> Error {
    conn.state().handshake.library_failed(error)
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
            let der = pair.open(&pair.entry().expect("entry").session);
            entry.session = pair.seal(&der[..der.len() / 2]);
            pair.put(entry);
            assert!(!pair.connect().client.resumed, "{version}: refused");
            assert_eq!(sessions.decodes(), 2, "{version}: decoded once more");
            assert_eq!(sessions.len(), 1, "{version}: the new session is kept");
        }
    }
}
