//! Several server certificates, on every backend: the certificate a client gets by the name it
//! sends (exact, then wildcard, then the default) and by what it supports (an RSA and an ECDSA
//! certificate for the same names), and a session issued under one name never resumed under
//! another (a full handshake, not a failure). Real handshakes over loopback: the server of the
//! backend under test, an OpenSSL client driven directly (it sends any name, restricts its
//! signature algorithms and offers any session it holds, which the backends' own clients never
//! do across names) and the backend's own client.

#[allow(dead_code)] // this suite uses the turn and the reporting server only
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ::openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use common::gnutls_turn;
use tlsresume::backends;
use tlsresume_core::identities::ServerIdentity;
use tlsresume_core::{
    BackendKind, ClientParams, ClientSettings, Identity, ProtocolVersion, RejectReason,
    ServerSettings, SessionInfo, VerifyMode,
};

const PKI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/pki");

fn identity(name: &str) -> Identity {
    Identity::from_pem_files(
        format!("{PKI}/{name}.pem").as_ref(),
        format!("{PKI}/{name}.key").as_ref(),
    )
    .expect("test identity")
}

fn leaf(name: &str) -> Vec<u8> {
    identity(name).chain()[0].clone()
}

/// The ECDSA certificate for mx.tlsresume.test first (the default), its RSA twin, one for
/// a.sni.tlsresume.test and one for *.wild.tlsresume.test; names from the certificates.
fn settings() -> ServerSettings {
    ServerSettings::builder(identity("server-ecdsa"))
        .add_identity(ServerIdentity::new(identity("server-rsa")).expect("rsa"))
        .add_identity(ServerIdentity::new(identity("sni-a")).expect("a"))
        .add_identity(ServerIdentity::new(identity("sni-wild")).expect("wild"))
        .build()
        .expect("settings")
}

/// What the OpenSSL client saw of one connection.
struct Seen {
    /// The server's leaf certificate, DER.
    leaf: Vec<u8>,
    resumed: bool,
    /// The session to offer next time (DER).
    session: Vec<u8>,
}

/// One connection of an OpenSSL client sending `name`, limited to `version` and, when given,
/// to the signature algorithms `sigalgs`, offering `session` (DER) when given.
fn openssl_client(
    addr: SocketAddr,
    name: Option<&str>,
    version: ProtocolVersion,
    sigalgs: Option<&str>,
    session: Option<&[u8]>,
) -> Seen {
    let v = match version {
        ProtocolVersion::Tls12 => SslVersion::TLS1_2,
        _ => SslVersion::TLS1_3,
    };
    let mut builder = SslConnector::builder(SslMethod::tls_client()).expect("connector");
    builder.set_verify(SslVerifyMode::NONE);
    builder.set_min_proto_version(Some(v)).expect("min");
    builder.set_max_proto_version(Some(v)).expect("max");
    if let Some(list) = sigalgs {
        builder.set_sigalgs_list(list).expect("sigalgs");
    }
    let connector = builder.build();
    let mut config = connector.configure().expect("configure");
    config.set_use_server_name_indication(name.is_some());
    config.set_verify_hostname(false);
    let mut ssl = config.into_ssl(name.unwrap_or("ignored")).expect("ssl");
    if let Some(der) = session {
        tlsresume_openssl::raw::set_session_der(&mut ssl, der).expect("session");
    }
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut tls = ::openssl::ssl::SslStream::new(ssl, tcp).expect("stream");
    tls.connect().expect("handshake");
    let mut buf = [0u8; 2];
    tls.read_exact(&mut buf).expect("hi"); // a TLS 1.3 ticket arrives before it
    tls.write_all(b"ok").expect("ok");
    let seen = Seen {
        leaf: tls
            .ssl()
            .peer_certificate()
            .and_then(|c| c.to_der().ok())
            .expect("server certificate"),
        resumed: tls.ssl().session_reused(),
        session: tls
            .ssl()
            .session()
            .and_then(|s| s.to_der().ok())
            .unwrap_or_default(),
    };
    let _ = tls.shutdown();
    seen
}

/// Which certificate each name gets, and what the server reports it sent.
fn certificates_by_name(kind: BackendKind) {
    let cases: [(Option<&str>, Option<&str>, &str); 9] = [
        (Some("a.sni.tlsresume.test"), None, "sni-a"),
        (Some("A.SNI.tlsresume.test."), None, "sni-a"),
        (Some("b.wild.tlsresume.test"), None, "sni-wild"),
        // The wildcard stands for one label: neither the bare domain nor two labels.
        (Some("wild.tlsresume.test"), None, "server-ecdsa"),
        (Some("x.b.wild.tlsresume.test"), None, "server-ecdsa"),
        (Some("unknown.example"), None, "server-ecdsa"),
        (None, None, "server-ecdsa"),
        // The same names, RSA and ECDSA: what the client supports decides.
        (
            Some("mx.tlsresume.test"),
            Some("RSA-PSS+SHA256:RSA+SHA256"),
            "server-rsa",
        ),
        (
            Some("mx.tlsresume.test"),
            Some("ECDSA+SHA256"),
            "server-ecdsa",
        ),
    ];
    for version in [ProtocolVersion::Tls13, ProtocolVersion::Tls12] {
        let (addr, server) = common::serve_reporting(kind, settings(), cases.len());
        for (name, sigalgs, expected) in cases {
            let seen = openssl_client(addr, name, version, sigalgs, None);
            assert!(
                seen.leaf == leaf(expected),
                "{kind} {version}: {name:?} with {sigalgs:?} should get {expected}"
            );
        }
        let reports = server.join().expect("server thread");
        for ((name, sigalgs, expected), report) in cases.iter().zip(reports) {
            let report = report.expect("handshake");
            assert!(
                report.local_certificate.as_deref() == Some(&leaf(expected)[..]),
                "{kind} {version}: the server reports another certificate for {name:?} \
                 {sigalgs:?}"
            );
        }
    }
}

/// A session issued under one name: resumed under the same name, a full handshake (with the
/// other name's certificate and a new ticket) under another, or with no name.
fn no_resumption_across_names(kind: BackendKind) {
    for version in [ProtocolVersion::Tls13, ProtocolVersion::Tls12] {
        let (addr, server) = common::serve_reporting(kind, settings(), 5);
        let a = Some("a.sni.tlsresume.test");
        let first = openssl_client(addr, a, version, None, None);
        assert!(!first.resumed);
        let again = openssl_client(addr, a, version, None, Some(&first.session));
        assert!(again.resumed, "{kind} {version}: the same name resumes");
        let other = openssl_client(
            addr,
            Some("b.wild.tlsresume.test"),
            version,
            None,
            Some(&first.session),
        );
        assert!(
            !other.resumed,
            "{kind} {version}: another name must not resume"
        );
        assert!(other.leaf == leaf("sni-wild"), "{kind} {version}");
        let none = openssl_client(addr, None, version, None, Some(&first.session));
        assert!(!none.resumed, "{kind} {version}: no name must not resume");
        // The ticket issued under the other name resumes under that name.
        let back = openssl_client(
            addr,
            Some("b.wild.tlsresume.test"),
            version,
            None,
            Some(&other.session),
        );
        assert!(back.resumed, "{kind} {version}: its own ticket resumes");
        let reports: Vec<SessionInfo> = server
            .join()
            .expect("server thread")
            .into_iter()
            .map(|r| r.expect("handshake"))
            .collect();
        let resumed: Vec<bool> = reports.iter().map(|r| r.resumed).collect();
        assert_eq!(
            resumed,
            [false, true, false, false, true],
            "{kind} {version}"
        );
        // OpenSSL and rustls show the session before deciding: the refusal says why. GnuTLS
        // cannot (the ticket is sealed under the name's own key and does not decrypt).
        let why = match kind {
            BackendKind::Gnutls => None,
            _ => Some(RejectReason::ServerName),
        };
        assert_eq!(reports[2].ticket_refused, why, "{kind} {version}");
        assert_eq!(reports[3].ticket_refused, why, "{kind} {version}");
    }
}

/// The backend's own client: it verifies the name it connects to, which only the chosen
/// certificate carries, and resumes under that name.
fn own_client_gets_the_named_certificate(kind: BackendKind) {
    let (addr, server) = common::serve_reporting(kind, settings(), 3);
    let roots = tlsresume_core::certificates_from_pem_file(format!("{PKI}/ca.pem").as_ref())
        .expect("roots");
    let client = backends::client(kind, ClientSettings::new(roots.clone())).expect("client");
    let mut infos = Vec::new();
    for name in [
        "a.sni.tlsresume.test",
        "a.sni.tlsresume.test",
        "c.wild.tlsresume.test",
    ] {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut tls = client
            .connect(Box::new(tcp), &ClientParams::new(name, addr))
            .expect("verified handshake");
        let mut buf = [0u8; 2];
        tls.read_exact(&mut buf).expect("hi");
        tls.write_all(b"ok").expect("ok");
        infos.push(tls.info());
        let _ = tls.shutdown();
    }
    drop(server.join());
    assert!(infos[0].peer_certificates.first() == Some(&leaf("sni-a")));
    assert!(infos[1].resumed, "{kind}: the same name resumes");
    assert!(infos[2].peer_certificates.first() == Some(&leaf("sni-wild")));
    // Trying verification, a name the certificates do not cover still gets the default.
    let (addr, server) = common::serve_reporting(kind, settings(), 1);
    let mut trying = ClientSettings::new(roots);
    trying.verify = VerifyMode::Try;
    let client = backends::client(kind, trying).expect("client");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut tls = client
        .connect(Box::new(tcp), &ClientParams::new("other.example", addr))
        .expect("handshake");
    let mut buf = [0u8; 2];
    tls.read_exact(&mut buf).expect("hi");
    tls.write_all(b"ok").expect("ok");
    assert!(tls.info().peer_certificates.first() == Some(&leaf("server-ecdsa")));
    let _ = tls.shutdown();
    drop(server.join());
}

macro_rules! suite {
    ($module:ident, $kind:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn each_name_gets_its_certificate() {
                let _turn = gnutls_turn();
                certificates_by_name($kind);
            }

            #[test]
            fn a_session_does_not_resume_under_another_name() {
                let _turn = gnutls_turn();
                no_resumption_across_names($kind);
            }

            #[test]
            fn the_backend_client_verifies_the_chosen_certificate() {
                let _turn = gnutls_turn();
                own_client_gets_the_named_certificate($kind);
            }
        }
    };
}

#[cfg(feature = "openssl")]
suite!(openssl, BackendKind::Openssl);
#[cfg(feature = "gnutls")]
suite!(gnutls, BackendKind::Gnutls);
#[cfg(feature = "rustls")]
suite!(rustls, BackendKind::Rustls);
