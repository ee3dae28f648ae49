//! Certificate verification (Require / Try) and OCSP stapling, on full and resumed handshakes.

mod common;

use common::*;
use tlsresume_core::*;

fn ocsp_pair(v: ProtocolVersion, policy: ResumptionPolicy, mode: OcspMode) -> Pair {
    let mut pair = Pair::new("server-ecdsa", Versions::only(v), policy);
    pair.server.ocsp_response =
        Some(std::fs::read(pki("server-ecdsa.ocsp.der")).expect("ocsp response"));
    pair.client.ocsp = mode;
    pair
}

#[test]
fn stapled_response_verifies_on_full_handshakes_and_is_missing_on_resumption() {
    let _g = serial();
    for v in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let pair = ocsp_pair(v, ResumptionPolicy::exim_compatible(), OcspMode::Request);
        let (c, s) = pair.connect().expect("full");
        assert_eq!(c.ocsp, OcspStatus::Verified, "{v}");
        assert_eq!(s.ocsp, OcspStatus::NotVerified, "{v}: stapled");
        let (c, s) = pair.connect().expect("resumed");
        assert!(c.resumed, "{v}");
        // The server staples nothing on a resumed handshake ...
        assert_ne!(s.ocsp, OcspStatus::NotVerified, "{v}");
        // ... but GnuTLS 3.7.9 keeps the checked response in the session data, and
        // gnutls_ocsp_status_request_is_checked(session, 0) is still true: unlike OpenSSL,
        // the client sees "verified" (measured; reference §4 expects "no response").
        assert_eq!(c.ocsp, OcspStatus::Verified, "{v}");
    }
}

#[test]
fn required_ocsp_holds_on_resumed_handshakes_with_either_policy() {
    let _g = serial();
    for v in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let pair = ocsp_pair(v, ResumptionPolicy::exim_compatible(), OcspMode::Require);
        let (c, _) = pair.connect().expect("full");
        assert_eq!(c.ocsp, OcspStatus::Verified);
        // GnuTLS reports the stored check on resumption (see above), so Exim's GnuTLS
        // flavour does not hit the required-OCSP failure.
        let (c, _) = pair.connect().expect("resumed");
        assert!(c.resumed, "{v}");
        assert_eq!(c.ocsp, OcspStatus::Verified, "{v}");

        let pair = ocsp_pair(v, ResumptionPolicy::hardened(), OcspMode::Require);
        pair.connect().expect("full");
        let (c, _) = pair.connect().expect("resumed, status carried");
        assert!(c.resumed, "{v}");
        assert_eq!(c.ocsp, OcspStatus::Verified, "{v}");
    }
}

#[test]
fn no_staple_configured_reports_no_response_or_not_requested() {
    let _g = serial();
    let mut pair = Pair::new(
        "server-ecdsa",
        Versions::ALL,
        ResumptionPolicy::exim_compatible(),
    );
    pair.client.ocsp = OcspMode::Request;
    let (c, _) = pair.connect().expect("full");
    assert_eq!(c.ocsp, OcspStatus::NoResponse);
    pair.client.ocsp = OcspMode::Require;
    let err = pair.connect().expect_err("required, none stapled");
    assert!(err.contains("OCSP is required"), "{err}");
    pair.client.ocsp = OcspMode::Off;
    let (c, _) = pair.connect().expect("full");
    assert_eq!(c.ocsp, OcspStatus::NotRequested);
}

#[test]
fn untrusted_certificate_fails_require_and_is_reported_under_try() {
    let _g = serial();
    for v in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let mut pair = Pair::exim("untrusted", v);
        let err = pair.connect().expect_err("require");
        assert!(err.contains("did not verify"), "{v}: {err}");
        pair.client.verify = VerifyMode::Try;
        let (c, _) = pair.connect().expect("try");
        assert_eq!(c.verification, Verification::Failed, "{v}");
        assert_eq!(c.verification.exim_cv(), "no");
        let (c, _) = pair.connect().expect("try, resumed");
        assert!(c.resumed, "{v}");
        // CV stays "no" on the resumed session.
        assert_eq!(c.verification, Verification::Failed, "{v}");
    }
}

#[test]
fn wrong_name_does_not_verify() {
    let _g = serial();
    let mut pair = Pair::new(
        "server-ecdsa",
        Versions::ALL,
        ResumptionPolicy::exim_compatible(),
    );
    pair.client.verify = VerifyMode::Try;
    let server = tlsresume_gnutls::Server::new(pair.server.clone()).expect("server");
    let client = tlsresume_gnutls::Client::new(pair.client.clone()).expect("client");
    let (c, s) = run(&pair.listener, &server, &client, "other.example").expect("try");
    assert_eq!(c.verification, Verification::Failed);
    assert_eq!(s.sni.as_deref(), Some("other.example"));
    let (c, _) = run(&pair.listener, &server, &client, "127.0.0.1").expect("ip");
    assert_eq!(c.verification, Verification::Verified, "IP SAN");
    pair.client.verify = VerifyMode::Require;
}
