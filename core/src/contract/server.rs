//! [`ServerHandshake`]: one server connection's resumption lifecycle, written once for every
//! backend.

use std::time::Duration;

use super::ServerStart;
use crate::error::{Error, TlsError, TlsFailure};
use crate::info::{subject_dn, OcspStatus, SessionInfo, Verification};
use crate::keys::key_ring::RejectReason;
use crate::kind::BackendKind;
use crate::model::resumption::Resumption;
use crate::settings::ClientAuth;
use crate::telemetry;

/// One server connection's resumption lifecycle: the bits, what is reported about OCSP and the
/// ticket, and why a presented ticket was refused, fed by the backend with what its library
/// observed (a ticket sealed, a ticket presented, its refusal, a status request) from the
/// starting decision ([`ServerContract::start`](super::ServerContract::start)).
///
/// Where a library does not tell, the backend infers and its docs say so (GnuTLS and rustls do
/// not say whether they stapled; rustls does not say whether the client asked for a status).
///
/// Client certificates ([`ServerStart::client_auth`]): the backend asks its library for one as
/// decided, and feeds what the library's check saw on this handshake
/// ([`client_certificate_seen`](Self::client_certificate_seen)) and, on a resumed handshake,
/// what the library kept in the session
/// ([`client_certificate_kept`](Self::client_certificate_kept)). Under
/// [`exim_compatible`](crate::ResumptionPolicy::exim_compatible) only what was seen on this
/// handshake is reported (OpenSSL does not run its verify callback on a resumed handshake:
/// `$tls_in_certificate_verified` unset, `verify = certificate` false, the known issue); under
/// [`hardened`](crate::ResumptionPolicy::hardened) a resumed handshake reports what the session
/// kept, which says "verified" only when the original check did.
#[derive(Clone, Debug)]
pub struct ServerHandshake {
    backend: BackendKind,
    start: ServerStart,
    bits: Resumption,
    resumed: bool,
    refused: Option<RejectReason>,
    ocsp_requested: bool,
    ocsp_stapled: bool,
    /// What the library's check of the client certificate said on this handshake.
    client_seen: Option<Verification>,
    /// What the library kept in a resumed session about the client certificate.
    client_kept: Option<Verification>,
    /// The library failed the handshake because the client presented no certificate.
    client_missing: bool,
    /// The server name the client sent, normalised.
    server_name: Option<String>,
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
            client_seen: None,
            client_kept: None,
            client_missing: false,
            server_name: None,
        }
    }

    /// The server name the client sent (SNI), as the library read it from the ClientHello:
    /// what a session issued on this connection is bound to, and what a resumed session must
    /// have been issued under.
    pub fn server_name_seen(&mut self, name: Option<&str>) {
        self.server_name = name.map(|name| crate::identities::normalise(name).into_owned());
    }

    /// The server name a session issued on this connection is bound to (lower case, no
    /// trailing dot; `None`: the client sent none).
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// Whether a session issued under `issued` (the name it was bound to, as
    /// [`server_name`](Self::server_name) gave it then) may resume on this connection: only
    /// under the same name, or with no name on both (RFC 8446 4.6.1; Exim checks the same).
    /// A refusal is recorded ([`RejectReason::ServerName`]): a full handshake follows, never
    /// a failure. For backends whose library does not check the name itself (OpenSSL).
    pub fn may_resume_under(&mut self, issued: Option<&str>) -> bool {
        let issued = issued.map(crate::identities::normalise);
        if issued.as_deref() == self.server_name.as_deref() {
            true
        } else {
            self.ticket_refused(RejectReason::ServerName);
            false
        }
    }

    /// Whether the client is asked for a certificate, and whether it must verify.
    pub fn client_auth(&self) -> ClientAuth {
        self.start.client_auth
    }

    /// What the library's check of the client's certificate said on this handshake (its
    /// verify callback, or its check after the handshake). Not called when the library did
    /// not check (no certificate presented, or a resumed handshake that skips the check).
    pub fn client_certificate_seen(&mut self, verification: Verification) {
        // A chain is checked certificate by certificate: one failure fails it.
        if self.client_seen != Some(Verification::Failed) {
            self.client_seen = Some(verification);
        }
    }

    /// What the library kept in a resumed session about the client's certificate (OpenSSL's
    /// stored verify result with the stored peer certificate). Reported only under a policy
    /// that carries verification.
    pub fn client_certificate_kept(&mut self, verification: Verification) {
        self.client_kept = Some(verification);
    }

    /// The library failed the handshake because the client presented no certificate where one
    /// is required (its own error says so).
    pub fn client_certificate_missing(&mut self) {
        self.client_missing = true;
    }

    /// Whether a certificate the library's check saw as not verified must fail the handshake
    /// now: the client is in `verify_hosts`.
    pub fn refuses_client_certificate(&self, seen: Verification) -> bool {
        self.start.client_auth == ClientAuth::Require && seen != Verification::Verified
    }

    /// The error of a handshake the library failed: a certificate failure naming what the
    /// client did not give when the failure was the client-certificate requirement, with the
    /// library's error as its source; otherwise the library's error as it is. Counted.
    pub fn library_failed(&self, error: Error) -> Error {
        let why = if self.start.client_auth != ClientAuth::Require {
            None
        } else if self.client_seen == Some(Verification::Failed) {
            Some("the client's certificate did not verify against the client CA list")
        } else if self.client_missing {
            Some("the client presented no certificate; this host must (verify_hosts)")
        } else {
            None
        };
        let error = match why {
            Some(why) => Error::Tls(
                TlsError::new(self.backend.name(), TlsFailure::Certificate, why).with_source(error),
            ),
            None => error,
        };
        telemetry::server_failed(self.backend, error.kind());
        tracing::info!(
            target: telemetry::TARGET,
            parent: &self.span,
            kind = error.kind().name(),
            error = %error,
            "server handshake failed"
        );
        error
    }

    /// The client certificate's verification reported: what was seen on this handshake, or on
    /// a resumed one under a policy that carries it, what the session kept.
    pub fn client_verification(&self) -> Verification {
        if self.start.client_auth == ClientAuth::Off {
            return Verification::NotChecked;
        }
        match (self.client_seen, self.client_kept) {
            (Some(seen), _) => seen,
            (None, Some(kept)) if self.resumed && self.start.carry_verification => kept,
            _ => Verification::NotChecked,
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
    /// sent: "no response"), why a presented ticket was refused, the lifetime of the
    /// ticket issued (`sent`: as the library tells it), reported only when one was sealed for
    /// a client that gets tickets, and the client certificate's verification
    /// ([`client_verification`](Self::client_verification)) with its subject's DN when a
    /// verification is reported.
    pub fn report(&self, mut library: SessionInfo, sent: Option<Duration>) -> SessionInfo {
        library.resumption = self.bits;
        library.resumed = self.resumed;
        library.verification = self.client_verification();
        library.peer_dn = match library.verification {
            Verification::NotChecked => None,
            _ => library
                .peer_certificates
                .first()
                .and_then(|c| subject_dn(c)),
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::ServerContract;
    use crate::settings::params::ServerParams;
    use crate::{ErrorKind, HostList, ResumptionPolicy, ServerSettings};

    fn start(policy: ResumptionPolicy, verify: &str, try_verify: &str) -> ServerStart {
        let identity =
            crate::Identity::from_der(vec![vec![0x30; 20]], vec![1], crate::KeyFormat::Pkcs8)
                .expect("identity");
        let mut settings = ServerSettings::new(identity);
        settings.resumption = policy;
        settings.verify_hosts = verify.parse::<HostList>().expect("list");
        settings.try_verify_hosts = try_verify.parse::<HostList>().expect("list");
        let peer = std::net::SocketAddr::from(([192, 0, 2, 1], 40000));
        let local = std::net::SocketAddr::from(([192, 0, 2, 25], 25));
        settings.start(&ServerParams::new(peer, local))
    }

    #[test]
    fn verify_hosts_come_before_try_verify_hosts() {
        let policy = ResumptionPolicy::exim_compatible;
        assert_eq!(
            start(policy(), "192.0.2.1", "*").client_auth,
            ClientAuth::Require
        );
        assert_eq!(
            start(policy(), "192.0.2.9", "*").client_auth,
            ClientAuth::Try
        );
        assert_eq!(start(policy(), "", "").client_auth, ClientAuth::Off);
    }

    #[test]
    fn a_resumed_session_reports_what_was_kept_only_when_hardened() {
        for (policy, expected) in [
            (
                ResumptionPolicy::exim_compatible(),
                Verification::NotChecked,
            ),
            (ResumptionPolicy::hardened(), Verification::Verified),
        ] {
            let mut hs = ServerHandshake::new(BackendKind::Openssl, start(policy, "*", ""));
            hs.client_certificate_kept(Verification::Verified);
            hs.finish(true);
            assert_eq!(hs.client_verification(), expected);
        }
        // What was seen on this handshake wins, and one failure in a chain fails it.
        let mut hs = ServerHandshake::new(
            BackendKind::Gnutls,
            start(ResumptionPolicy::exim_compatible(), "", "*"),
        );
        hs.client_certificate_seen(Verification::Failed);
        hs.client_certificate_seen(Verification::Verified);
        hs.finish(false);
        assert_eq!(hs.client_verification(), Verification::Failed);
        assert!(
            !hs.refuses_client_certificate(Verification::Failed),
            "only asked"
        );
    }

    #[test]
    fn a_session_resumes_only_under_its_server_name() {
        let start = || start(ResumptionPolicy::hardened(), "", "");
        let mut hs = ServerHandshake::new(BackendKind::Openssl, start());
        hs.server_name_seen(Some("A.example.org."));
        assert_eq!(hs.server_name(), Some("a.example.org"));
        assert!(hs.may_resume_under(Some("a.example.org")));
        assert!(!hs.may_resume_under(Some("b.example.org")));
        assert!(!hs.may_resume_under(None));
        hs.finish(false);
        assert_eq!(
            hs.report(
                SessionInfo::new(crate::Side::Server, crate::ProtocolVersion::Tls13),
                None
            )
            .ticket_refused,
            Some(RejectReason::ServerName)
        );
        let mut hs = ServerHandshake::new(BackendKind::Openssl, start());
        hs.server_name_seen(None);
        assert!(hs.may_resume_under(None));
        assert!(!hs.may_resume_under(Some("a.example.org")));
    }

    #[test]
    fn a_missing_required_certificate_is_a_certificate_failure() {
        let mut hs = ServerHandshake::new(
            BackendKind::Rustls,
            start(ResumptionPolicy::exim_compatible(), "*", ""),
        );
        let library = Error::tls("rustls", "no certificates presented");
        assert_eq!(hs.library_failed(library).kind(), ErrorKind::Protocol);
        hs.client_certificate_missing();
        let error = hs.library_failed(Error::tls("rustls", "no certificates presented"));
        assert_eq!(error.kind(), ErrorKind::Certificate);
        assert!(
            error.to_string().contains("presented no certificate"),
            "{error}"
        );
    }
}
