//! The server side of one GnuTLS connection once the library has finished its handshake: the
//! bits and what the session reports.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use tlsresume_core::contract::ServerHandshake;
use tlsresume_core::contract::ServerStart;
use tlsresume_core::{ClientAuth, Error, SessionInfo, Side, Verification};

use crate::callbacks::ClockClaim;
use crate::client_conn::Finished;
use crate::config::cipher_names;
use crate::ffi::{Connection, GnutlsError, SessionRef};
use crate::BACKEND;

/// What a server handshake needs once GnuTLS has finished it.
#[derive(Debug)]
pub(crate) struct ServerPending {
    pub(crate) start: ServerStart,
    pub(crate) stapling: bool,
    /// The server's own leaf certificates, the first identity's (the one the staple is for)
    /// first.
    pub(crate) leaves: Arc<OwnLeaves>,
    pub(crate) iana_names: bool,
    /// TLS 1.3 tickets to send once the handshake is done, when GnuTLS does not send its own.
    pub(crate) tickets_on_request: Option<u32>,
    pub(crate) clock: Arc<ClockClaim>,
}

/// A server's own leaf certificates, DER, one copy each made when the server was built: the
/// report of a full handshake hands out the copy of the certificate GnuTLS sent, found by its
/// bytes, with no lock nor allocation per handshake.
#[derive(Debug, Default)]
pub(crate) struct OwnLeaves {
    /// The first identity's leaf, the one the staple is for.
    pub(crate) primary: Option<Arc<[u8]>>,
    /// Every identity's leaf, in the order of the identities.
    pub(crate) all: Vec<Arc<[u8]>>,
}

impl OwnLeaves {
    /// The kept copy of `der`, or (for a certificate the server was not configured with,
    /// which GnuTLS does not send) one shared with the other reports of the process.
    fn kept(&self, der: &[u8]) -> Arc<[u8]> {
        match self.all.iter().find(|leaf| ***leaf == *der) {
            Some(leaf) => Arc::clone(leaf),
            None => tlsresume_core::info::share_certificate(der),
        }
    }
}

/// What GnuTLS's check of the client's chain says, when the client was asked for one and
/// presented one.
fn client_verification(s: &SessionRef, auth: ClientAuth) -> Option<Verification> {
    if auth == ClientAuth::Off || s.peer_certificates().is_empty() {
        return None;
    }
    Some(match s.verify_peers(None) {
        Ok(0) => Verification::Verified,
        _ => Verification::Failed,
    })
}

impl ServerPending {
    /// A handshake GnuTLS failed: a certificate failure when it was the client-certificate
    /// requirement (GnuTLS's code says which).
    pub(crate) fn failed(&self, error: Error, code: Option<GnutlsError>) -> Error {
        let mut handshake = ServerHandshake::new(BACKEND, self.start);
        match code.map(GnutlsError::code) {
            Some(GnutlsError::NO_CERTIFICATE_FOUND | GnutlsError::CERTIFICATE_REQUIRED) => {
                handshake.client_certificate_missing();
            }
            Some(GnutlsError::CERTIFICATE_VERIFICATION_ERROR) => {
                handshake.client_certificate_seen(Verification::Failed);
            }
            _ => {}
        }
        handshake.library_failed(error)
    }

    /// After the handshake: what GnuTLS tells goes to the core's [`ServerHandshake`], which
    /// decides what is reported.
    pub(crate) fn finish<S: Read + Write>(self, conn: Connection<S>) -> Finished<S> {
        let s = conn.session();
        let resumed = s.is_resumed();
        let mut handshake = ServerHandshake::new(BACKEND, self.start);
        if conn.ticket_sent() {
            handshake.ticket_sealed();
        }
        // Also true for a plain ticket request: the source of Exim's odd 0x05. GnuTLS does not
        // say why a presented ticket was refused.
        if s.resumption_requested() {
            handshake.ticket_presented();
        }
        // The client's certificate: GnuTLS keeps the peer's chain in the session, so its check
        // (`gnutls_certificate_verify_peers3`, as Exim runs after every handshake) sees it on a
        // resumed handshake too: what the library keeps is what it reports.
        if let Some(seen) = client_verification(s, self.start.client_auth) {
            handshake.client_certificate_seen(seen);
        }
        handshake.finish(resumed);
        // "Asked for" is GnuTLS's status-request state; whether a response went out is inferred:
        // GnuTLS 3.7 staples the configured response on full handshakes only and says nothing
        // about it afterwards.
        let served = if resumed {
            None
        } else {
            s.with_our_certificate(|der| der.map(|der| self.leaves.kept(der)))
        };
        if s.client_requested_ocsp() {
            handshake.status_requested();
            if self.stapling
                && served.is_some()
                && served.as_deref() == self.leaves.primary.as_deref()
            {
                handshake.staple_sent();
            }
        }
        let mut library = SessionInfo::new(Side::Server, s.protocol());
        library.cipher = cipher_names(s, self.iana_names);
        library.peer_certificates = s.peer_certificates().into();
        library.sni = s.server_name();
        library.alpn = s.alpn_selected();
        library.local_certificate = served;
        // The lifetime in the NewSessionTicket GnuTLS sent (read by the handshake hook).
        let sent = conn
            .ticket_lifetime()
            .map(|secs| Duration::from_secs(u64::from(secs)));
        Finished {
            info: handshake.report(library, sent),
            conn,
            saver: None,
            clock: self.clock,
        }
    }
}
