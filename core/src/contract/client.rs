//! [`ClientHandshake`]: one client connection's resumption lifecycle, written once for every
//! backend.

use std::sync::Arc;
use std::time::Duration;

use super::{offer_from, ClientContract, ClientOffer, NoOffer};
use crate::cache::store::SessionStore;
use crate::dane::{DaneAuthority, DaneCheck, DanePlan};
use crate::error::{Error, TlsError, TlsFailure};
use crate::info::{OcspStatus, ProtocolVersion, SessionInfo, Verification, VerifiedBy};
use crate::keys::{SealedTags, SessionKey};
use crate::kind::BackendKind;
use crate::model::resumption::Resumption;
use crate::settings::params::ClientParams;
use crate::settings::{ClientSettings, VerifyMode};
use crate::telemetry;

/// Whether an I/O error is a wait that ran out (a timeout, a transport that would block), not
/// something the peer did.
fn is_wait(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
    matches!(error.kind(), WouldBlock | TimedOut | Interrupted)
}

/// Whether a failure is the peer ending the handshake: an alert, a protocol failure, or the
/// connection closed or reset under a client still sending its flight (the server's alert is
/// then left unread).
fn is_refusal(error: &Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    match error {
        Error::Io(io) => matches!(
            io.kind(),
            BrokenPipe | ConnectionAborted | ConnectionReset | UnexpectedEof
        ),
        other => matches!(
            other.kind(),
            crate::ErrorKind::Alert | crate::ErrorKind::Protocol
        ),
    }
}

/// A session (or a new ticket for one) the library handed over on a client connection.
#[derive(Clone, Copy, Debug)]
pub struct ReceivedSession<'a> {
    /// Whether the connection it arrived on was resumed.
    pub resumed: bool,
    /// The connection's version.
    pub protocol: ProtocolVersion,
    /// The lifetime hint the server sent, as the library tells it (`Some(0)`: "unspecified",
    /// RFC 5077); `None` when the library does not tell (rustls in TLS 1.3).
    pub lifetime_hint: Option<Duration>,
    /// The library's serialised session (or, for a library that cannot serialise, a handle the
    /// backend resolves), sealed by the handshake before it is stored.
    pub data: &'a [u8],
    /// For a backend that stores handles (rustls): the tags the store's entry for this
    /// connection's key was sealed with ([`ClientHandshake::store_session`] returned them),
    /// when `data` is the handle that entry already holds (a resumed connection's session goes
    /// under it again). When they are the offered entry's, the entry is not written again
    /// while it is young ("stored in place", see `store_session`). `None` otherwise: the
    /// OpenSSL and GnuTLS clients' sessions are new bytes each time.
    pub stored_as: Option<SealedTags>,
}

/// One client connection's resumption lifecycle: every decision, in the order a handshake
/// meets them, fed by the backend with what its library observed.
///
/// A backend makes one per connection ([`start`](Self::start)), hands its library the session
/// [`session_to_offer`](Self::session_to_offer) opens (and calls
/// [`withdraw`](Self::withdraw) if the library refuses it), reports what the library saw
/// ([`saw_verification`](Self::saw_verification), [`saw_ocsp`](Self::saw_ocsp)), calls
/// [`finish`](Self::finish) when the handshake is done and
/// [`store_session`](Self::store_session) for each session the library hands over, and builds
/// its [`SessionInfo`] through [`report`](Self::report). Which bits are set, what is reported
/// under each policy, when OCSP fails the connection and with which [`ErrorKind`], what is
/// stored and sealed under which key: all of it is here, so no backend can skip a step.
///
/// A connection holds it for its whole life (a TLS 1.3 server may send a ticket at any time),
/// so it is kept small: what only a DANE connection or an enabled span needs is boxed and
/// absent otherwise, and the offered entry's session bytes are released by
/// [`finish`](Self::finish) (its verdicts stay: a ticket on a resumed connection carries them).
///
/// [`ErrorKind`]: crate::ErrorKind
#[derive(Debug)]
pub struct ClientHandshake {
    settings: Arc<ClientSettings>,
    /// The connection's session store in place of the settings' (the async layer's
    /// [`DeferredStore`](crate::cache::deferred::DeferredStore)): the settings stay shared.
    store: Option<Arc<dyn SessionStore>>,
    backend: BackendKind,
    offer: ClientOffer,
    session_key: SessionKey,
    server_name: Box<str>,
    seen_verification: Option<Verification>,
    /// What the connection's TLSA records ask (RFC 7672) and what the library's DANE check
    /// said; `None`: no DANE ([`DanePlan::Off`]) and no check seen.
    dane: Option<Box<DaneState>>,
    seen_ocsp: Option<OcspStatus>,
    ocsp_detail: Option<Box<str>>,
    /// The library failed the handshake because of the OCSP requirement (OpenSSL's status
    /// callback): its error is reported as an OCSP failure.
    ocsp_refused: Option<OcspStatus>,
    /// The server asked for a certificate and this client had none to give.
    asked_without_certificate: bool,
    resumed: bool,
    bits: Resumption,
    /// Sessions [`store_session`](Self::store_session) sealed on this connection (at most
    /// [`MAX_SESSIONS_STORED`]; one more once a later one was refused and the refusal told).
    sessions_stored: u8,
    ticket_lifetime: Option<Duration>,
    /// The first eight bytes of the offered entry's entry tag, kept by
    /// [`finish`](Self::finish) on a resumed connection (0: none): a session the backend hands
    /// over as already stored under these tags is the offered entry's ("stored in place",
    /// [`store_session`](Self::store_session)), without the entry's bytes kept for the
    /// connection's life.
    offered_tag: u64,
    /// The connection's span (`tls_client`), parent of its events: `None` when disabled, and
    /// once the handshake is over.
    span: Option<Box<tracing::Span>>,
}

/// A connection's DANE plan and what the library's check said.
#[derive(Debug)]
struct DaneState {
    plan: DanePlan,
    /// `Some(None)` when the library checked and no record matched; `None` when it did not
    /// check (a resumed handshake).
    seen: Option<Option<DaneAuthority>>,
}

/// The most sessions one client connection stores ([`ClientHandshake::store_session`]). A
/// TLS 1.3 server may send a NewSessionTicket at any time, as many as it likes; the store keeps
/// one per cache key (the newest), so each one past the first few costs a seal and a write for
/// nothing. Past this many, the connection stores no more (the library still reads them): the
/// newest one stored stays the one offered next. Servers send one or two after a handshake
/// (this crate's at most [`MAX_TLS13_TICKETS`](crate::settings::MAX_TLS13_TICKETS), as many
/// as a rustls client keeps per server).
pub const MAX_SESSIONS_STORED: u8 = 8;

/// How much of a stored entry's lifetime may pass before a resumed connection whose session
/// the backend hands over under the entry's own tags writes it again: an eighth (15 minutes of
/// the default 2 hours). See [`ClientHandshake::store_session`].
const REWRITE_AFTER_FRACTION: u32 = 8;

/// The plan of a connection without DANE.
static DANE_OFF: DanePlan = DanePlan::Off;

/// A client connection's span (`tls_client`), when a subscriber takes it: out of line, as
/// [`ClientHandshake::tell_done`] is.
#[inline(never)]
fn client_span(backend: BackendKind, params: &ClientParams) -> Option<Box<tracing::Span>> {
    let span = tracing::debug_span!(
        target: telemetry::TARGET,
        "tls_client",
        backend = backend.name(),
        peer = %params.peer,
        server = %params.server_name,
    );
    (!span.is_none()).then(|| Box::new(span))
}

impl ClientHandshake {
    /// The decisions before the handshake: the cache key, whether the policy resumes with this
    /// server, and the stored session to offer (if any).
    ///
    /// `store` replaces the settings' store for this connection (the async layer's
    /// [`DeferredStore`](crate::cache::deferred::DeferredStore)). `library_filters_expiry`: whether the library
    /// drops a session past its lifetime by itself (see [`ClientContract::offer`]).
    pub fn start(
        settings: &Arc<ClientSettings>,
        store: Option<Arc<dyn SessionStore>>,
        backend: BackendKind,
        params: &ClientParams,
        library_filters_expiry: bool,
    ) -> Self {
        let in_force = store.as_deref().unwrap_or(settings.store.as_ref());
        let mut offer = offer_from(settings, in_force, backend, params, library_filters_expiry);
        let session_key = in_force.session_key();
        // An entry whose verdict, expiry or any other field is not what its session was sealed
        // with (rewritten by a writer of the store without the key) is not offered, before
        // any backend's shortcut for a session it keeps decoded; it stays in the store.
        if offer
            .entry
            .as_ref()
            .is_some_and(|entry| !session_key.entry_fields_sealed(entry))
        {
            offer.withdraw(NoOffer::OtherKey);
        }
        let bits = offer.bits;
        let span = client_span(backend, params);
        let dane = DanePlan::new(
            params.dane.as_deref(),
            &params.server_name,
            &params.dane_names,
        );
        Self {
            settings: Arc::clone(settings),
            store,
            backend,
            offer,
            session_key,
            server_name: params.server_name.as_str().into(),
            seen_verification: None,
            dane: (dane != DanePlan::Off).then(|| {
                Box::new(DaneState {
                    plan: dane,
                    seen: None,
                })
            }),
            seen_ocsp: None,
            ocsp_detail: None,
            ocsp_refused: None,
            asked_without_certificate: false,
            resumed: false,
            bits,
            sessions_stored: 0,
            ticket_lifetime: None,
            offered_tag: 0,
            span,
        }
    }

    /// The settings this connection runs with (shared with the client's other connections:
    /// a session store the connection was started with in their store's place is not in
    /// them, see [`start`](Self::start)).
    pub fn settings(&self) -> &Arc<ClientSettings> {
        &self.settings
    }

    /// The decision made before the handshake.
    pub fn offer(&self) -> &ClientOffer {
        &self.offer
    }

    /// Whether the policy resumes with this server: ask the library for tickets, store what
    /// arrives. When `false`, the backend turns tickets off in its library.
    pub fn may_resume(&self) -> bool {
        self.offer.may_resume
    }

    /// Whether the connection needs this record once the handshake over `protocol` is over
    /// and its report made: it stores the sessions the server may send at any time (TLS 1.3
    /// tickets; a TLS 1.2 ticket comes inside the handshake, and none after it), or it turns a
    /// later refusal into a certificate failure ([`io_failed`](Self::io_failed)). When
    /// `false`, nothing after the handshake changes what it reports or does, and a backend may
    /// drop it.
    pub fn needed_after_handshake(&self, protocol: ProtocolVersion) -> bool {
        (self.offer.may_resume && protocol != ProtocolVersion::Tls12)
            || self.asked_without_certificate
    }

    /// The server name the connection is made to.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The offered entry's bytes as the store holds them (sealed): for a backend that keeps
    /// decoded sessions and compares bytes before opening again. Empty once the handshake is
    /// over ([`finish`](Self::finish)).
    pub fn stored_session(&self) -> Option<&[u8]> {
        self.offer.entry.as_ref().map(|e| e.session.as_slice())
    }

    /// The library's session bytes of the offered entry, when there is one and it opens under
    /// the store's key for this connection's cache key. One that does not open (another
    /// process's key, another store's, copied from under another cache key, an earlier
    /// format, damaged, or with a verdict or expiry other than it was sealed with) is withdrawn ([`NoOffer::OtherKey`]) and left in the store.
    pub fn session_to_offer(&mut self) -> Option<&[u8]> {
        let entry = self.offer.entry.as_ref()?;
        // Where the library's bytes start, when the entry opens (checked once: the tag covers
        // every byte of a session that may be kilobytes long). The entry's other fields were
        // checked against their tag in `start`, before the entry became the offer (and the
        // offer's entry is never replaced), so only the data tag is checked here.
        let start = self
            .session_key
            .open_session_data(self.backend.name(), &self.offer.key, entry)
            .map(|data| entry.session.len() - data.len());
        match start {
            Some(start) => self
                .offer
                .entry
                .as_ref()
                .and_then(|entry| entry.session.get(start..)),
            None => {
                self.withdraw(NoOffer::OtherKey);
                None
            }
        }
    }

    /// The offered session cannot be used (the library refused it, this process does not hold
    /// it): no session is offered, for `reason`. The store entry stays.
    pub fn withdraw(&mut self, reason: NoOffer) {
        self.offer.withdraw(reason);
        self.bits.remove(Resumption::CLIENT_SUGGESTED);
    }

    /// What the connection's TLSA records ask of the backend: [`DanePlan::Off`], the settings'
    /// own verification; [`DanePlan::Unauthenticated`], no certificate check at all (neither
    /// PKIX nor DANE may fail the handshake); [`DanePlan::Verify`], the library's DANE check
    /// against these records instead of PKIX, reported with [`saw_dane`](Self::saw_dane) (the
    /// library must not fail the handshake itself: [`finish`](Self::finish) does, with the
    /// error that says no record matched).
    pub fn dane(&self) -> &DanePlan {
        self.dane.as_ref().map_or(&DANE_OFF, |dane| &dane.plan)
    }

    /// What the library's DANE check said (see [`saw_dane`](Self::saw_dane)).
    fn seen_dane(&self) -> Option<&Option<DaneAuthority>> {
        self.dane.as_ref().and_then(|dane| dane.seen.as_ref())
    }

    /// The records to check by DANE, when the plan is to ([`dane`](Self::dane)).
    pub fn dane_check(&self) -> Option<&DaneCheck> {
        self.dane().check()
    }

    /// What the library's DANE check said on this handshake: the matching record and its
    /// depth, or `None` when it checked and none matched (not called when the library did not
    /// check, as on a resumed handshake).
    pub fn saw_dane(&mut self, authority: Option<DaneAuthority>) {
        self.dane
            .get_or_insert_with(|| {
                Box::new(DaneState {
                    plan: DanePlan::Off,
                    seen: None,
                })
            })
            .seen = Some(authority);
    }

    /// What the library's certificate check said on this handshake (not called when the
    /// library does not check, as on a resumed handshake).
    pub fn saw_verification(&mut self, verification: Verification) {
        self.seen_verification = Some(verification);
    }

    /// The stapled OCSP response's status as checked on this handshake (`detail`: why it was
    /// rejected, where the backend knows).
    pub fn saw_ocsp(&mut self, status: OcspStatus, detail: Option<String>) {
        self.seen_ocsp = Some(status);
        self.ocsp_detail = detail.map(String::into_boxed_str);
    }

    /// For a library that judges the staple inside the handshake (OpenSSL's status callback):
    /// whether to fail a full handshake now, as Exim's `hosts_require_ocsp` does. When it says
    /// so, [`library_failed`](Self::library_failed) turns the library's error into an OCSP
    /// failure. A resumed handshake is judged by [`finish`](Self::finish).
    pub fn refuses_full_handshake(&mut self, status: OcspStatus) -> bool {
        let refuse = self.settings.ocsp_requirement_failed(status);
        if refuse {
            self.ocsp_refused = Some(status);
        }
        refuse
    }

    /// The error of a handshake the library failed: an OCSP failure when the failure was the
    /// OCSP requirement ([`refuses_full_handshake`](Self::refuses_full_handshake)), with the
    /// library's error as its source; otherwise the library's error as it is.
    pub fn library_failed(&self, error: Error) -> Error {
        let error = self.library_error(error);
        self.failed(&error);
        error
    }

    /// The server asked for a certificate and this client has none to give (the library's
    /// callback for it ran, or the library says so after the handshake). A failure the peer
    /// then signals (an alert, or closing the connection under the client's flight) is reported
    /// as a certificate failure: the server refused a client without a certificate.
    pub fn asked_without_certificate(&mut self) {
        self.asked_without_certificate = true;
    }

    /// A read or write that failed after the handshake (in TLS 1.3 a server refuses a client's
    /// certificate, or its absence, after the client's handshake is done): when the server
    /// had asked for a certificate this client did not have, the error becomes a
    /// [`TlsFailure::Certificate`] inside the I/O error ([`Error::from_io`] gets it back).
    pub fn io_failed(&self, error: std::io::Error) -> std::io::Error {
        if !self.asked_without_certificate || is_wait(&error) {
            return error;
        }
        let kind = error.kind();
        std::io::Error::new(kind, self.without_certificate(Error::Io(error)))
    }

    fn without_certificate(&self, error: Error) -> Error {
        Error::Tls(
            TlsError::new(
                self.backend.name(),
                TlsFailure::Certificate,
                format!(
                    "{} asked for a client certificate, none is configured (tls_certificate), \
                     and it refused the connection",
                    self.server_name
                ),
            )
            .with_source(error),
        )
    }

    fn library_error(&self, error: Error) -> Error {
        if self.asked_without_certificate && is_refusal(&error) {
            return self.without_certificate(error);
        }
        match self.ocsp_refused {
            Some(status) => Error::Tls(
                TlsError::new(
                    self.backend.name(),
                    TlsFailure::Ocsp,
                    format!("OCSP is required and the status is {status}"),
                )
                .with_source(error),
            ),
            None => error,
        }
    }

    /// The decisions after the handshake: `USED` when resumed, the verification requirement
    /// (for a library that only records what it saw), the OCSP requirement over the status
    /// reported. An error fails the connection; the backend then closes it.
    pub fn finish(&mut self, resumed: bool) -> Result<(), Error> {
        let decided = self.decide(resumed);
        match &decided {
            Ok(()) => {
                telemetry::handshake_done("client", self.backend, resumed);
                if let Some(reason) = self.offer.no_offer {
                    telemetry::not_offered(self.backend, reason);
                }
                self.tell_done(resumed);
            }
            Err(e) => self.failed(e),
        }
        // What only the handshake needed: the span, and the offered session's bytes (its
        // verdicts stay, for the tickets of a resumed connection; of its tags, what tells a
        // session stored in place, `store_session`).
        self.span = None;
        if resumed && decided.is_ok() {
            self.offered_tag = self.offered_prefix();
        }
        if let Some(entry) = &mut self.offer.entry {
            entry.session = Vec::new();
        }
        decided
    }

    /// The event of a handshake done (out of line: the event's code, whether or not a
    /// subscriber takes it, is not laid out in the lifecycle's own).
    #[inline(never)]
    fn tell_done(&self, resumed: bool) {
        tracing::debug!(
            target: telemetry::TARGET,
            parent: self.span(),
            resumed,
            resumption = self.bits.bits(),
            no_offer = self.offer.no_offer.map(NoOffer::name),
            "client handshake done"
        );
    }

    /// The first eight bytes of the offered entry's tag (0 when there is none): as `finish`
    /// kept them, or read off the entry's bytes while the handshake runs (a TLS 1.2 ticket
    /// comes in the resumed handshake's own flight, before `finish`).
    fn offered_prefix(&self) -> u64 {
        match (self.offered_tag, &self.offer.entry) {
            (0, Some(entry)) => SealedTags::of(&entry.session).map_or(0, |t| t.entry_prefix()),
            (kept, _) => kept,
        }
    }

    /// The connection's span, or none.
    fn span(&self) -> Option<tracing::Id> {
        self.span.as_deref().and_then(tracing::Span::id)
    }

    /// A failed handshake: counted and told, with why no session was offered.
    #[cold]
    #[inline(never)]
    fn failed(&self, error: &Error) {
        telemetry::client_failed(self.backend, error.kind());
        if let Some(reason) = self.offer.no_offer {
            telemetry::not_offered(self.backend, reason);
        }
        tracing::info!(
            target: telemetry::TARGET,
            parent: self.span(),
            kind = error.kind().name(),
            error = %error,
            "client handshake failed"
        );
    }

    fn decide(&mut self, resumed: bool) -> Result<(), Error> {
        self.resumed = resumed;
        if resumed {
            self.bits |= Resumption::USED;
        }
        if let Some(check) = self.dane().check() {
            self.decide_dane(check, resumed)?;
        } else if self.seen_verification == Some(Verification::Failed)
            && self.settings.verify == VerifyMode::Require
            && *self.dane() == DanePlan::Off
        {
            return Err(Error::tls_failure(
                self.backend.name(),
                TlsFailure::Certificate,
                format!("the certificate of {} did not verify", self.server_name),
            ));
        }
        let ocsp = self.ocsp();
        if self.settings.ocsp_requirement_failed(ocsp) {
            return Err(Error::tls_failure(
                self.backend.name(),
                TlsFailure::Ocsp,
                match self.ocsp_detail.as_deref() {
                    Some(why) => format!(
                        "OCSP is required and the status is {ocsp}: {why} (resumed: {resumed})"
                    ),
                    None => {
                        format!("OCSP is required and the status is {ocsp} (resumed: {resumed})")
                    }
                },
            ));
        }
        Ok(())
    }

    /// A server verified by DANE only: a full handshake fails unless a record matched,
    /// whatever the verify mode (Exim's `hosts_require_dane`); so does a resumed one on which
    /// the library checked again and found no match. A resumed handshake the library did not
    /// check goes on, reported per policy ([`verified_by`](Self::verified_by)).
    fn decide_dane(&self, check: &DaneCheck, resumed: bool) -> Result<(), Error> {
        match self.seen_dane() {
            Some(Some(_)) => Ok(()),
            None if resumed => Ok(()),
            _ => Err(Error::tls_failure(
                self.backend.name(),
                TlsFailure::Certificate,
                format!(
                    "DANE: no TLSA record matched the certificate chain of {} ({} usable of {} \
                     given; resumed: {resumed})",
                    self.server_name,
                    check.records.len(),
                    check.given
                ),
            )),
        }
    }

    /// How the server was authenticated, as reported. Under DANE: the record the library
    /// matched on this handshake; on a resumed handshake the library did not check, the
    /// stored session's record under a policy that carries verification (hardened), nothing
    /// otherwise (what the libraries report: see `docs/differences.md`). Without DANE: PKIX
    /// when the reported verification is "verified".
    pub fn verified_by(&self) -> VerifiedBy {
        match self.dane() {
            DanePlan::Verify(_) => match (self.seen_dane(), &self.offer.entry) {
                (Some(Some(authority)), _) => VerifiedBy::Dane(authority.clone()),
                (None, Some(entry))
                    if self.resumed
                        && self.settings.resumption.known_issues().carry_verification =>
                {
                    entry
                        .dane
                        .clone()
                        .map_or(VerifiedBy::Nothing, VerifiedBy::Dane)
                }
                _ => VerifiedBy::Nothing,
            },
            DanePlan::Unauthenticated => VerifiedBy::Nothing,
            DanePlan::Off => {
                if self.verification() == Verification::Verified {
                    VerifiedBy::Pkix
                } else {
                    VerifiedBy::Nothing
                }
            }
        }
    }

    /// Whether the handshake resumed (known after [`finish`](Self::finish)).
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// The verification reported: what the library saw, or on a resumed handshake under a
    /// policy that carries it, the stored result.
    pub fn verification(&self) -> Verification {
        match self.dane() {
            DanePlan::Off => {}
            DanePlan::Unauthenticated => return Verification::NotChecked,
            DanePlan::Verify(_) => {
                return match (self.seen_dane(), self.verified_by()) {
                    (_, VerifiedBy::Dane(_)) => Verification::Verified,
                    (Some(None), _) => Verification::Failed,
                    _ => Verification::NotChecked,
                }
            }
        }
        self.settings.reported_verification(
            &self.offer,
            self.resumed,
            self.seen_verification.unwrap_or(Verification::NotChecked),
        )
    }

    /// The OCSP status reported, likewise.
    pub fn ocsp(&self) -> OcspStatus {
        let seen = self
            .seen_ocsp
            .unwrap_or_else(|| self.settings.ocsp_without_staple());
        self.settings.reported_ocsp(&self.offer, self.resumed, seen)
    }

    /// A ticket arrived though nothing is stored (Exim's GnuTLS client sets `SERVER_TICKET`
    /// whenever one arrives, also when it does not resume).
    pub fn ticket_seen(&mut self) {
        self.bits |= Resumption::SERVER_TICKET;
    }

    /// Stores a session the library handed over, sealed under the store's key, and sets
    /// `SERVER_TICKET`. Nothing is stored when the policy does not resume with this server,
    /// when the OCSP requirement failed on this connection, or once the connection has stored
    /// [`MAX_SESSIONS_STORED`] (a server sending tickets without end costs no seal or write
    /// past those; a debug event says so once). Returns the tags the session was
    /// sealed with: with `received.data`, they are the bytes stored ([`SealedTags::sealed_over`]
    /// tells whether the store still holds them). A store failure loses the session, never the
    /// connection.
    ///
    /// **Stored in place.** A backend whose library cannot serialise its sessions (rustls)
    /// stores a handle to the value it keeps in process, and hands over a session received on
    /// a resumed connection under the handle the store's entry already names, with that
    /// entry's tags ([`ReceivedSession::stored_as`]). When those are the offered entry's, and
    /// the version and lifetime are the same, the entry is not written again while less than
    /// an eighth of its lifetime has passed since it was (15 minutes of the default 2 hours):
    /// the backend's in-process value is the new session, the store already says everything
    /// the entry would (a resumed connection's verdicts are the offered entry's), and the write
    /// (a round trip, with Redis) is saved. The tags returned are the entry's. The entry then
    /// expires on its first write's clock: after at most 15 minutes of its 2 hours, a resumed
    /// connection writes it again.
    pub fn store_session(&mut self, received: ReceivedSession<'_>) -> Option<SealedTags> {
        if !self.offer.may_resume {
            return None;
        }
        if self.sessions_stored >= MAX_SESSIONS_STORED {
            if self.sessions_stored == MAX_SESSIONS_STORED {
                // Told once per connection.
                self.sessions_stored += 1;
                tracing::debug!(
                    target: telemetry::TARGET,
                    backend = self.backend.name(),
                    server = &*self.server_name,
                    "the server sent more sessions than a connection stores ({MAX_SESSIONS_STORED}): no more are stored"
                );
            }
            return None;
        }
        let seen_ocsp = self
            .seen_ocsp
            .unwrap_or_else(|| self.settings.ocsp_without_staple());
        let reported_ocsp = self
            .settings
            .reported_ocsp(&self.offer, received.resumed, seen_ocsp);
        if self.settings.ocsp_requirement_failed(reported_ocsp) {
            return None;
        }
        // A full handshake DANE did not authenticate leaves nothing to resume.
        let dane = self.seen_dane().cloned().flatten();
        if self.dane().check().is_some() && !received.resumed && dane.is_none() {
            return None;
        }
        if let Some(tags) = self.stored_in_place(&received) {
            self.sessions_stored += 1;
            self.bits |= Resumption::SERVER_TICKET;
            self.ticket_lifetime = received.lifetime_hint;
            telemetry::session_stored(self.backend);
            return Some(tags);
        }
        let mut entry = super::entry_for(
            &self.settings,
            self.backend,
            &self.offer,
            received.resumed,
            if dane.is_some() {
                Verification::Verified
            } else {
                self.seen_verification.unwrap_or(Verification::NotChecked)
            },
            dane,
            seen_ocsp,
            received.protocol,
            received.lifetime_hint.unwrap_or(Duration::ZERO),
            Vec::new(),
        );
        let tags = self.session_key.session_tags(
            self.backend.name(),
            &self.offer.key,
            &entry,
            received.data,
        );
        entry.session = tags.sealed(received.data);
        // Counted whether or not the store takes it: the work is done either way.
        self.sessions_stored += 1;
        let store = self
            .store
            .as_deref()
            .unwrap_or(self.settings.store.as_ref());
        match store.put(&self.offer.key, entry) {
            Ok(()) => {
                self.bits |= Resumption::SERVER_TICKET;
                self.ticket_lifetime = received.lifetime_hint;
                telemetry::session_stored(self.backend);
                Some(tags)
            }
            // A store failure loses the session, never the connection; the store says so
            // (its notices).
            Err(_) => None,
        }
    }

    /// The tags of the offered entry, when `received` is a session of this resumed connection
    /// handed over under them, the entry already says what a write would, and it is young
    /// enough not to be written again (see [`store_session`](Self::store_session)).
    fn stored_in_place(&self, received: &ReceivedSession<'_>) -> Option<SealedTags> {
        let tags = received.stored_as.filter(|_| received.resumed)?;
        let offered = self.offer.entry.as_ref()?;
        let offered_tag = self.offered_prefix();
        if offered_tag == 0 || tags.entry_prefix() != offered_tag {
            return None;
        }
        let lifetime = super::lifetime_for(
            &self.offer,
            true,
            received.lifetime_hint.unwrap_or(Duration::ZERO),
        );
        let age = self
            .settings
            .clock
            .now()
            .saturating_since(offered.stored_at);
        (offered.protocol == received.protocol.wire()
            && offered.lifetime_hint == lifetime
            && age < offered.lifetime_hint / REWRITE_AFTER_FRACTION)
            .then_some(tags)
    }

    /// The bits so far.
    pub fn bits(&self) -> Resumption {
        self.bits
    }

    /// The lifetime hint of the newest session stored, as the library told it.
    pub fn ticket_lifetime(&self) -> Option<Duration> {
        self.ticket_lifetime
    }

    /// Brings a report made by [`report`](Self::report) up to date once the handshake is over:
    /// only what a session stored since changes it (the bits, the newest ticket's lifetime;
    /// every other decision is made by [`finish`](Self::finish)). Whether anything changed.
    pub fn refresh_report(&self, info: &mut SessionInfo) -> bool {
        if info.resumption == self.bits && info.ticket_lifetime == self.ticket_lifetime {
            return false;
        }
        info.resumption = self.bits;
        info.ticket_lifetime = self.ticket_lifetime;
        true
    }

    /// The connection's report: `library` carries what the library says (version, cipher,
    /// peer chain, ALPN); the decisions (bits, resumed, verification and OCSP as reported,
    /// the server name sent, the newest ticket's lifetime, why no session was offered) are
    /// filled in here.
    pub fn report(&self, mut library: SessionInfo) -> SessionInfo {
        library.resumption = self.bits;
        library.resumed = self.resumed;
        library.verification = self.verification();
        library.verified_by = self.verified_by();
        library.ocsp = self.ocsp();
        library.ocsp_detail = self.ocsp_detail.as_deref().map(str::to_owned);
        if library.sni.as_deref() != Some(&*self.server_name) {
            library.sni = Some(String::from(&*self.server_name));
        }
        library.ticket_lifetime = self.ticket_lifetime;
        library.no_offer = self.offer.no_offer;
        library
    }
}
