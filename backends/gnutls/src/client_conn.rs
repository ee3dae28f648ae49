//! The client side of one GnuTLS connection once the library has finished its handshake:
//! what GnuTLS saw goes to the core's [`ClientHandshake`], and each ticket GnuTLS hands over
//! is stored ([`TicketSaver`]).

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use tlsresume_core::contract::{ClientHandshake, ReceivedSession};
use tlsresume_core::dane::{DaneCheck, DanePlan, TlsaUsage};
use tlsresume_core::DaneAuthority;
use tlsresume_core::{
    Error, OcspMode, OcspStatus, ProtocolVersion, SessionInfo, Side, Verification,
};

use crate::callbacks::ClockClaim;
use crate::config::cipher_names;
use crate::ffi::{self, Connection};
use crate::sessions::KnownSessions;

/// A finished handshake, either side: what its stream is made of.
#[derive(Debug)]
pub(crate) struct Finished<S> {
    pub(crate) conn: Connection<S>,
    pub(crate) info: SessionInfo,
    pub(crate) saver: Option<Box<TicketSaver>>,
    pub(crate) clock: Arc<ClockClaim>,
}

/// Stores the session whenever GnuTLS has a ticket for it: after the handshake and after each
/// read on which the NEW_SESSION_TICKET hook saw a ticket (TLS 1.3). What is stored, sealed
/// and reported is decided by the connection's [`ClientHandshake`].
#[derive(Debug)]
pub(crate) struct TicketSaver {
    handshake: ClientHandshake,
    protocol: ProtocolVersion,
    saved_tickets: u32,
    sessions: Arc<KnownSessions>,
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
        self.handshake.ticket_seen();
        if self.handshake.may_resume() {
            if let Ok(data) = session.session_data() {
                // The lifetime the NewSessionTicket carried (read by the handshake hook); when
                // the hook saw none, "unspecified".
                let stored = self.handshake.store_session(ReceivedSession {
                    stored_as: None,
                    resumed: self.handshake.resumed(),
                    protocol: self.protocol,
                    lifetime_hint: conn
                        .ticket_lifetime()
                        .map(|secs| Duration::from_secs(u64::from(secs))),
                    data: data.as_slice(),
                });
                if let Some(tags) = stored {
                    // The next connection to this server finds these bytes in the store: it
                    // gives GnuTLS the data inside them without checking the seal just made.
                    let stored = tags.sealed(data.as_slice());
                    let start = stored.len().saturating_sub(data.as_slice().len());
                    self.sessions
                        .keep(&self.handshake.offer().key, stored, start);
                }
            }
        }
        self.saved_tickets = conn.tickets_received();
        // The report was made when the handshake finished: what a ticket changes is updated in
        // place, as on the other backends.
        self.handshake.refresh_report(info);
    }

    /// A failed read or write, given to the client's lifecycle.
    pub(crate) fn io_failed(&self, error: std::io::Error) -> std::io::Error {
        self.handshake.io_failed(error)
    }

    /// Called by the stream after each read.
    pub(crate) fn after_read<S>(&mut self, conn: &Connection<S>, info: &mut SessionInfo) {
        if conn.tickets_received() > self.saved_tickets {
            self.save(conn, info);
        }
    }
}

/// The first usable record libgnutls-dane verifies `chain` against (`dane_verify_crt_raw`,
/// one record at a time, so the record is known); for DANE-TA(2) the leaf must also carry a
/// reference name (`gnutls_x509_crt_check_hostname`: libgnutls-dane checks no name). The
/// library does not tell at which depth a DANE-TA record matched: the depth is reported for
/// DANE-EE only (0, the leaf, by definition).
fn dane_authority(check: &DaneCheck, chain: &[Vec<u8>]) -> Option<DaneAuthority> {
    let leaf = chain.first()?;
    check.records.iter().find_map(|record| {
        let ee = record.usage == TlsaUsage::DaneEe;
        let mut rdata = vec![
            record.usage.code(),
            record.selector.code(),
            record.matching.code(),
        ];
        rdata.extend_from_slice(&record.data);
        let flags = if ee {
            sys::DANE_VFLAG_ONLY_CHECK_EE_USAGE
        } else {
            sys::DANE_VFLAG_ONLY_CHECK_CA_USAGE
        };
        let verified = ffi::dane_verify_raw(chain, &rdata, flags).unwrap_or(false);
        let named = ee
            || check
                .names
                .iter()
                .any(|name| ffi::certificate_has_name(leaf, name));
        (verified && named).then(|| DaneAuthority {
            record: record.clone(),
            depth: ee.then_some(0),
        })
    })
}

/// What a client handshake needs once GnuTLS has finished it.
#[derive(Debug)]
pub(crate) struct ClientPending {
    pub(crate) handshake: ClientHandshake,
    pub(crate) clock: Arc<ClockClaim>,
    pub(crate) sessions: Arc<KnownSessions>,
}

impl ClientPending {
    /// After the handshake: what GnuTLS saw goes to the connection's [`ClientHandshake`], which
    /// decides; then the first session is stored.
    pub(crate) fn finish<S: Read + Write>(
        self,
        mut conn: Connection<S>,
    ) -> Result<Finished<S>, Error> {
        let Self {
            mut handshake,
            clock,
            sessions,
        } = self;
        let s = conn.session();
        let resumed = s.is_resumed();
        let protocol = s.protocol();
        let peer_certificates = s.peer_certificates();
        if handshake.settings().identity.is_none() && s.certificate_requested() {
            handshake.asked_without_certificate();
        }
        // GnuTLS checks the chain only when asked, and only when it has one (not on resumption:
        // the known issue shows under the Exim policy). TLSA records replace that check: by
        // libgnutls-dane, or (none usable) no check at all.
        if let Some(check) = handshake.dane_check() {
            if !peer_certificates.is_empty() {
                let authority = dane_authority(check, &peer_certificates);
                handshake.saw_dane(authority);
            }
        } else if *handshake.dane() == DanePlan::Off && !peer_certificates.is_empty() {
            handshake.saw_verification(match s.verify_peers(Some(handshake.server_name())) {
                Ok(0) => Verification::Verified,
                _ => Verification::Failed,
            });
        }
        if handshake.settings().ocsp != OcspMode::Off {
            let status = if s.ocsp_verified() {
                OcspStatus::Verified
            } else if s.ocsp_received() {
                OcspStatus::Failed
            } else {
                OcspStatus::NoResponse
            };
            handshake.saw_ocsp(status, None);
        }
        if let Err(e) = handshake.finish(resumed) {
            let _ = conn.bye();
            return Err(e);
        }
        let mut library = SessionInfo::new(Side::Client, protocol);
        library.cipher = cipher_names(
            s,
            handshake
                .settings()
                .resumption
                .known_issues()
                .iana_cipher_names,
        );
        library.peer_certificates = peer_certificates.into();
        library.alpn = s.alpn_selected();
        let mut info = handshake.report(library);
        let mut saver = TicketSaver {
            handshake,
            protocol,
            saved_tickets: 0,
            sessions,
        };
        saver.save(&conn, &mut info);
        // Kept for the connection's life only while something after the handshake can change
        // what it reports or does: a TLS 1.3 ticket (sets the ticket bit even on a connection
        // that does not resume, as Exim's GnuTLS client does, so kept whatever the policy), or
        // a later refusal to turn into a certificate failure. A TLS 1.2 ticket came inside the
        // handshake: the lifecycle goes now, as the rustls client's does. Boxed, so that a
        // stream without it does not carry its room.
        let keep =
            protocol == ProtocolVersion::Tls13 || saver.handshake.needed_after_handshake(protocol);
        Ok(Finished {
            conn,
            info,
            saver: keep.then(|| Box::new(saver)),
            clock,
        })
    }
}
