//! Full then resumed handshakes over loopback, TLS 1.2 and 1.3: bits, cipher strings (the
//! known issue and its hardened fix), session info, and the policy's host lists.

mod common;

use common::*;
use tlsresume_core::contract::ClientContract as _;
use tlsresume_core::*;

const R: fn(u8) -> Resumption = Resumption::from_bits_truncate;

#[test]
fn tls12_full_then_resumed_sets_exim_bits_and_cipher_strings_differ() {
    let _g = serial();
    let pair = Pair::exim("server-rsa", ProtocolVersion::Tls12);
    let (c, s) = pair.connect().expect("full");
    assert!(!c.resumed && !s.resumed);
    assert_eq!(c.resumption, R(0x0b), "client requested, server provided");
    assert_eq!(s.resumption, R(0x0b));
    assert_eq!(c.protocol, ProtocolVersion::Tls12);
    assert_eq!(
        c.cipher.native,
        "(TLS1.2)-(ECDHE-SECP256R1)-(RSA-SHA256)-(AES-256-GCM)"
    );
    assert_eq!(
        c.cipher.exim,
        "TLS1.2:ECDHE_SECP256R1__RSA_SHA256__AES_256_GCM:256"
    );
    assert_eq!(s.cipher.exim, c.cipher.exim);
    assert_eq!(c.cipher.iana, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
    assert_eq!(c.cipher.bits, 256);
    assert_eq!(c.ticket_lifetime, Some(2 * HOUR));
    assert_eq!(pair.store.len(), 1);

    let (rc, rs) = pair.connect().expect("resumed");
    assert!(rc.resumed && rs.resumed);
    // TLS 1.2 resumption sends no new ticket: client 0x17, server 0x1d.
    assert_eq!(rc.resumption, R(0x17));
    assert_eq!(rs.resumption, R(0x1d));
    assert_eq!(rc.resumption.describe(), "session resumed");
    // The known issue (reference §4): no signature group on resumption.
    assert_eq!(rc.cipher.native, "(TLS1.2)-(ECDHE-SECP256R1)-(AES-256-GCM)");
    assert_eq!(rc.cipher.exim, "TLS1.2:ECDHE_SECP256R1__AES_256_GCM:256");
    assert_eq!(rc.exim_x(), "TLS1.2:ECDHE_SECP256R1__AES_256_GCM:256*");
    assert_ne!(rc.cipher.exim, c.cipher.exim);
    // The IANA name stays.
    assert_eq!(rc.cipher.iana, c.cipher.iana);
    // The peer chain is kept in the session.
    assert_eq!(rc.peer_certificates, c.peer_certificates);
    assert!(!rc.peer_certificates.is_empty());
}

#[test]
fn tls13_full_then_resumed_sets_exim_bits_and_cipher_strings_differ() {
    let _g = serial();
    let pair = Pair::exim("server-rsa", ProtocolVersion::Tls13);
    let (c, s) = pair.connect().expect("full");
    assert_eq!(c.protocol, ProtocolVersion::Tls13);
    // The ticket arrives after the handshake, on the first read.
    assert_eq!(c.resumption, R(0x0b));
    assert_eq!(s.resumption, R(0x0b));
    assert_eq!(
        c.cipher.native,
        "(TLS1.3)-(ECDHE-SECP256R1)-(RSA-PSS-RSAE-SHA256)-(AES-256-GCM)"
    );
    assert_eq!(
        c.cipher.exim,
        "TLS1.3:ECDHE_SECP256R1__RSA_PSS_RSAE_SHA256__AES_256_GCM:256"
    );
    assert_eq!(c.cipher.iana, "TLS_AES_256_GCM_SHA384");

    let (rc, rs) = pair.connect().expect("resumed");
    assert!(rc.resumed && rs.resumed);
    // TLS 1.3 resumption comes with a new ticket: 0x1f on both sides.
    assert_eq!(rc.resumption, R(0x1f));
    assert_eq!(rs.resumption, R(0x1f));
    assert_eq!(rc.resumption.describe(), "session resumed, also new ticket");
    // GnuTLS 3.7.9 describes a resumed TLS 1.3 session with an empty key-exchange group;
    // Exim's literal transformation then yields this odd string (reference §4).
    assert_eq!(rc.cipher.native, "(TLS1.3)--(AES-256-GCM)");
    assert_eq!(rc.cipher.exim, "TLS1.3:(AES_256_GCM:256");
    assert_eq!(rs.cipher.exim, rc.cipher.exim);
    assert_ne!(rc.cipher.exim, c.cipher.exim);
    assert_eq!(rc.cipher.iana, c.cipher.iana);
    assert_eq!(rc.peer_certificates, c.peer_certificates);

    // The new ticket replaced the stored session: a third connection resumes again.
    let (c3, _) = pair.connect().expect("resumed again");
    assert!(c3.resumed);
}

#[test]
fn hardened_reports_iana_cipher_strings_that_do_not_change() {
    let _g = serial();
    for (v, expected) in [
        (
            ProtocolVersion::Tls12,
            "TLS1.2:TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:256",
        ),
        (ProtocolVersion::Tls13, "TLS1.3:TLS_AES_256_GCM_SHA384:256"),
    ] {
        let pair = Pair::new(
            "server-ecdsa",
            Versions::only(v),
            ResumptionPolicy::hardened(),
        );
        let (c, s) = pair.connect().expect("full");
        let (rc, rs) = pair.connect().expect("resumed");
        assert!(rc.resumed, "{v}");
        for info in [&c, &s, &rc, &rs] {
            assert_eq!(info.cipher.exim, expected, "{v}");
        }
        assert_ne!(
            c.cipher.native, rc.cipher.native,
            "{v}: native text still differs"
        );
    }
}

#[test]
fn session_info_reports_sni_alpn_verification_and_chain() {
    let _g = serial();
    let mut pair = Pair::new(
        "server-ecdsa",
        Versions::ALL,
        ResumptionPolicy::exim_compatible(),
    );
    pair.server.alpn = vec![b"smtp".to_vec(), b"h2".to_vec()];
    pair.client.alpn = vec![b"smtp".to_vec()];
    let (c, s) = pair.connect().expect("full");
    assert_eq!(c.protocol, ProtocolVersion::Tls13);
    assert_eq!(c.side, Side::Client);
    assert_eq!(s.side, Side::Server);
    assert_eq!(s.sni.as_deref(), Some("mx.tlsresume.test"));
    assert_eq!(c.sni.as_deref(), Some("mx.tlsresume.test"));
    assert_eq!(c.alpn.as_deref(), Some(&b"smtp"[..]));
    assert_eq!(s.alpn.as_deref(), Some(&b"smtp"[..]));
    assert_eq!(c.verification, Verification::Verified);
    assert_eq!(c.peer_certificates.len(), 1);
    assert_eq!(s.ticket_lifetime, Some(2 * HOUR));
    let (rc, rs) = pair.connect().expect("resumed");
    assert!(rc.resumed);
    assert_eq!(rs.sni.as_deref(), Some("mx.tlsresume.test"));
    assert_eq!(rc.alpn.as_deref(), Some(&b"smtp"[..]));
    // GnuTLS keeps the chain in the session and verifies it again on resumption.
    assert_eq!(rc.verification, Verification::Verified);
    assert_eq!(rc.peer_certificates, c.peer_certificates);
}

#[test]
fn client_not_allowed_to_resume_reports_the_ticket_it_got_and_stores_nothing() {
    let _g = serial();
    for v in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let mut pair = Pair::exim("server-ecdsa", v);
        pair.client.resumption =
            ResumptionPolicy::exim_compatible().with_client_hosts(HostList::none());
        let (c, s) = pair.connect().expect("full");
        // GnuTLS clients always ask for a ticket: the server still issues one, and the client
        // reports it as Exim's GnuTLS client does: 0x09, "no client request".
        assert_eq!(c.resumption, R(0x09), "{v}");
        assert_eq!(c.resumption.describe(), "no client request", "{v}");
        assert_eq!(s.resumption, R(0x0b), "{v}");
        assert!(pair.store.is_empty(), "{v}");
        let (c, _) = pair.connect().expect("again");
        assert!(!c.resumed);
    }
}

#[test]
fn server_not_issuing_shows_the_gnutls_0x05_quirk_and_refuses_tickets() {
    let _g = serial();
    for v in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let mut pair = Pair::exim("server-ecdsa", v);
        let (c, _) = pair.connect().expect("ticket from a willing server");
        assert_eq!(c.resumption, R(0x0b));
        pair.server.resumption =
            ResumptionPolicy::exim_compatible().with_server_hosts(HostList::none());
        let (c, s) = pair.connect().expect("unwilling server");
        assert!(!c.resumed && !s.resumed, "{v}");
        assert_eq!(
            c.resumption,
            R(0x07),
            "{v}: client offered session, no server action"
        );
        // TLS 1.2: gnutls_session_resumption_requested is true although tickets are off
        // (Exim's 0x05). TLS 1.3: the PSK is ignored and nothing is reported.
        let expected = if v == ProtocolVersion::Tls12 {
            0x05
        } else {
            0x01
        };
        assert_eq!(s.resumption, R(expected), "{v}");
        // A client with nothing stored only asks for a ticket.
        let _ = pair.store.remove(&pair.client.cache_key(
            tlsresume_gnutls::BACKEND,
            &ClientParams::new(
                "mx.tlsresume.test",
                pair.listener.local_addr().expect("addr"),
            ),
        ));
        assert!(pair.store.is_empty());
        let (c, s) = pair.connect().expect("plain ticket request");
        // Measured on 3.7.9: an empty ticket request does not make
        // gnutls_session_resumption_requested true; only a presented ticket does.
        assert_eq!(c.resumption, R(0x03), "{v}");
        assert_eq!(s.resumption, R(0x01), "{v}");
    }
}

#[test]
fn servers_sharing_the_master_secret_resume_each_others_tickets_others_do_not() {
    let _g = serial();
    for v in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let mut pair = Pair::exim("server-ecdsa", v);
        pair.connect().expect("full");
        // A fresh Server from the same key source derives the same keys.
        let (c, _) = pair.connect().expect("same secret");
        assert!(c.resumed, "{v}");
        pair.server.key_source = std::sync::Arc::new(ProcessKeySource::new());
        let (c, s) = pair.connect().expect("other secret");
        assert!(!c.resumed && !s.resumed, "{v}: full handshake, no error");
        assert!(s.resumption.contains(Resumption::SERVER_TICKET));
    }
}

/// The names are kept per negotiated suite (see `cipher_names`): debug builds recompute them on
/// every hit and panic on a difference, so running each case twice, in an order where full,
/// resumed, TLS 1.2/1.3, both ciphers and both namings follow one another, fails on a key that
/// misses one of their inputs. The strings are GnuTLS 3.7.9's.
#[test]
fn kept_cipher_names_equal_fresh_ones_across_versions_resumption_and_ciphers() {
    let _g = serial();
    let cases = [
        (
            ProtocolVersion::Tls12,
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "(TLS1.2)-(ECDHE-SECP256R1)-(RSA-SHA256)-(AES-128-GCM)",
            "(TLS1.2)-(ECDHE-SECP256R1)-(AES-128-GCM)",
        ),
        (
            ProtocolVersion::Tls12,
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "(TLS1.2)-(ECDHE-SECP256R1)-(RSA-SHA256)-(CHACHA20-POLY1305)",
            "(TLS1.2)-(ECDHE-SECP256R1)-(CHACHA20-POLY1305)",
        ),
        (
            ProtocolVersion::Tls13,
            "TLS_AES_128_GCM_SHA256",
            "(TLS1.3)-(ECDHE-SECP256R1)-(RSA-PSS-RSAE-SHA256)-(AES-128-GCM)",
            "(TLS1.3)--(AES-128-GCM)",
        ),
        (
            ProtocolVersion::Tls13,
            "TLS_CHACHA20_POLY1305_SHA256",
            "(TLS1.3)-(ECDHE-SECP256R1)-(RSA-PSS-RSAE-SHA256)-(CHACHA20-POLY1305)",
            "(TLS1.3)--(CHACHA20-POLY1305)",
        ),
    ];
    for round in 0..2 {
        for (version, suite, full, resumed) in cases {
            for policy in [
                ResumptionPolicy::exim_compatible(),
                ResumptionPolicy::hardened(),
            ] {
                let hardened = policy.known_issues().iana_cipher_names;
                let mut pair = Pair::new("server-rsa", Versions::only(version), policy);
                let list: settings::ciphers::CipherList = suite.parse().expect("suite");
                pair.server.ciphers = Some(list.clone());
                pair.client.ciphers = Some(list);
                let label = format!("round {round}, {suite}, hardened {hardened}");
                let (c, s) = pair
                    .connect()
                    .unwrap_or_else(|e| panic!("{label}: full: {e}"));
                let (rc, rs) = pair
                    .connect()
                    .unwrap_or_else(|e| panic!("{label}: resumed: {e}"));
                assert!(!c.resumed && rc.resumed && rs.resumed, "{label}");
                for (info, native) in [(&c, full), (&s, full), (&rc, resumed), (&rs, resumed)] {
                    assert_eq!(info.cipher.native, native, "{label}");
                    assert_eq!(info.cipher.iana, suite, "{label}");
                    let exim = if hardened {
                        info::exim_cipher_string(version, suite, info.cipher.bits)
                    } else {
                        info::exim_cipher_from_gnutls_desc(native, info.cipher.bits)
                    };
                    assert_eq!(info.cipher.exim, exim, "{label}");
                }
                assert_eq!(
                    c.cipher.bits,
                    if suite.contains("AES_128") { 128 } else { 256 }
                );
            }
        }
    }
}
