//! DANE for SMTP (RFC 7672) on every backend, over loopback, on a throwaway PKI whose server
//! sends its chain (leaf, then the CA):
//!
//! 1. every usage 2/3 × selector 0/1 × matching type 0/1/2, matching and not, DANE-TA against a
//!    wrong base domain, unusable records beside a matching one: each backend's verdict equals
//!    the one `openssl s_client -dane_tlsa_domain … -dane_tlsa_rrdata …` (OpenSSL's own DANE,
//!    a separate process) reaches on the same server and records;
//! 2. the policy: DANE only (no fallback to the trust anchors), no records (RFC 7672 §2.2: DANE
//!    does not apply), only unusable ones (TLS without authentication);
//! 3. resumption: only under the same records, and a resumed session's DANE status per policy.
//!
//! `openssl` missing fails under `CI` and prints `SKIPPED` elsewhere.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

#[path = "interop/process.rs"]
#[allow(dead_code)]
mod process;

use openssl::x509::X509;
use process::{run_tool, tool_present};
use tlsresume::backends;
use tlsresume_compare::Pki;
use tlsresume_core::{
    BackendKind, ClientContext, ClientParams, ClientSettings, ErrorKind, Identity, KeyFormat,
    MemoryStore, NoOffer, ProtocolVersion, ResumptionPolicy, ServerParams, ServerSettings,
    SessionInfo, TlsaRecord, Verification, VerifiedBy, Versions,
};

const SERVER_NAME: &str = "mx.tlsresume.test";
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's chain and an unrelated certificate, as DER.
struct Certs {
    leaf: Vec<u8>,
    ca: Vec<u8>,
    other: Vec<u8>,
}

/// A generated PKI, and a server (OpenSSL backend) on loopback that sends leaf and CA.
fn setup() -> (Pki, Certs, SocketAddr) {
    let pki = Pki::generate().expect("generated PKI");
    let certs = Certs {
        leaf: pki.server.chain()[0].clone(),
        ca: pki.roots[0].clone(),
        other: pki.untrusted.chain()[0].clone(),
    };
    let identity = Identity::from_der(
        vec![certs.leaf.clone(), certs.ca.clone()],
        pki.server.key_der().to_vec(),
        KeyFormat::Pkcs8,
    )
    .expect("identity with chain");
    let server =
        backends::server(BackendKind::Openssl, ServerSettings::new(identity)).expect("server");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Serves until the test process ends; each connection is answered on its own thread.
    thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(IO_TIMEOUT));
                let Ok(peer) = tcp.peer_addr() else { return };
                let Ok(local) = tcp.local_addr() else { return };
                let Ok(mut tls) = server.accept(Box::new(tcp), &ServerParams::new(peer, local))
                else {
                    return;
                };
                let _ = tls.write_all(b"220 dane\n").and_then(|()| tls.flush());
                let mut byte = [0u8; 64];
                let _ = tls.read(&mut byte);
                let _ = tls.shutdown();
            });
        }
    });
    (pki, certs, addr)
}

/// The SubjectPublicKeyInfo of a certificate, DER (read with OpenSSL's X.509 parser).
fn spki(cert: &[u8]) -> Vec<u8> {
    X509::from_der(cert)
        .and_then(|c| c.public_key())
        .and_then(|k| k.public_key_to_der())
        .expect("SPKI")
}

/// The record `usage selector matching` for `cert`.
fn record(usage: u8, selector: u8, matching: u8, cert: &[u8]) -> TlsaRecord {
    let selected = if selector == 0 {
        cert.to_vec()
    } else {
        spki(cert)
    };
    let data = match matching {
        0 => selected,
        1 => ring::digest::digest(&ring::digest::SHA256, &selected)
            .as_ref()
            .to_vec(),
        _ => ring::digest::digest(&ring::digest::SHA512, &selected)
            .as_ref()
            .to_vec(),
    };
    TlsaRecord::new(usage, selector, matching, data)
}

/// A client of `kind` whose trust anchors are `roots`.
fn client(
    kind: BackendKind,
    roots: Vec<Vec<u8>>,
    policy: ResumptionPolicy,
) -> Arc<dyn ClientContext> {
    client_for(kind, roots, policy, Versions::ALL)
}

/// [`client`] for `versions`.
fn client_for(
    kind: BackendKind,
    roots: Vec<Vec<u8>>,
    policy: ResumptionPolicy,
    versions: Versions,
) -> Arc<dyn ClientContext> {
    let mut settings = ClientSettings::new(roots);
    settings.versions = versions;
    settings.resumption = policy;
    settings.store = Arc::new(MemoryStore::default());
    backends::client(kind, settings).expect("client")
}

/// One connection: handshake, read the greeting (TLS 1.3 tickets arrive with it), close.
fn connect(
    client: &dyn ClientContext,
    addr: SocketAddr,
    records: Option<&[TlsaRecord]>,
    base: &str,
) -> Result<SessionInfo, tlsresume_core::Error> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut params = ClientParams::new(base, addr);
    if let Some(records) = records {
        params = params.dane(records.to_vec());
    }
    let mut tls = client.connect(Box::new(tcp), &params)?;
    let mut line = [0u8; 64];
    let _ = tls.read(&mut line)?;
    let _ = tls.write_all(b"QUIT\n");
    let info = tls.info();
    let _ = tls.shutdown();
    Ok(info)
}

/// OpenSSL's own verdict (`s_client`, a separate process): whether the handshake with DANE
/// verification against `records` for `base` succeeded.
fn s_client_verdict(addr: SocketAddr, records: &[TlsaRecord], base: &str) -> (bool, String) {
    let mut args: Vec<String> = vec![
        "s_client".into(),
        "-connect".into(),
        addr.to_string(),
        "-servername".into(),
        base.into(),
        "-dane_tlsa_domain".into(),
        base.into(),
        "-dane_ee_no_namechecks".into(),
        "-verify_return_error".into(),
        "-no-CAfile".into(),
        "-no-CApath".into(),
        "-no-CAstore".into(),
        "-brief".into(),
    ];
    for r in records {
        args.push("-dane_tlsa_rrdata".into());
        args.push(r.to_string());
    }
    let run = run_tool("openssl", &args, b"QUIT\n");
    let ok = run.exited_ok() && run.text.contains("Verification: OK");
    (ok, run.text)
}

/// One row of the table: a name, the records, the base domain, and the verdict RFC 7672
/// gives (which OpenSSL must reach too).
struct Case {
    name: String,
    records: Vec<TlsaRecord>,
    base: &'static str,
    matches: bool,
}

fn cases(certs: &Certs) -> Vec<Case> {
    let mut out = Vec::new();
    for usage in [2u8, 3] {
        // DANE-TA names the CA (depth 1), DANE-EE the leaf.
        let target = if usage == 2 { &certs.ca } else { &certs.leaf };
        for selector in [0u8, 1] {
            for matching in [0u8, 1, 2] {
                out.push(Case {
                    name: format!("{usage} {selector} {matching} match"),
                    records: vec![record(usage, selector, matching, target)],
                    base: SERVER_NAME,
                    matches: true,
                });
                out.push(Case {
                    name: format!("{usage} {selector} {matching} other certificate"),
                    records: vec![record(usage, selector, matching, &certs.other)],
                    base: SERVER_NAME,
                    matches: false,
                });
            }
        }
    }
    // The name: DANE-TA checks it against the base domain, DANE-EE ignores it.
    out.push(Case {
        name: "2 1 1 wrong base domain".into(),
        records: vec![record(2, 1, 1, &certs.ca)],
        base: "other.tlsresume.test",
        matches: false,
    });
    out.push(Case {
        name: "3 1 1 wrong base domain".into(),
        records: vec![record(3, 1, 1, &certs.leaf)],
        base: "other.tlsresume.test",
        matches: true,
    });
    // A DANE-EE record for the CA (not the leaf) and a DANE-TA one for the leaf alone.
    out.push(Case {
        name: "3 1 1 for the CA".into(),
        records: vec![record(3, 1, 1, &certs.ca)],
        base: SERVER_NAME,
        matches: false,
    });
    // Unusable records beside a usable one are ignored.
    let mut bad_digest = record(3, 1, 1, &certs.leaf);
    bad_digest.data.pop();
    out.push(Case {
        name: "unusable (short digest, unknown selector) + 3 0 1 match".into(),
        records: vec![
            bad_digest,
            TlsaRecord::new(3, 7, 1, vec![0; 32]),
            record(3, 0, 1, &certs.leaf),
        ],
        base: SERVER_NAME,
        matches: true,
    });
    out.push(Case {
        name: "two records, the second matches".into(),
        records: vec![record(3, 1, 1, &certs.other), record(2, 0, 1, &certs.ca)],
        base: SERVER_NAME,
        matches: true,
    });
    out
}

/// The table (1.): every backend's verdict equals OpenSSL's own (s_client) and RFC 7672's.
#[test]
fn every_backend_reaches_openssls_own_verdict() {
    if !tool_present("openssl", &["version"]) {
        return;
    }
    let (pki, certs, addr) = setup();
    let mut failures = Vec::new();
    for case in cases(&certs) {
        let (reference, text) = s_client_verdict(addr, &case.records, case.base);
        if reference != case.matches {
            failures.push(format!(
                "{}: s_client says {reference}, RFC 7672 {}:\n{text}",
                case.name, case.matches
            ));
        }
        for kind in backends::available() {
            // Trust anchors that cover nothing here: only DANE can authenticate.
            let client = client(
                kind,
                vec![certs.other.clone()],
                ResumptionPolicy::exim_compatible(),
            );
            let got = connect(client.as_ref(), addr, Some(&case.records), case.base);
            match (&got, reference) {
                (Ok(info), true) => {
                    let Some(authority) = info.verified_by.dane() else {
                        failures.push(format!("{kind} {}: not DANE-verified: {info:?}", case.name));
                        continue;
                    };
                    if !case.records.contains(&authority.record) {
                        failures.push(format!("{kind} {}: reported {authority}", case.name));
                    }
                    if info.verification != Verification::Verified {
                        failures.push(format!("{kind} {}: {}", case.name, info.verification));
                    }
                }
                (Err(e), false) if e.kind() == ErrorKind::Certificate => {
                    if !e.to_string().contains("no TLSA record matched") {
                        failures.push(format!("{kind} {}: error does not say so: {e}", case.name));
                    }
                }
                (got, _) => failures.push(format!(
                    "{kind} {}: s_client {reference}, backend {got:?}",
                    case.name
                )),
            }
        }
        let _ = &pki;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The policy (2.): DANE only; no records; only unusable records.
#[test]
fn dane_only_no_records_and_unusable_records() {
    let (pki, certs, addr) = setup();
    let other = record(3, 1, 1, &certs.other);
    for kind in backends::available() {
        // The trust anchors would verify the server: a DANE host is still DANE only.
        let trusting = client(kind, pki.roots.clone(), ResumptionPolicy::exim_compatible());
        let err = connect(
            trusting.as_ref(),
            addr,
            Some(std::slice::from_ref(&other)),
            SERVER_NAME,
        )
        .expect_err("no record matches");
        assert_eq!(err.kind(), ErrorKind::Certificate, "{kind}: {err}");
        // No records (RFC 7672 §2.2: DANE does not apply): PKIX as the settings say.
        let info = connect(trusting.as_ref(), addr, Some(&[]), SERVER_NAME).expect("PKIX");
        assert_eq!(info.verified_by, VerifiedBy::Pkix, "{kind}");
        // Only unusable records (PKIX usages, unknown matching type): TLS without
        // authentication, even with trust anchors that do not cover the server.
        let untrusting = client(
            kind,
            vec![certs.other.clone()],
            ResumptionPolicy::exim_compatible(),
        );
        let unusable = [
            TlsaRecord::new(1, 1, 1, record(3, 1, 1, &certs.leaf).data),
            TlsaRecord::new(0, 0, 1, record(3, 0, 1, &certs.ca).data),
            TlsaRecord::new(3, 1, 9, vec![1; 32]),
        ];
        let info = connect(untrusting.as_ref(), addr, Some(&unusable), SERVER_NAME)
            .unwrap_or_else(|e| panic!("{kind}: unauthenticated TLS: {e}"));
        assert_eq!(info.verified_by, VerifiedBy::Nothing, "{kind}");
        assert_eq!(info.verification, Verification::NotChecked, "{kind}");
        // Without records the same client fails PKIX.
        let err = connect(untrusting.as_ref(), addr, None, SERVER_NAME).expect_err("PKIX fails");
        assert_eq!(err.kind(), ErrorKind::Certificate, "{kind}: {err}");
    }
}

/// What a resumed DANE session reports under the Exim-compatible policy: what each library
/// says on it (docs/differences.md): OpenSSL verifies nothing on resumption and
/// `SSL_get0_dane_authority` reports no authority; rustls calls no verifier; GnuTLS is asked
/// again over the chain it kept in the session.
fn exim_resumed_dane(kind: BackendKind) -> bool {
    match kind {
        BackendKind::Openssl | BackendKind::Rustls => false,
        BackendKind::Gnutls => true,
    }
}

/// Resumption (3.): only under the same records; the DANE status of a resumed session per
/// policy.
#[test]
fn resumed_dane_sessions_keep_their_meaning() {
    let (_pki, certs, addr) = setup();
    let ee = [record(3, 1, 1, &certs.leaf)];
    let ta = [record(2, 0, 1, &certs.ca)];
    for kind in backends::available() {
        for (policy, name, version) in [
            (
                ResumptionPolicy::exim_compatible(),
                "exim",
                ProtocolVersion::Tls12,
            ),
            (
                ResumptionPolicy::exim_compatible(),
                "exim",
                ProtocolVersion::Tls13,
            ),
            (
                ResumptionPolicy::hardened(),
                "hardened",
                ProtocolVersion::Tls12,
            ),
            (
                ResumptionPolicy::hardened(),
                "hardened",
                ProtocolVersion::Tls13,
            ),
        ] {
            let name = format!("{name} {version}");
            let hardened = name.starts_with("hardened");
            let client = client_for(
                kind,
                vec![certs.other.clone()],
                policy,
                Versions::only(version),
            );
            let first = connect(client.as_ref(), addr, Some(&ee), SERVER_NAME).expect("full");
            assert!(!first.resumed, "{kind} {name}");
            assert!(first.verified_by.dane().is_some(), "{kind} {name}");
            let second = connect(client.as_ref(), addr, Some(&ee), SERVER_NAME).expect("resumed");
            assert!(
                second.resumed,
                "{kind} {name}: resumed under the same records"
            );
            let expected = hardened || exim_resumed_dane(kind);
            assert_eq!(
                second.verified_by.dane().map(|a| a.record.clone()),
                expected.then(|| ee[0].clone()),
                "{kind} {name}: {:?}",
                second.verified_by
            );
            // Other records: another cache key, no session offered.
            let third = connect(client.as_ref(), addr, Some(&ta), SERVER_NAME).expect("full");
            assert!(!third.resumed, "{kind} {name}: other records");
            assert_eq!(third.no_offer, Some(NoOffer::Missing), "{kind} {name}");
            assert!(third.verified_by.dane().is_some(), "{kind} {name}");
        }
    }
}
