//! The contract for backends: the resumption decisions every backend makes the same way around
//! its library's handshake, and the types each backend implements.
//!
//! - [`ClientHandshake`]: one client connection's lifecycle, every decision in the order a
//!   handshake meets it (which session is offered and why not, which bits, what is reported
//!   for verification and OCSP under each policy, when OCSP fails the connection, what is
//!   stored and sealed under which key), fed by the backend with what its library observed.
//! - [`ServerHandshake`]: one server connection's lifecycle from [`ServerContract::start`]'s
//!   starting decision: the bits, the OCSP status and ticket lifetime reported, why a
//!   presented ticket was refused.
//! - [`ClientContract`]: the cache key and the offer, for tools that explain a decision
//!   (`tlsresume probe`) without making a connection.
//! - [`Backend`], [`TlsClient`], [`TlsServer`], [`TlsHandshake`], [`TlsConnection`]: the
//!   backend contract in types, implemented once per backend through
//!   [`impl_backend!`](crate::impl_backend); the type-erased forms follow from them.
//!
//! Applications use the backends' `Client`/`Server` (or the run-time forms) and never call
//! these.

use std::borrow::Cow;
use std::time::Duration;

use crate::cache::store::{SessionStore, StoreError};
use crate::cache::{CacheEntry, CacheKey, KeyInputs, NEVER_LB};
use crate::dane::{DaneAuthority, DanePlan};
pub use crate::info::NoOffer;
use crate::info::{OcspStatus, ProtocolVersion, Verification};
use crate::kind::BackendKind;
use crate::model::resumption::Resumption;
use crate::settings::params::{ClientParams, ServerParams};
use crate::settings::{ClientAuth, ClientSettings, OcspMode, ServerSettings, VerifyMode, Versions};

/// The lifetime given to a session whose ticket carried no lifetime hint: 2 h, the ticket
/// lifetime of both Exim flavours.
pub const DEFAULT_LIFETIME_HINT: Duration = Duration::from_secs(7200);

/// What a client decided before its handshake.
#[derive(Clone, Debug)]
pub struct ClientOffer {
    /// The connection's cache key.
    pub key: CacheKey,
    /// Whether the policy resumes with this server (tickets asked for, sessions stored).
    pub may_resume: bool,
    /// The session to offer, if any.
    pub entry: Option<CacheEntry>,
    /// Why none is offered.
    pub no_offer: Option<NoOffer>,
    /// The client's bits so far: SUPPORTED, CLIENT_REQUESTED when allowed, CLIENT_SUGGESTED
    /// when a session is offered.
    pub bits: Resumption,
}

impl ClientOffer {
    /// The offered session cannot be used after all (`reason`: the library refused it, it was
    /// sealed under another key, this process does not hold it): the entry is dropped, the
    /// offer is withdrawn (`CLIENT_SUGGESTED` cleared) and the reason recorded. The store entry
    /// stays: it may be another writer's.
    pub fn withdraw(&mut self, reason: NoOffer) {
        if self.entry.take().is_some() {
            self.bits.remove(Resumption::CLIENT_SUGGESTED);
            self.no_offer = Some(reason);
        }
    }
}

/// The client half of the backend contract: the decisions every backend makes the same way
/// around its library's handshake (which session to offer, what a resumed session reports,
/// what is stored). Implemented for [`ClientSettings`]; applications do not call it.
pub trait ClientContract {
    /// The cache key for a connection made by `backend` with these settings.
    fn cache_key(&self, backend: BackendKind, params: &ClientParams) -> CacheKey;

    /// Looks up the session to offer.
    ///
    /// `library_filters_expiry` says whether this backend drops a session past store time +
    /// lifetime hint by itself (OpenSSL as Exim drives it, rustls); GnuTLS does not, and only
    /// the hardened policy filters for it. A corrupt or expired entry is skipped and left in
    /// place (it may be another writer's; the next session stored replaces it); a store failure
    /// is a miss, never an error that stops the connection.
    fn offer(
        &self,
        backend: BackendKind,
        params: &ClientParams,
        library_filters_expiry: bool,
    ) -> ClientOffer;

    /// The verification a connection reports, from what the library saw on this handshake.
    ///
    /// On a resumed handshake under a policy that carries verification, the stored result is
    /// reported instead; a session stored with verify-override never reports "verified".
    fn reported_verification(
        &self,
        offer: &ClientOffer,
        resumed: bool,
        seen: Verification,
    ) -> Verification;

    /// The OCSP status a connection reports, from what the library saw on this handshake.
    fn reported_ocsp(&self, offer: &ClientOffer, resumed: bool, seen: OcspStatus) -> OcspStatus;

    /// Whether a connection with this outcome must fail: OCSP required and not verified.
    fn ocsp_requirement_failed(&self, reported: OcspStatus) -> bool;

    /// The OCSP status when no staple was seen.
    fn ocsp_without_staple(&self) -> OcspStatus;
}

/// The library-options input of the cache key: `"{backend};{min}-{max}"` with the versions'
/// wire codes. The ranges settings can hold are spelt out, so a connection formats nothing;
/// any other range is formatted (and gives the same text).
fn key_options(backend: BackendKind, versions: Versions) -> Cow<'static, str> {
    use BackendKind::{Gnutls, Openssl, Rustls};
    use ProtocolVersion::{Tls12, Tls13};
    Cow::Borrowed(match (backend, versions.min, versions.max) {
        (Openssl, Tls12, Tls12) => "openssl;771-771",
        (Openssl, Tls12, Tls13) => "openssl;771-772",
        (Openssl, Tls13, Tls13) => "openssl;772-772",
        (Gnutls, Tls12, Tls12) => "gnutls;771-771",
        (Gnutls, Tls12, Tls13) => "gnutls;771-772",
        (Gnutls, Tls13, Tls13) => "gnutls;772-772",
        (Rustls, Tls12, Tls12) => "rustls;771-771",
        (Rustls, Tls12, Tls13) => "rustls;771-772",
        (Rustls, Tls13, Tls13) => "rustls;772-772",
        _ => {
            return Cow::Owned(format!(
                "{backend};{}-{}",
                versions.min.wire(),
                versions.max.wire()
            ))
        }
    })
}

impl ClientContract for ClientSettings {
    fn cache_key(&self, backend: BackendKind, params: &ClientParams) -> CacheKey {
        // The inputs borrowed from the settings and parameters (what `CacheKey::builder` would
        // be given, without copying them: a connection to a server seen before allocates
        // nothing here).
        let options = key_options(backend, self.versions);
        let ciphers = self.ciphers.as_ref().map(ToString::to_string);
        let dane = crate::dane::key_input(params.dane.as_deref(), &params.dane_names);
        KeyInputs {
            peer: params.peer,
            local: params.local,
            sni: Some(&params.server_name),
            lb_name: params.lb_name.as_deref().unwrap_or(NEVER_LB),
            options: &options,
            ciphers: ciphers.as_deref().unwrap_or(""),
            dane: dane.as_deref(),
            alpn: &self.alpn,
        }
        .key()
    }

    fn offer(
        &self,
        backend: BackendKind,
        params: &ClientParams,
        library_filters_expiry: bool,
    ) -> ClientOffer {
        offer_from(
            self,
            self.store.as_ref(),
            backend,
            params,
            library_filters_expiry,
        )
    }

    fn reported_verification(
        &self,
        offer: &ClientOffer,
        resumed: bool,
        seen: Verification,
    ) -> Verification {
        match (&offer.entry, resumed) {
            (Some(entry), true) if self.resumption.known_issues().carry_verification => {
                carried_verification(entry)
            }
            _ => seen,
        }
    }

    fn reported_ocsp(&self, offer: &ClientOffer, resumed: bool, seen: OcspStatus) -> OcspStatus {
        match (&offer.entry, resumed) {
            (Some(entry), true) if self.resumption.known_issues().carry_ocsp => entry.ocsp,
            _ => seen,
        }
    }

    fn ocsp_requirement_failed(&self, reported: OcspStatus) -> bool {
        self.ocsp == OcspMode::Require && reported != OcspStatus::Verified
    }

    fn ocsp_without_staple(&self) -> OcspStatus {
        match self.ocsp {
            OcspMode::Off => OcspStatus::NotRequested,
            OcspMode::Request | OcspMode::Require => OcspStatus::NoResponse,
        }
    }
}

/// [`ClientContract::offer`] looking the session up in `store` (the settings' own, or the
/// connection's in its place).
pub(crate) fn offer_from(
    settings: &ClientSettings,
    store: &dyn SessionStore,
    backend: BackendKind,
    params: &ClientParams,
    library_filters_expiry: bool,
) -> ClientOffer {
    let key = settings.cache_key(backend, params);
    let mut offer = ClientOffer {
        key,
        may_resume: false,
        entry: None,
        no_offer: Some(NoOffer::NotAllowed),
        bits: Resumption::SUPPORTED,
    };
    if !settings.resumption.client_may_resume(
        params.peer.ip(),
        Some(&params.server_name),
        params.peer.port(),
    ) {
        return offer;
    }
    offer.may_resume = true;
    offer.bits |= Resumption::CLIENT_REQUESTED;
    let entry = match store.get(&key) {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            offer.no_offer = Some(NoOffer::Missing);
            return offer;
        }
        Err(StoreError::Corrupt(_)) => {
            offer.no_offer = Some(NoOffer::CorruptEntry);
            return offer;
        }
        Err(_) => {
            offer.no_offer = Some(NoOffer::StoreFailed);
            return offer;
        }
    };
    let issues = settings.resumption.known_issues();
    let refusal = if entry.backend != backend {
        Some(NoOffer::OtherBackend)
    } else if (library_filters_expiry || issues.client_expiry_filter)
        && entry.is_expired(settings.clock.now())
    {
        Some(NoOffer::Expired)
    } else if settings.ocsp == OcspMode::Require
        && issues.avoid_resumption_when_ocsp_required
        && entry.ocsp != OcspStatus::Verified
    {
        Some(NoOffer::OcspRequired)
    } else if issues.carry_verification
        && entry.dane.is_none()
        && DanePlan::new(
            params.dane.as_deref(),
            &params.server_name,
            &params.dane_names,
        )
        .check()
        .is_some()
    {
        Some(NoOffer::DaneUnverified)
    } else {
        None
    };
    if refusal.is_none() {
        offer.bits |= Resumption::CLIENT_SUGGESTED;
        offer.entry = Some(entry);
    }
    offer.no_offer = refusal;
    offer
}

/// The lifetime an entry is stored with: the hint the server sent; when it sent none (zero,
/// or the library does not tell), the lifetime of the entry a resumed connection renews, or
/// [`DEFAULT_LIFETIME_HINT`] for a new one.
pub(crate) fn lifetime_for(
    offer: &ClientOffer,
    resumed: bool,
    lifetime_hint: Duration,
) -> Duration {
    match (&offer.entry, resumed) {
        (_, _) if !lifetime_hint.is_zero() => lifetime_hint,
        (Some(entry), true) if !entry.lifetime_hint.is_zero() => entry.lifetime_hint,
        _ => DEFAULT_LIFETIME_HINT,
    }
}

/// The cache entry to store for a session (or a new ticket) received on a connection.
///
/// On a resumed connection the verification and OCSP status of the original handshake are
/// kept, so a chain of resumptions never upgrades what the first handshake established.
///
/// A zero lifetime hint means "unspecified" (RFC 5077; OpenSSL sends it on every TLS 1.2
/// ticket issued on a resumed handshake): the entry then keeps the lifetime of the session it
/// renews, or [`DEFAULT_LIFETIME_HINT`] for a new one.
#[allow(clippy::too_many_arguments)]
pub(crate) fn entry_for(
    settings: &ClientSettings,
    backend: BackendKind,
    offer: &ClientOffer,
    resumed: bool,
    verification: Verification,
    dane: Option<DaneAuthority>,
    ocsp: OcspStatus,
    protocol: ProtocolVersion,
    lifetime_hint: Duration,
    session: Vec<u8>,
) -> CacheEntry {
    let lifetime_hint = lifetime_for(offer, resumed, lifetime_hint);
    let (verification, verify_override, ocsp, dane) = match (&offer.entry, resumed) {
        (Some(entry), true) => (
            entry.verification,
            entry.verify_override,
            entry.ocsp,
            entry.dane.clone(),
        ),
        _ => (
            verification,
            settings.verify == VerifyMode::Try && verification != Verification::Verified,
            ocsp,
            dane,
        ),
    };
    CacheEntry {
        stored_at: settings.clock.now(),
        lifetime_hint,
        verify_override,
        verification,
        ocsp,
        dane,
        backend,
        protocol: protocol.wire(),
        session,
    }
}

fn carried_verification(entry: &CacheEntry) -> Verification {
    if entry.verify_override && entry.verification == Verification::Verified {
        Verification::Failed
    } else {
        entry.verification
    }
}

/// What a server decided before its handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerStart {
    /// Whether this client gets tickets (and may resume).
    pub may_issue: bool,
    /// The server's bits so far: SUPPORTED, and SERVER_TICKET when tickets are given.
    pub bits: Resumption,
    /// The client's address.
    pub peer: std::net::SocketAddr,
    /// Whether the client is asked for a certificate, and whether it must verify.
    pub client_auth: ClientAuth,
    /// Whether a resumed session reports the client certificate's verification kept in the
    /// session ([`KnownIssues::carry_verification`](crate::KnownIssues::carry_verification)).
    pub carry_verification: bool,
}

/// The server half of the backend contract: the bits a connection starts with, and whether
/// the client is asked for a certificate. Implemented for
/// [`ServerSettings`]; applications do not call it.
pub trait ServerContract {
    /// The starting decision for a connection from `params.peer`.
    fn start(&self, params: &ServerParams) -> ServerStart;
}

impl ServerContract for ServerSettings {
    fn start(&self, params: &ServerParams) -> ServerStart {
        let may_issue = self.resumption.server_may_issue(
            params.peer.ip(),
            params.peer_name.as_deref(),
            params.local.port(),
        );
        let mut bits = Resumption::SUPPORTED;
        if may_issue {
            bits |= Resumption::SERVER_TICKET;
        }
        ServerStart {
            may_issue,
            bits,
            peer: params.peer,
            client_auth: self.client_auth_for(params.peer.ip(), params.peer_name.as_deref()),
            carry_verification: self.resumption.known_issues().carry_verification,
        }
    }
}

mod client;
mod generic;
mod server;
pub use client::{ClientHandshake, ReceivedSession, MAX_SESSIONS_STORED};
pub use generic::{Backend, TlsClient, TlsConnection, TlsHandshake, TlsServer};
pub use server::ServerHandshake;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::store::{MemoryStore, SessionStore};
    use crate::clock::{Clock, ManualClock, UnixTime};
    use std::sync::Arc;

    fn settings(
        policy: crate::ResumptionPolicy,
    ) -> (ClientSettings, ManualClock, Arc<MemoryStore>) {
        let clock = ManualClock::new(UnixTime::from_secs(1_700_000_000));
        let store = Arc::new(MemoryStore::new(10));
        let mut s = ClientSettings::new(vec![]);
        s.clock = Arc::new(clock.clone());
        s.store = store.clone();
        s.resumption = policy;
        (s, clock, store)
    }

    #[test]
    fn key_options_spelt_out_are_the_formatted_text() {
        let versions = [ProtocolVersion::Tls12, ProtocolVersion::Tls13];
        for backend in BackendKind::ALL {
            for min in versions {
                for max in versions {
                    let range = Versions { min, max };
                    assert_eq!(
                        key_options(backend, range),
                        format!("{backend};{}-{}", min.wire(), max.wire()),
                        "{backend} {min}-{max}"
                    );
                }
            }
        }
    }

    /// A connection's key, made from its settings and parameters without a builder, is the
    /// key the public builder gives for the same inputs (stored keys stay valid).
    #[test]
    fn a_connections_key_is_the_builders() {
        use crate::dane::TlsaRecord;
        let (mut s, _, _) = settings(crate::ResumptionPolicy::exim_compatible());
        s.alpn = vec![b"smtp".to_vec(), b"h2".to_vec()];
        s.ciphers = "TLS_AES_256_GCM_SHA384".parse().ok();
        let mut p = params();
        p.local = Some(std::net::IpAddr::from([192, 0, 2, 9]));
        p.dane = Some(vec![TlsaRecord::new(3, 1, 1, vec![7; 32])]);
        p.dane_names = vec!["MX.example".into()];
        for round in 0..2 {
            let expected = CacheKey::builder(p.peer)
                .options(key_options(BackendKind::Rustls, s.versions))
                .sni(p.server_name.clone())
                .alpn(&s.alpn)
                .ciphers("TLS_AES_256_GCM_SHA384")
                .lb_name(
                    p.lb_name
                        .clone()
                        .unwrap_or_else(|| crate::cache::NEVER_LB.into()),
                )
                .dane(crate::dane::key_input(p.dane.as_deref(), &p.dane_names).expect("dane"))
                .local(p.local.expect("local"))
                .build();
            assert_eq!(
                s.cache_key(BackendKind::Rustls, &p),
                expected,
                "round {round}"
            );
            p.lb_name = None;
        }
        let bare = params();
        let (plain, _, _) = settings(crate::ResumptionPolicy::exim_compatible());
        assert_eq!(
            plain.cache_key(BackendKind::Openssl, &bare),
            CacheKey::builder(bare.peer)
                .options("openssl;771-772")
                .sni("mx.example")
                .lb_name("mx1")
                .build()
        );
    }

    fn params() -> ClientParams {
        ClientParams {
            peer: std::net::SocketAddr::from(([127, 0, 0, 1], 25)),
            local: None,
            server_name: "mx.example".into(),
            lb_name: Some("mx1".into()),
            dane: None,
            dane_names: Vec::new(),
        }
    }

    fn entry(s: &ClientSettings, backend: BackendKind) -> CacheEntry {
        let offer = s.offer(backend, &params(), true);
        entry_for(
            s,
            backend,
            &offer,
            false,
            Verification::Verified,
            None,
            OcspStatus::NotRequested,
            ProtocolVersion::Tls13,
            Duration::from_secs(7200),
            vec![1],
        )
    }

    #[test]
    fn offers_a_stored_session_with_requested_and_suggested_bits() {
        let (s, _, store) = settings(crate::ResumptionPolicy::exim_compatible());
        let offer = s.offer(BackendKind::Openssl, &params(), true);
        assert_eq!(offer.bits.bits(), 0x03);
        assert_eq!(offer.no_offer, Some(NoOffer::Missing));
        store
            .put(&offer.key, entry(&s, BackendKind::Openssl))
            .expect("put");
        let offer = s.offer(BackendKind::Openssl, &params(), true);
        assert_eq!(offer.bits.bits(), 0x07);
        assert!(offer.entry.is_some());
        // Another backend's session is not offered.
        let other = s.offer(BackendKind::Rustls, &params(), true);
        assert!(other.entry.is_none());
    }

    #[test]
    fn a_session_stored_under_one_cipher_list_is_not_offered_under_another() {
        let (mut s, _, store) = settings(crate::ResumptionPolicy::exim_compatible());
        let list = |text: &str| text.parse::<crate::settings::ciphers::CipherList>().ok();
        s.ciphers = list("TLS_AES_256_GCM_SHA384");
        let stored = s.offer(BackendKind::Openssl, &params(), true);
        store
            .put(&stored.key, entry(&s, BackendKind::Openssl))
            .expect("put");
        assert!(s
            .offer(BackendKind::Openssl, &params(), true)
            .entry
            .is_some());
        let mut other = s.clone();
        other.ciphers = list("TLS_AES_128_GCM_SHA256");
        let offer = other.offer(BackendKind::Openssl, &params(), true);
        assert_ne!(offer.key, stored.key);
        assert_eq!(offer.no_offer, Some(NoOffer::Missing));
        other.ciphers = list("TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256");
        assert!(other
            .offer(BackendKind::Openssl, &params(), true)
            .entry
            .is_none());
        other.ciphers = None;
        assert!(other
            .offer(BackendKind::Openssl, &params(), true)
            .entry
            .is_none());
        // The same list however written: the same key.
        other.ciphers = list("tls_aes_256_gcm_sha384,");
        assert_eq!(other.cache_key(BackendKind::Openssl, &params()), stored.key);
    }

    #[test]
    fn expiry_filter_depends_on_library_or_hardened_policy() {
        let (s, clock, store) = settings(crate::ResumptionPolicy::exim_compatible());
        let key = s.cache_key(BackendKind::Gnutls, &params());
        store
            .put(&key, entry(&s, BackendKind::Gnutls))
            .expect("put");
        clock.advance(Duration::from_secs(7201));
        // GnuTLS under Exim: offered although expired.
        assert!(s
            .offer(BackendKind::Gnutls, &params(), false)
            .entry
            .is_some());
        let (h, clock, store) = settings(crate::ResumptionPolicy::hardened());
        store
            .put(&key, entry(&h, BackendKind::Gnutls))
            .expect("put");
        clock.advance(Duration::from_secs(7201));
        let offer = h.offer(BackendKind::Gnutls, &params(), false);
        assert_eq!(offer.no_offer, Some(NoOffer::Expired));
        assert_eq!(store.len(), 1, "a reader never removes an entry");
    }

    #[test]
    fn zero_lifetime_hint_means_unspecified() {
        let (s, _, store) = settings(crate::ResumptionPolicy::exim_compatible());
        let fresh = s.offer(BackendKind::Openssl, &params(), true);
        let mk = |offer: &ClientOffer, resumed: bool, hint: u64| {
            entry_for(
                &s,
                BackendKind::Openssl,
                offer,
                resumed,
                Verification::Verified,
                None,
                OcspStatus::NotRequested,
                ProtocolVersion::Tls12,
                Duration::from_secs(hint),
                vec![],
            )
        };
        assert_eq!(mk(&fresh, false, 0).lifetime_hint, DEFAULT_LIFETIME_HINT);
        assert_eq!(
            mk(&fresh, false, 300).lifetime_hint,
            Duration::from_secs(300)
        );
        store.put(&fresh.key, mk(&fresh, false, 600)).expect("put");
        let offer = s.offer(BackendKind::Openssl, &params(), true);
        assert_eq!(mk(&offer, true, 0).lifetime_hint, Duration::from_secs(600));
    }

    #[test]
    fn not_allowed_hosts_get_supported_only() {
        let (s, _, _) = settings(
            crate::ResumptionPolicy::exim_compatible().with_client_hosts(crate::HostList::none()),
        );
        let offer = s.offer(BackendKind::Openssl, &params(), true);
        assert!(!offer.may_resume);
        assert_eq!(offer.bits, Resumption::SUPPORTED);
    }

    #[test]
    fn hardened_does_not_offer_when_ocsp_required_and_not_verified() {
        let (mut s, _, store) = settings(crate::ResumptionPolicy::hardened());
        s.ocsp = OcspMode::Require;
        let key = s.cache_key(BackendKind::Openssl, &params());
        store
            .put(&key, entry(&s, BackendKind::Openssl))
            .expect("put");
        let offer = s.offer(BackendKind::Openssl, &params(), true);
        assert_eq!(offer.no_offer, Some(NoOffer::OcspRequired));
    }

    #[test]
    fn dane_records_key_the_session_and_hardened_offers_only_dane_verified_ones() {
        use crate::dane::{DaneAuthority, TlsaRecord};
        let record = TlsaRecord::new(3, 1, 1, vec![7; 32]);
        let with = |records: Vec<TlsaRecord>| {
            let mut p = params();
            p.dane = Some(records);
            p
        };
        let (s, _, store) = settings(crate::ResumptionPolicy::hardened());
        let dane = with(vec![record.clone()]);
        let key = s.cache_key(BackendKind::Openssl, &dane);
        assert_ne!(key, s.cache_key(BackendKind::Openssl, &params()));
        assert_ne!(
            key,
            s.cache_key(
                BackendKind::Openssl,
                &with(vec![TlsaRecord::new(3, 1, 1, vec![8; 32])])
            )
        );
        // A session DANE did not verify is not offered under hardened; one it verified is.
        store
            .put(&key, entry(&s, BackendKind::Openssl))
            .expect("put");
        let offer = s.offer(BackendKind::Openssl, &dane, true);
        assert_eq!(offer.no_offer, Some(NoOffer::DaneUnverified));
        let mut verified = entry(&s, BackendKind::Openssl);
        verified.dane = Some(DaneAuthority {
            record,
            depth: Some(0),
        });
        store.put(&key, verified).expect("put");
        assert!(s.offer(BackendKind::Openssl, &dane, true).entry.is_some());
        // Exim's policy offers what it finds (the library reports on the resumed handshake).
        let (e, _, store) = settings(crate::ResumptionPolicy::exim_compatible());
        store
            .put(&key, entry(&e, BackendKind::Openssl))
            .expect("put");
        assert!(e.offer(BackendKind::Openssl, &dane, true).entry.is_some());
    }

    #[test]
    fn carried_verification_never_upgrades_an_override() {
        let (mut s, _, store) = settings(crate::ResumptionPolicy::hardened());
        s.verify = VerifyMode::Try;
        let first = s.offer(BackendKind::Openssl, &params(), true);
        let e = entry_for(
            &s,
            BackendKind::Openssl,
            &first,
            false,
            Verification::Failed,
            None,
            OcspStatus::NotRequested,
            ProtocolVersion::Tls12,
            Duration::from_secs(7200),
            vec![],
        );
        assert!(e.verify_override);
        store.put(&first.key, e).expect("put");
        let offer = s.offer(BackendKind::Openssl, &params(), true);
        assert_eq!(
            s.reported_verification(&offer, true, Verification::NotChecked),
            Verification::Failed
        );
        let exim = ClientSettings {
            resumption: crate::ResumptionPolicy::exim_compatible(),
            ..s.clone()
        };
        assert_eq!(
            exim.reported_verification(&offer, true, Verification::NotChecked),
            Verification::NotChecked
        );
    }

    /// A store given for one connection takes its lookups and its sessions, and the settings
    /// stay the client's own (no copy per connection, which would live as long as it).
    #[test]
    fn a_connection_store_is_used_beside_the_shared_settings() {
        let (s, _, store) = settings(crate::ResumptionPolicy::exim_compatible());
        let s = Arc::new(s);
        let own = Arc::new(MemoryStore::new(10));
        let start = || {
            ClientHandshake::start(
                &s,
                Some(own.clone() as Arc<dyn SessionStore>),
                BackendKind::Openssl,
                &params(),
                true,
            )
        };
        let mut first = start();
        first.saw_verification(Verification::Verified);
        first.finish(false).expect("finish");
        let received = |resumed, data| ReceivedSession {
            resumed,
            protocol: ProtocolVersion::Tls13,
            lifetime_hint: None,
            data,
            stored_as: None,
        };
        assert!(first.store_session(received(false, b"first")).is_some());
        assert_eq!((own.len(), store.len()), (1, 0));
        let mut hs = start();
        assert!(Arc::ptr_eq(hs.settings(), &s));
        assert!(
            hs.offer().entry.is_some(),
            "looked up in the connection's store"
        );
        assert_eq!(hs.session_to_offer(), Some(&b"first"[..]));
        hs.finish(true).expect("finish");
        assert!(
            hs.stored_session().is_some_and(<[u8]>::is_empty),
            "the offered session's bytes are released when the handshake is over"
        );
        assert!(
            hs.needed_after_handshake(ProtocolVersion::Tls13),
            "a resuming connection stores later tickets"
        );
        assert!(
            !hs.needed_after_handshake(ProtocolVersion::Tls12),
            "but none come after a TLS 1.2 handshake"
        );
        assert!(hs.store_session(received(true, b"next")).is_some());
        assert_eq!(own.len(), 1);
        assert_eq!(store.len(), 0, "nothing goes to the settings' store");
        let kept = own
            .get(&hs.offer().key)
            .expect("get")
            .expect("the ticket's entry");
        assert_eq!(
            kept.verification,
            Verification::Verified,
            "a resumed connection's ticket carries the verdict of the session it resumed"
        );
    }

    /// A session a backend hands over as already stored under the offered entry's tags (the
    /// rustls client's handle, under which a resumed connection's session goes again) is
    /// stored in place: the entry is not written again while it is younger than an eighth of
    /// its lifetime, and is written once it is older. Another lifetime, tags other than the
    /// offered entry's, no tags at all (the OpenSSL and GnuTLS clients' new bytes), a full
    /// handshake: written.
    #[test]
    fn a_session_stored_under_the_offered_entry_is_written_again_only_once_it_ages() {
        let (s, clock, store) = settings(crate::ResumptionPolicy::exim_compatible());
        let s = Arc::new(s);
        let start = || ClientHandshake::start(&s, None, BackendKind::Rustls, &params(), true);
        fn received(
            resumed: bool,
            lifetime_hint: Option<Duration>,
            stored_as: Option<crate::keys::SealedTags>,
        ) -> ReceivedSession<'static> {
            ReceivedSession {
                resumed,
                protocol: ProtocolVersion::Tls13,
                lifetime_hint,
                data: b"handle 1",
                stored_as,
            }
        }
        let key = start().offer().key;
        let written_at = || store.get(&key).expect("get").expect("entry").stored_at;
        // A resumed connection that hands over `received` (its session offered and taken).
        let resumed = |received: ReceivedSession<'static>| {
            let mut hs = start();
            assert_eq!(hs.session_to_offer(), Some(&b"handle 1"[..]));
            hs.finish(true).expect("finish");
            let tags = hs.store_session(received);
            assert!(hs.bits().contains(Resumption::SERVER_TICKET));
            tags.expect("stored")
        };
        let mut full = start();
        full.saw_verification(Verification::Verified);
        full.finish(false).expect("finish");
        let tags = full
            .store_session(received(false, None, None))
            .expect("stored");
        let t0 = written_at();

        clock.advance(Duration::from_secs(60));
        assert_eq!(
            resumed(received(true, None, Some(tags))),
            tags,
            "the entry's own tags"
        );
        assert_eq!(written_at(), t0, "not written again a minute later");
        clock.advance(Duration::from_secs(13 * 60));
        assert_eq!(resumed(received(true, None, Some(tags))), tags);
        assert_eq!(written_at(), t0, "nor 14 minutes later");

        // The lifetime the server gave changed: written.
        let hour = Some(Duration::from_secs(3600));
        let tags_1 = resumed(received(true, hour, Some(tags)));
        assert_ne!(tags_1, tags);
        assert_eq!(written_at(), clock.now(), "another lifetime is written");
        let t1 = clock.now();
        clock.advance(Duration::from_secs(60));
        // No lifetime told: a renewal keeps the entry's (the hour), so nothing changed.
        assert_eq!(resumed(received(true, None, Some(tags_1))), tags_1);
        assert_eq!(written_at(), t1);

        // Tags that are not the offered entry's (an older write's): written.
        clock.advance(Duration::from_secs(60));
        let two_hours = Some(DEFAULT_LIFETIME_HINT);
        let tags_2 = resumed(received(true, two_hours, Some(tags)));
        assert_eq!(
            written_at(),
            clock.now(),
            "another entry's tags are written over"
        );
        // No tags: written (what the OpenSSL and GnuTLS clients hand over).
        clock.advance(Duration::from_secs(60));
        let tags_3 = resumed(received(true, None, None));
        assert_ne!(tags_3, tags_2);
        assert_eq!(
            written_at(),
            clock.now(),
            "a session without tags is written"
        );
        let t3 = clock.now();

        // An eighth of the entry's 2 hours (15 minutes) after the write: written again.
        clock.advance(Duration::from_secs(14 * 60));
        assert_eq!(resumed(received(true, None, Some(tags_3))), tags_3);
        assert_eq!(written_at(), t3);
        clock.advance(Duration::from_secs(60));
        let tags_4 = resumed(received(true, None, Some(tags_3)));
        assert_ne!(tags_4, tags_3);
        assert_eq!(
            written_at(),
            clock.now(),
            "written once the entry is 15 minutes old"
        );
        let t4 = clock.now();

        // Handed over inside the resumed handshake, before it is over (a TLS 1.2 ticket
        // comes in the server's resuming flight): the same decision.
        clock.advance(Duration::from_secs(60));
        let mut hs = start();
        assert_eq!(hs.session_to_offer(), Some(&b"handle 1"[..]));
        assert_eq!(
            hs.store_session(received(true, None, Some(tags_4))),
            Some(tags_4),
            "stored in place inside the handshake"
        );
        hs.finish(true).expect("finish");
        assert!(hs.bits().contains(Resumption::SERVER_TICKET));
        assert_eq!(written_at(), t4, "not written inside the handshake either");

        // A full handshake handing over the entry's own tags: written.
        clock.advance(Duration::from_secs(60));
        let mut hs = start();
        hs.saw_verification(Verification::Verified);
        hs.finish(false).expect("finish");
        assert!(hs
            .store_session(received(false, None, Some(tags_4)))
            .is_some());
        assert_eq!(
            written_at(),
            clock.now(),
            "a full handshake's session is written"
        );
    }

    /// A connection stores at most `MAX_SESSIONS_STORED` sessions: later ones are neither
    /// sealed nor written, and the newest one stored stays the one offered.
    #[test]
    fn a_connection_stores_at_most_its_bound_of_sessions() {
        let (s, _, store) = settings(crate::ResumptionPolicy::exim_compatible());
        let s = Arc::new(s);
        let start = || ClientHandshake::start(&s, None, BackendKind::Rustls, &params(), true);
        let mut hs = start();
        hs.saw_verification(Verification::Verified);
        hs.finish(false).expect("finish");
        let data: Vec<Vec<u8>> = (0..20)
            .map(|i| format!("ticket {i}").into_bytes())
            .collect();
        let stored: Vec<bool> = data
            .iter()
            .map(|d| {
                hs.store_session(ReceivedSession {
                    resumed: false,
                    protocol: ProtocolVersion::Tls13,
                    lifetime_hint: None,
                    data: d,
                    stored_as: None,
                })
                .is_some()
            })
            .collect();
        let bound = usize::from(MAX_SESSIONS_STORED);
        assert_eq!(bound, 8);
        assert!(stored[..bound].iter().all(|s| *s));
        assert!(stored[bound..].iter().all(|s| !*s));
        assert_eq!(store.len(), 1);
        assert!(hs.bits().contains(Resumption::SERVER_TICKET));
        let mut next = start();
        assert_eq!(next.session_to_offer(), Some(&b"ticket 7"[..]));
    }

    /// A connection whose policy does not resume needs nothing of its lifecycle after the
    /// handshake, unless a later refusal must become a certificate failure; and the record a
    /// connection keeps for its whole life stays small.
    #[test]
    fn what_a_connection_keeps_after_its_handshake() {
        let (mut s, _, _) = settings(crate::ResumptionPolicy::exim_compatible());
        s.resumption = s
            .resumption
            .clone()
            .with_client_hosts(crate::HostList::none());
        let s = Arc::new(s);
        let mut hs = ClientHandshake::start(&s, None, BackendKind::Rustls, &params(), true);
        hs.finish(false).expect("finish");
        for protocol in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
            assert!(!hs.needed_after_handshake(protocol));
        }
        hs.asked_without_certificate();
        for protocol in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
            assert!(hs.needed_after_handshake(protocol), "{protocol:?}");
        }
        let size = std::mem::size_of::<ClientHandshake>();
        assert!(size <= 256, "ClientHandshake is {size} bytes");
    }
}
