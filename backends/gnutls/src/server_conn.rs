//! The server side of one GnuTLS connection once the library has finished its handshake: the
//! bits and what the session reports.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use tlsresume_core::{OcspStatus, Resumption, SessionInfo, Side};

use crate::callbacks::ClockClaim;
use crate::client_conn::Finished;
use crate::config::cipher_names;
use crate::ffi::Connection;

/// What a server handshake needs once GnuTLS has finished it.
#[derive(Debug)]
pub(crate) struct ServerPending {
    pub(crate) bits: Resumption,
    pub(crate) stapling: bool,
    pub(crate) iana_names: bool,
    pub(crate) clock: Arc<ClockClaim>,
}

impl ServerPending {
    /// After the handshake: the bits and what the session reports.
    pub(crate) fn finish<S: Read + Write>(self, conn: Connection<S>) -> Finished<S> {
        let s = conn.session();
        let resumed = s.is_resumed();
        let mut bits = self.bits;
        if conn.ticket_sent() {
            bits |= Resumption::CLIENT_REQUESTED;
        }
        // Also true for a plain ticket request: the source of Exim's odd 0x05.
        if s.resumption_requested() {
            bits |= Resumption::CLIENT_SUGGESTED;
        }
        if resumed {
            bits |= Resumption::USED;
        }
        // "Asked for" is GnuTLS's status-request state; whether a response went out is inferred:
        // GnuTLS 3.7 staples the configured response on full handshakes only and says nothing
        // about it afterwards.
        let ocsp = if !s.client_requested_ocsp() {
            OcspStatus::NotRequested
        } else if self.stapling && !resumed {
            OcspStatus::NotVerified
        } else {
            OcspStatus::NoResponse
        };
        let mut info = SessionInfo::new(Side::Server, s.protocol());
        info.cipher = cipher_names(s, self.iana_names);
        info.resumption = bits;
        info.resumed = resumed;
        info.ocsp = ocsp;
        info.peer_certificates = s.peer_certificates();
        info.sni = s.server_name();
        info.alpn = s.alpn_selected();
        // The lifetime in the NewSessionTicket GnuTLS sent (read by the handshake hook).
        info.ticket_lifetime = conn
            .ticket_sent()
            .then(|| conn.ticket_lifetime())
            .flatten()
            .map(|secs| Duration::from_secs(u64::from(secs)));
        Finished {
            conn,
            info,
            saver: None,
            clock: self.clock,
        }
    }
}
