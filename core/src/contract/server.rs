//! [`ServerHandshake`]: one server connection's resumption lifecycle, written once for every
//! backend.

use std::time::Duration;

use super::ServerStart;
use crate::info::{OcspStatus, SessionInfo};
use crate::keys::key_ring::RejectReason;
use crate::kind::BackendKind;
use crate::model::resumption::Resumption;
use crate::telemetry;

/// One server connection's resumption lifecycle: the bits, what is reported about OCSP and the
/// ticket, and why a presented ticket was refused, fed by the backend with what its library
/// observed (a ticket sealed, a ticket presented, its refusal, a status request) from the
/// starting decision ([`ServerContract::start`](super::ServerContract::start)).
///
/// Where a library does not tell, the backend infers and its docs say so (GnuTLS and rustls do
/// not say whether they stapled; rustls does not say whether the client asked for a status).
#[derive(Clone, Debug)]
pub struct ServerHandshake {
    backend: BackendKind,
    start: ServerStart,
    bits: Resumption,
    resumed: bool,
    refused: Option<RejectReason>,
    ocsp_requested: bool,
    ocsp_stapled: bool,
    /// The connection's span (`tls_server`), parent of its events.
    span: tracing::Span,
}

impl ServerHandshake {
    /// The state of a connection of `backend` that starts as `start` decided.
    pub fn new(backend: BackendKind, start: ServerStart) -> Self {
        let span = tracing::debug_span!(
            target: telemetry::TARGET,
            "tls_server",
            backend = backend.name(),
            peer = %start.peer,
        );
        Self {
            backend,
            span,
            start,
            bits: start.bits,
            resumed: false,
            refused: None,
            ocsp_requested: false,
            ocsp_stapled: false,
        }
    }

    /// Whether this client gets tickets (and may resume).
    pub fn may_issue(&self) -> bool {
        self.start.may_issue
    }

    /// A ticket is being sealed for the client (`CLIENT_REQUESTED`).
    pub fn ticket_sealed(&mut self) {
        self.bits |= Resumption::CLIENT_REQUESTED;
        telemetry::ticket_issued(self.backend);
    }

    /// The client presented a ticket (`CLIENT_SUGGESTED`; a decryption is attempted).
    pub fn ticket_presented(&mut self) {
        self.bits |= Resumption::CLIENT_SUGGESTED;
    }

    /// The presented ticket was refused, for `reason` (a full handshake follows).
    pub fn ticket_refused(&mut self, reason: RejectReason) {
        self.refused = Some(reason);
        telemetry::ticket_refused(self.backend, reason);
    }

    /// The client asked for an OCSP staple.
    pub fn status_requested(&mut self) {
        self.ocsp_requested = true;
    }

    /// A staple went out.
    pub fn staple_sent(&mut self) {
        self.ocsp_stapled = true;
    }

    /// The handshake is over: `USED` when it resumed. Call it once per connection (it is
    /// counted).
    pub fn finish(&mut self, resumed: bool) {
        self.resumed = resumed;
        if resumed {
            self.bits |= Resumption::USED;
        }
        telemetry::handshake_done("server", self.backend, resumed);
        tracing::debug!(
            target: telemetry::TARGET,
            parent: &self.span,
            resumed,
            resumption = self.bits.bits(),
            ticket_refused = self.refused.map(RejectReason::name),
            "server handshake done"
        );
    }

    /// The bits so far.
    pub fn bits(&self) -> Resumption {
        self.bits
    }

    /// The connection's report: `library` carries what the library says (version, cipher,
    /// SNI, ALPN, the peer's chain); the decisions are filled in here: the bits, resumed, the
    /// OCSP status (not requested; a staple sent: "not verified", for the client to check; none
    /// sent: "no response"), why a presented ticket was refused, and the lifetime of the
    /// ticket issued (`sent`: as the library tells it), reported only when one was sealed for
    /// a client that gets tickets.
    pub fn report(&self, mut library: SessionInfo, sent: Option<Duration>) -> SessionInfo {
        library.resumption = self.bits;
        library.resumed = self.resumed;
        library.ocsp = match (self.ocsp_requested, self.ocsp_stapled) {
            (false, _) => OcspStatus::NotRequested,
            (true, true) => OcspStatus::NotVerified,
            (true, false) => OcspStatus::NoResponse,
        };
        library.ticket_refused = self.refused;
        library.ticket_lifetime = (self.start.may_issue
            && self.bits.contains(Resumption::CLIENT_REQUESTED))
        .then_some(sent)
        .flatten();
        library
    }
}
