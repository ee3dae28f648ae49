//! The client side of one OpenSSL connection: its state shared with the library's callbacks
//! (the core's [`ClientHandshake`] and what only OpenSSL's shape needs), the callbacks' bodies,
//! and what happens when the handshake ends.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::ffi::ArcIndex;
use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspCertId, OcspCertStatus, OcspFlag, OcspResponse, OcspResponseStatus};
use openssl::ssl::{SslRef, SslSession, SslSessionRef, SslStream};
use openssl::stack::StackRef;
use openssl::x509::store::X509Store;
use openssl::x509::{X509Ref, X509VerifyResult, X509};

use tlsresume_core::contract::{ClientHandshake, ReceivedSession};
use tlsresume_core::{
    ClientSettings, Error, OcspStatus, ProtocolVersion, Verification, VerifyMode,
};

use crate::certs::PeerChains;
use crate::config::protocol_of;
use crate::ffi;
use crate::sessions::DecodedSessions;

/// The trust anchors: a store for chain and OCSP verification, and the certificates for
/// finding an OCSP issuer.
/// What every connection of a client shares, behind one `Arc` (one count raised per
/// connection, rather than one per part: every thread writes them).
pub(crate) struct ClientShared {
    pub(crate) roots: Roots,
    /// The sessions this client stored lately, kept decoded.
    pub(crate) sessions: DecodedSessions,
    /// The peer chains this client was sent lately (reported without encoding them again).
    pub(crate) chains: PeerChains,
}

pub(crate) struct Roots {
    pub(crate) store: X509Store,
    pub(crate) certs: Vec<X509>,
}

/// What the client side of one connection has seen, shared with the callbacks: the core's
/// [`ClientHandshake`], which decides, and what only OpenSSL's shape needs.
#[derive(Debug)]
pub(crate) struct ClientState {
    /// The connection's resumption lifecycle. Kept for the connection's life whatever the
    /// version: it is part of the one block the library's ex_data holds for the connection,
    /// so letting go of it after a TLS 1.2 handshake (as the rustls client does, see
    /// [`ClientHandshake::needed_after_handshake`]) would not free that block.
    pub(crate) handshake: ClientHandshake,
    /// The ticket of the offered session (to spot a TLS 1.2 renewal).
    pub(crate) offered_ticket: Vec<u8>,
    /// Whether the verify callback saw a failure anywhere in the chain.
    pub(crate) verify_failed: bool,
    /// Whether libssl's DANE verdict was given to the handshake.
    pub(crate) dane_seen: bool,
    /// The newest session the library handed over during the call into the connection running
    /// now, stored when the call returns ([`ClientConn::store_received`]). Here, in the state
    /// the call locks anyway, where the rustls client keeps its in a slot on the call's stack
    /// lent to the thread: an OpenSSL session is held by reference, so the room kept for one
    /// is a few dozen bytes, not the 170 of a rustls session value.
    pub(crate) received: Option<Received>,
}

/// A session the library handed over, not yet stored.
#[derive(Debug)]
pub(crate) struct Received {
    session: HeldSession,
    resumed: bool,
    protocol: ProtocolVersion,
    lifetime_hint: Duration,
}

/// A session held by reference count (its contents are secret and not shown).
struct HeldSession(SslSession);

impl fmt::Debug for HeldSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SslSession")
    }
}

/// The client side of one connection.
pub(crate) struct ClientConn {
    pub(crate) settings: Arc<ClientSettings>,
    /// What every connection of the client shares.
    pub(crate) shared: Arc<ClientShared>,
    pub(crate) state: Mutex<ClientState>,
    /// TLSA records decide (verify by DANE, or not at all): the verify callback records
    /// nothing and fails nothing; the handshake decides after it.
    pub(crate) dane: bool,
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
    pub(crate) fn verify(&self, preverify_ok: bool) -> bool {
        if self.dane {
            return true;
        }
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

    /// The OCSP status callback: checks the staple; under
    /// [`OcspMode::Require`](tlsresume_core::OcspMode::Require) a full handshake without a good
    /// staple fails here, as Exim's `hosts_require_ocsp` does (the handshake's error is then an
    /// OCSP failure).
    pub(crate) fn status(&self, ssl: &SslRef) -> bool {
        let status = match ssl.ocsp_status() {
            None => OcspStatus::NoResponse,
            Some(der) => match ssl.peer_cert_chain() {
                Some(chain) => check_ocsp(der, chain, &self.shared.roots),
                None => OcspStatus::Failed,
            },
        };
        let mut st = self.state();
        st.handshake.saw_ocsp(status, None);
        // A resumed handshake is judged after it completes (carried status, hardened).
        ssl.session_reused() || !st.handshake.refuses_full_handshake(status)
    }

    /// Takes a resumable session the library handed over (new-session callback, or a TLS 1.2
    /// ticket renewed on a resumed handshake), to be stored when the call into the connection
    /// returns ([`store_received`](Self::store_received)): a newer one handed over during the
    /// same call replaces it. The store keeps one session per cache key, so of the tickets a
    /// TLS 1.3 server sends in one flight (two by default in OpenSSL, GnuTLS and rustls) only
    /// the last would stay: the others are not encoded, sealed and written to be overwritten.
    pub(crate) fn save(&self, ssl: &SslRef, session: &SslSessionRef) {
        let mut st = self.state();
        see_dane(&mut st, ssl);
        if !st.handshake.may_resume() || !ffi::session_is_resumable(session) {
            return;
        }
        st.received = Some(Received {
            session: HeldSession(session.to_owned()),
            resumed: ssl.session_reused(),
            protocol: protocol_of(ssl).unwrap_or(ProtocolVersion::Other(0)),
            // The hint as the server sent it; 0 means "unspecified" (RFC 5077; OpenSSL sends
            // it on TLS 1.2 tickets renewed on resumption).
            lifetime_hint: Duration::from_secs(ffi::ticket_lifetime_hint(session)),
        });
    }

    /// Stores the newest session the library handed over during the call into the connection
    /// that just returned (a handshake step, a read, a shutdown: the calls that read what the
    /// server sends), if any, before the call's result reaches the caller.
    pub(crate) fn store_received(&self) {
        self.store_received_in(&mut self.state());
    }

    /// [`store_received`](Self::store_received) under the state's lock the caller holds.
    pub(crate) fn store_received_in(&self, st: &mut ClientState) {
        let Some(received) = st.received.take() else {
            return;
        };
        let Ok(der) = received.session.0.to_der() else {
            return;
        };
        let stored = st.handshake.store_session(ReceivedSession {
            stored_as: None,
            resumed: received.resumed,
            protocol: received.protocol,
            lifetime_hint: Some(received.lifetime_hint),
            data: &der,
        });
        if let Some(tags) = stored {
            // The next connection to this server finds these bytes in the store: it gets a
            // copy of this session instead of opening and decoding them.
            self.shared.sessions.keep(
                &st.handshake.offer().key,
                tags.sealed(&der),
                &received.session.0,
            );
        }
    }
}

/// Gives libssl's DANE verdict to the handshake once, when the connection verifies by DANE:
/// the authority `SSL_get0_dane_authority` reports, or, on a full handshake, that none
/// matched. On a resumed handshake libssl verifies nothing and reports no authority: nothing
/// is given (the handshake reports per policy).
fn see_dane(st: &mut ClientState, ssl: &SslRef) {
    if st.dane_seen || st.handshake.dane_check().is_none() {
        return;
    }
    let authority = ffi::dane_authority(ssl);
    if authority.is_some() || !ssl.session_reused() {
        st.handshake.saw_dane(authority);
    }
    st.dane_seen = true;
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
pub(crate) fn client_index() -> Option<ArcIndex<ClientConn>> {
    static INDEX: OnceLock<Option<ArcIndex<ClientConn>>> = OnceLock::new();
    *INDEX.get_or_init(ArcIndex::new)
}

pub(crate) fn client_conn(ssl: &SslRef) -> Option<Arc<ClientConn>> {
    client_index()?.get(ssl)
}

/// After the handshake: the connection's [`ClientHandshake`] decides (USED, what is reported,
/// the OCSP requirement); then, when the policy stores them, a TLS 1.2 ticket renewed on
/// resumption (for which OpenSSL calls no new-session callback) is stored.
pub(crate) fn finish<S>(conn: &ClientConn, stream: &SslStream<S>) -> Result<(), Error> {
    let ssl = stream.ssl();
    let resumed = ssl.session_reused();
    let renewal_check = {
        let mut st = conn.state();
        see_dane(&mut st, ssl);
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
