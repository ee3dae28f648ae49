//! Full and resumed handshakes over loopback on a virtual clock: ticket lifecycle, bits,
//! verification and OCSP on resumption, broken sessions and tickets.

mod common;

use std::time::Duration;

use common::*;
use tlsresume_core::contract::ClientContract;
use tlsresume_core::*;

const T12: ProtocolVersion = ProtocolVersion::Tls12;
const T13: ProtocolVersion = ProtocolVersion::Tls13;

fn bits(info: &SessionInfo) -> u8 {
    info.resumption.bits()
}

/// Bits of a resumed handshake, the same in TLS 1.2 and 1.3. Server: 0x1D (SUPPORTED,
/// SERVER_TICKET, CLIENT_SUGGESTED, USED): OpenSSL 3.0 issues no new ticket on a resumption
/// unless the key callback asks for renewal (it sets `ticket_expected` only for
/// NO_DECRYPT/SUCCESS_RENEW/EMPTY), in TLS 1.3 too. Client: 0x17 (SUPPORTED, REQUESTED,
/// SUGGESTED, USED).
fn resumed_bits(_v: ProtocolVersion) -> (u8, u8) {
    (0x1D, 0x17)
}

fn full_then_resumed(v: ProtocolVersion) {
    let pair = Setup::new(v).build();
    let first = pair.connect();
    assert_eq!(first.server.protocol, v);
    assert!(!first.server.resumed && !first.client.resumed);
    assert_eq!(bits(&first.server), 0x0B, "server, full");
    assert_eq!(bits(&first.client), 0x0B, "client, full");
    assert_eq!(first.client.verification, Verification::Verified);
    let entry = pair.entry().expect("session stored");
    assert_eq!(entry.protocol, v.wire());
    assert_eq!(entry.lifetime_hint, Duration::from_secs(7200));
    assert_eq!(
        first.client.ticket_lifetime,
        Some(Duration::from_secs(7200))
    );
    if v == T13 {
        // TLS 1.3 tickets arrive after the handshake: nothing before the first read.
        assert_eq!(bits(&first.client_before_read), 0x03);
    } else {
        assert_eq!(bits(&first.client_before_read), 0x0B);
    }

    pair.advance_mins(10);
    let second = pair.connect();
    assert!(second.server.resumed && second.client.resumed);
    let (s, c) = resumed_bits(v);
    assert_eq!(bits(&second.server), s, "server, resumed");
    assert_eq!(bits(&second.client), c, "client, resumed");
    assert!(second.client.exim_x().ends_with('*'));
    assert_eq!(second.server.cipher, first.server.cipher);
}

fn renewal_at_61_minutes(v: ProtocolVersion, client_policy: ResumptionPolicy) {
    let mut setup = Setup::new(v);
    let stores_renewal = v == T13 || client_policy.known_issues().store_renewed_tls12_ticket;
    setup.client_policy = client_policy;
    let pair = setup.build();
    pair.connect();
    let original = pair.entry().expect("stored");
    pair.advance_mins(61);
    let renewed = pair.connect();
    assert!(renewed.server.resumed && renewed.client.resumed);
    // The key's renew time has passed: a new ticket is issued on the resumed handshake.
    assert_eq!(bits(&renewed.server), 0x1F);
    // The lifetime reported is the hint on the wire: OpenSSL sends 0 ("unspecified") on a
    // TLS 1.2 ticket issued on a resumed handshake, the session timeout otherwise.
    let hint = if v == T12 { 0 } else { 7200 };
    assert_eq!(
        renewed.server.ticket_lifetime,
        Some(Duration::from_secs(hint)),
        "{v}"
    );
    if stores_renewal {
        assert_eq!(
            renewed.client.ticket_lifetime,
            Some(Duration::from_secs(hint)),
            "{v}"
        );
    }
    let new = pair.entry().expect("stored");
    if stores_renewal {
        assert_eq!(bits(&renewed.client), 0x1F);
        assert!(
            new.stored_at > original.stored_at,
            "the new session was stored"
        );
        assert_ne!(new.session, original.session);
    } else {
        // TLS 1.2 under exim: OpenSSL calls no new-session callback after a resumed handshake,
        // so the client never sees the renewed ticket and keeps the old one (Exim's 0x17).
        assert_eq!(bits(&renewed.client), 0x17);
        assert_eq!(new.session, original.session, "the old session is kept");
    }
    // And it resumes.
    pair.advance_mins(1);
    let again = pair.connect();
    assert!(again.client.resumed);
    // The server renews again only when the client still presents the old ticket.
    assert_eq!(bits(&again.server) == 0x1F, !stores_renewal, "{v}");
}

#[test]
fn tls12_renewal_at_61_minutes() {
    renewal_at_61_minutes(T12, ResumptionPolicy::exim_compatible());
    renewal_at_61_minutes(T12, ResumptionPolicy::hardened());
}

#[test]
fn tls13_renewal_at_61_minutes() {
    renewal_at_61_minutes(T13, ResumptionPolicy::exim_compatible());
}

/// The original ticket at 2 h 1 min: the client's own expiry filter drops it; presented anyway
/// (its entry re-stored as new), the server refuses it and a full handshake gives a new ticket.
fn rejection_after_lifetime(v: ProtocolVersion) {
    let pair = Setup::new(v).build();
    pair.connect();
    let original = pair.entry().expect("stored");
    pair.advance_mins(121);
    // The OpenSSL flavour filters expired entries on the client.
    let offer = pair
        .client
        .settings()
        .offer(tlsresume_openssl::BACKEND, &pair.params(), true);
    assert_eq!(offer.no_offer, Some(NoOffer::Expired));
    pair.restore_now(&original);
    let late = pair.connect();
    assert!(!late.server.resumed && !late.client.resumed);
    assert_eq!(bits(&late.server), 0x0F, "offered, refused, new ticket");
    assert_eq!(bits(&late.client), 0x0F);
}

/// A pair whose server rotates its keys every `rotation_secs` keeping `previous` keys (2 h
/// tickets), after one full handshake; with the session that handshake stored.
fn rolling_after_one_session(
    v: ProtocolVersion,
    rotation_secs: u64,
    previous: u32,
) -> (Pair, CacheEntry) {
    let mut setup = Setup::new(v);
    setup.ticket_policy = TicketPolicy::rolling(
        Duration::from_secs(rotation_secs),
        previous,
        Duration::from_secs(7200),
        None,
    )
    .expect("policy");
    let pair = setup.build();
    pair.connect();
    let original = pair.entry().expect("stored");
    (pair, original)
}

/// Keys that live long enough (1 h rotation, 3 previous keys) isolate the ticket age check:
/// the key still decrypts at 2 h 1 min, the issue time carried in the ticket is too old.
fn ticket_age_on_virtual_clock(v: ProtocolVersion) {
    let (pair, original) = rolling_after_one_session(v, 3600, 3);
    pair.advance_mins(119);
    pair.restore_now(&original);
    assert!(
        pair.connect().client.resumed,
        "1 h 59 min: still within the lifetime"
    );
    pair.advance_mins(2);
    pair.restore_now(&original);
    let late = pair.connect();
    assert!(!late.client.resumed, "2 h 1 min: too old");
    assert_eq!(bits(&late.server), 0x0F);
}

/// 20 min rotation, one previous key: the ticket's key decrypts after one rotation, not after
/// two.
fn previous_key_overlap(v: ProtocolVersion) {
    let (pair, original) = rolling_after_one_session(v, 1200, 1);
    let k1 = pair.server.key_ring().key_names(pair.clock.now())[0];
    pair.advance_mins(21);
    let one = pair.connect();
    assert!(
        one.server.resumed,
        "previous key decrypts after one rotation"
    );
    let names = pair.server.key_ring().key_names(pair.clock.now());
    assert_eq!(names.len(), 2);
    assert_eq!(names[1], k1);
    pair.advance_mins(20);
    pair.restore_now(&original);
    let two = pair.connect();
    assert!(!two.server.resumed, "not after two rotations");
    assert!(!pair
        .server
        .key_ring()
        .key_names(pair.clock.now())
        .contains(&k1));
    assert_eq!(bits(&two.server), 0x0F);
}

/// A TLS 1.2 ticket renewed on a resumed handshake keeps its session's issue time (OpenSSL
/// keeps the session's time), so it expires with the original; a TLS 1.3 ticket is re-issued
/// with a fresh time.
#[test]
fn renewed_ticket_lifetime_differs_by_version() {
    for v in [T12, T13] {
        let pair = Setup::new(v).build();
        pair.connect();
        pair.advance_mins(61);
        assert_eq!(bits(&pair.connect().server), 0x1F);
        pair.advance_mins(60);
        let late = pair.connect();
        match v {
            ProtocolVersion::Tls12 => assert!(!late.client.resumed, "{v}: original issue time"),
            _ => assert!(late.client.resumed, "{v}: fresh issue time"),
        }
    }
}

fn corrupt_stored_session(v: ProtocolVersion) {
    let pair = Setup::new(v).build();
    pair.connect();
    let entry = pair.entry().expect("stored");
    // Not DER at all.
    pair.put({
        let mut updated = entry.clone();
        updated.session = b"garbage".to_vec();
        updated
    });
    let out = pair.connect();
    assert!(!out.client.resumed);
    assert_eq!(
        bits(&out.client),
        0x0B,
        "the refused session is not counted as offered"
    );
    assert_eq!(bits(&out.server), 0x0B);
    // Truncated DER, sealed under the store's key: OpenSSL refuses to load it.
    let der = pair.open(&entry);
    pair.put({
        let mut updated = entry.clone();
        pair.reseal(&mut updated, &der[..der.len() / 2]);
        updated
    });
    let out = pair.connect();
    assert!(!out.client.resumed);
    assert_eq!(out.client.no_offer, Some(NoOffer::LibraryRefused));
    assert!(pair.entry().is_some(), "replaced by the new session");
}

/// A connection dropped without a TLS shutdown does not stop the next ones from resuming.
/// libssl marks the session of a connection freed that way not resumable; the client keeps
/// stored sessions decoded, and a connection sharing the kept one would spoil it for all later
/// connections (a full handshake each, until the store's bytes changed).
fn dropped_connections_leave_resumption_working(v: ProtocolVersion) {
    let pair = Setup::new(v).build();
    let first = pair.connect_and_drop();
    assert!(!first.resumed);
    for i in 1..=4 {
        let next = pair.connect_and_drop();
        assert!(next.resumed, "connection {i} after one dropped resumed");
    }
    let last = pair.connect();
    assert!(last.server.resumed && last.client.resumed);
}

fn tampered_ticket(v: ProtocolVersion) {
    let pair = Setup::new(v).build();
    pair.connect();
    let entry = pair.entry().expect("stored");
    let der = pair.open(&entry);
    let (at, len) = common::ticket_span(&der).expect("ticket in DER");
    assert!(len > 32);
    // A byte of the encrypted state: the HMAC fails.
    let mut body = der.clone();
    body[at + len / 2] ^= 0x55;
    // A byte of the key name: an unknown key.
    let mut name = der.clone();
    name[at] ^= 0x55;
    for (what, session) in [("body", body), ("key name", name)] {
        pair.put({
            let mut updated = entry.clone();
            pair.reseal(&mut updated, &session);
            updated
        });
        let out = pair.connect();
        assert!(!out.server.resumed && !out.client.resumed, "{what}");
        // Offered (and a decryption attempted), refused, a new ticket issued.
        assert_eq!(bits(&out.server), 0x0F, "{what}");
        assert_eq!(bits(&out.client), 0x0F, "{what}");
    }
}

fn verification_on_resumption(v: ProtocolVersion) {
    // Exim-compatible: the verify callback is not called on resumption.
    let pair = Setup::new(v).build();
    assert_eq!(pair.connect().client.verification, Verification::Verified);
    let resumed = pair.connect();
    assert!(resumed.client.resumed);
    assert_eq!(resumed.client.verification, Verification::NotChecked);
    assert_eq!(resumed.client.verification.exim_cv(), "no");

    // Hardened: the stored result is carried.
    let mut setup = Setup::new(v);
    setup.client_policy = ResumptionPolicy::hardened();
    let pair = setup.build();
    pair.connect();
    let resumed = pair.connect();
    assert!(resumed.client.resumed);
    assert_eq!(resumed.client.verification, Verification::Verified);
}

fn ocsp_on_resumption(v: ProtocolVersion) {
    let mut setup = Setup::new(v);
    setup.ocsp_response = Some(ocsp_response("ecdsa"));
    setup.ocsp = OcspMode::Request;
    let pair = setup.build();
    let full = pair.connect();
    assert_eq!(full.client.ocsp, OcspStatus::Verified);
    assert_eq!(full.server.ocsp, OcspStatus::NotVerified, "stapled");
    let resumed = pair.connect();
    assert!(resumed.client.resumed);
    assert_eq!(
        resumed.client.ocsp,
        OcspStatus::NoResponse,
        "no staple on resumption"
    );
    // OpenSSL does not call the server's status callback on a resumed handshake, so the
    // server sees no request at all (Exim's `tls_in_ocsp` stays "not requested").
    assert_eq!(resumed.server.ocsp, OcspStatus::NotRequested);
    // The entry keeps the original handshake's status.
    assert_eq!(pair.entry().expect("stored").ocsp, OcspStatus::Verified);
}

#[test]
fn required_ocsp_fails_resumption_unless_hardened() {
    for v in [T12, T13] {
        let mut setup = Setup::new(v);
        setup.ocsp_response = Some(ocsp_response("ecdsa"));
        setup.ocsp = OcspMode::Require;
        let pair = setup.build();
        assert_eq!(pair.connect().client.ocsp, OcspStatus::Verified);
        let (_, client) = pair.try_connect();
        let err = client
            .err()
            .expect("resumed without staple: OCSP requirement fails");
        assert!(err.to_string().contains("OCSP"), "{err}");

        let mut setup = Setup::new(v);
        setup.ocsp_response = Some(ocsp_response("ecdsa"));
        setup.ocsp = OcspMode::Require;
        setup.client_policy = ResumptionPolicy::hardened();
        let pair = setup.build();
        pair.connect();
        let resumed = pair.connect();
        assert!(resumed.client.resumed);
        assert_eq!(resumed.client.ocsp, OcspStatus::Verified, "carried");
    }
}

#[test]
fn required_ocsp_without_staple_fails_the_full_handshake() {
    let mut setup = Setup::new(T13);
    setup.ocsp = OcspMode::Require;
    let pair = setup.build();
    let (_, client) = pair.try_connect();
    assert!(client.is_err());
    assert!(pair.entry().is_none());
}

#[test]
fn wrong_ocsp_response_is_failed() {
    let mut setup = Setup::new(T12);
    setup.ocsp_response = Some(ocsp_response("rsa"));
    setup.ocsp = OcspMode::Request;
    let pair = setup.build();
    assert_eq!(pair.connect().client.ocsp, OcspStatus::Failed);
}

#[test]
fn try_verify_reports_failure_and_goes_on() {
    for v in [T12, T13] {
        let mut setup = Setup::new(v);
        setup.identity = Identity::from_pem_files(&pki("untrusted.pem"), &pki("untrusted.key"))
            .expect("identity");
        setup.verify = VerifyMode::Try;
        let pair = setup.build();
        let out = pair.connect();
        assert_eq!(out.client.verification, Verification::Failed);
        let entry = pair.entry().expect("stored");
        assert!(entry.verify_override);
        // Resumed under hardened: still not verified.
        let mut setup = Setup::new(v);
        setup.identity = Identity::from_pem_files(&pki("untrusted.pem"), &pki("untrusted.key"))
            .expect("identity");
        setup.verify = VerifyMode::Require;
        let pair = setup.build();
        let (_, client) = pair.try_connect();
        let err = client.err().expect("untrusted certificate refused");
        assert!(err.to_string().contains("verif"), "{err}");
    }
}

#[test]
fn name_mismatch_is_a_verification_failure() {
    let mut setup = Setup::new(T13);
    setup.verify = VerifyMode::Try;
    let mut pair = setup.build();
    pair.server_name = "other.example".into();
    assert_eq!(pair.connect().client.verification, Verification::Failed);
    pair.server_name = "localhost".into();
    assert_eq!(pair.connect().client.verification, Verification::Verified);
    pair.server_name = "127.0.0.1".into();
    assert_eq!(pair.connect().client.verification, Verification::Verified);
}

/// A pair set up by `change`, after one connection.
fn one_connection(v: ProtocolVersion, change: impl FnOnce(&mut Setup)) -> (Pair, Outcome) {
    let mut setup = Setup::new(v);
    change(&mut setup);
    let pair = setup.build();
    let out = pair.connect();
    (pair, out)
}

/// A policy that refuses resumption, on either side: nothing is stored. The bits expected are
/// written here, per side that refuses: client bits, server bits in TLS 1.2 and in TLS 1.3.
/// The server refusing: the client asked, nothing came. The client refusing: TLS 1.2 sends no
/// ticket extension (SSL_OP_NO_TICKET); in TLS 1.3 a client cannot refuse tickets, and the
/// server sends one anyway (it is not stored).
#[test]
fn policies_that_refuse_resumption_store_nothing() {
    for (server_refuses, client, server12, server13) in
        [(true, 0x03, 0x01, 0x01), (false, 0x01, 0x09, 0x0B)]
    {
        for v in [T12, T13] {
            let (pair, out) = one_connection(v, |setup| {
                let policy = ResumptionPolicy::exim_compatible();
                if server_refuses {
                    setup.server_policy = policy.with_server_hosts(HostList::none());
                } else {
                    setup.client_policy = policy.with_client_hosts(HostList::none());
                }
            });
            let what = if server_refuses {
                "server refuses"
            } else {
                "client refuses"
            };
            assert_eq!(bits(&out.client), client, "{what}, {v}");
            let server = if v == T12 { server12 } else { server13 };
            assert_eq!(bits(&out.server), server, "{what}, {v}");
            assert!(pair.entry().is_none(), "{what}, {v}");
        }
    }
}

#[test]
fn session_info_names_and_peer() {
    let mut setup = Setup::new(T12);
    setup.identity = identity("rsa");
    setup.alpn = vec![b"smtp".to_vec()];
    let id = identity("rsa");
    let pair = setup.build();
    let out = pair.connect();
    for info in [&out.server, &out.client] {
        assert_eq!(info.cipher.native, "ECDHE-RSA-AES256-GCM-SHA384");
        assert_eq!(info.cipher.iana, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
        assert_eq!(info.cipher.exim, "TLS1.2:ECDHE-RSA-AES256-GCM-SHA384:256");
        assert_eq!(info.cipher.bits, 256);
        assert_eq!(info.alpn.as_deref(), Some(&b"smtp"[..]));
    }
    assert_eq!(out.server.sni.as_deref(), Some("mx.tlsresume.test"));
    assert_eq!(out.client.peer_certificates.first(), id.chain().first());
    assert_eq!(out.server.ticket_lifetime, Some(Duration::from_secs(7200)));

    let mut setup = Setup::new(T13);
    setup.identity = identity("rsa");
    let out = setup.build().connect();
    assert_eq!(out.client.cipher.native, "TLS_AES_256_GCM_SHA384");
    assert_eq!(out.client.cipher.exim, "TLS1.3:TLS_AES_256_GCM_SHA384:256");
}

#[test]
fn key_not_matching_certificate_is_a_config_error() {
    let rsa = identity("rsa");
    let ecdsa = identity("ecdsa");
    let mixed = Identity::from_der(
        rsa.chain().to_vec(),
        ecdsa.key_der().to_vec(),
        ecdsa.key_format(),
    )
    .expect("identity");
    let err = tlsresume_openssl::Server::new(ServerSettings::new(mixed)).expect_err("mismatch");
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(err.to_string().contains("does not match"), "{err}");
}

#[test]
fn version_range_negotiates_tls13() {
    let mut setup = Setup::new(T13);
    setup.version = None;
    let out = setup.build().connect();
    assert_eq!(out.client.protocol, T13);
}

/// A `tls12_` and a `tls13_` test for each scenario function that takes the version.
macro_rules! both_versions {
    ($($scenario:ident),* $(,)?) => {
        $(both_versions!(@each $scenario: tls12 T12, tls13 T13);)*
    };
    (@each $scenario:ident: $($test:ident $version:ident),*) => {
        mod $scenario {
            $(
                #[test]
                fn $test() {
                    super::$scenario(super::$version);
                }
            )*
        }
    };
}

both_versions!(
    full_then_resumed,
    rejection_after_lifetime,
    ticket_age_on_virtual_clock,
    previous_key_overlap,
    corrupt_stored_session,
    dropped_connections_leave_resumption_working,
    tampered_ticket,
    verification_on_resumption,
    ocsp_on_resumption,
);
