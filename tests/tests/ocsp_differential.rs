//! The rustls backend's OCSP check against OpenSSL's verdict, for every kind of response the
//! throwaway PKI makes ([`OcspKind`]):
//!
//! - the checker (`tlsresume::rustls::ocsp::check_response`) against the `openssl ocsp`
//!   command (`-respin … -issuer … -CAfile … -cert …`, asking for the certificate ID under
//!   the hash algorithm the response uses);
//! - the rustls client over a real loopback handshake with a rustls server stapling each
//!   response (status, reason in `SessionInfo::ocsp_detail`, `OcspMode::Require`), and on a
//!   virtual clock at the edges of the validity window;
//! - the OpenSSL backend's client over the same handshakes;
//! - truncated and bit-flipped responses, which must be refused without a panic.
//!
//! The `openssl` command comes from Debian's `openssl` package; without it the command-line
//! comparison fails under `CI` and is skipped (saying so) otherwise.

#![cfg(feature = "rustls")]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::Decode;
use rustls::pki_types::UnixTime;
use tlsresume::rustls::ocsp::{check_response, OcspRejection};
use tlsresume::{
    backends, BackendKind, ClientParams, ClientSettings, ManualClock, OcspMode, OcspStatus,
    ServerParams, ServerSettings, SessionInfo, Verification,
};
use tlsresume_compare::{OcspKind, Pki};
use x509_ocsp::{BasicOcspResponse, OcspResponse};

const DAY: u64 = 86_400;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn at(secs: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(secs))
}

/// What the test expects of each kind, written down here rather than taken from either
/// checker: the rejection (as a predicate), or acceptance.
fn as_expected(kind: OcspKind, verdict: &Result<(), OcspRejection>) -> bool {
    use OcspRejection as R;
    match kind {
        OcspKind::Good | OcspKind::GoodSha256 | OcspKind::Delegated => verdict.is_ok(),
        OcspKind::Revoked => matches!(
            verdict,
            Err(R::Revoked { reason: Some(reason), .. }) if reason == "keyCompromise"
        ),
        OcspKind::Unknown => matches!(verdict, Err(R::Unknown)),
        OcspKind::Expired => matches!(verdict, Err(R::Expired { .. })),
        OcspKind::NotYetValid => matches!(verdict, Err(R::NotYetValid { .. })),
        OcspKind::WrongIssuer | OcspKind::DelegatedWithoutEku => {
            matches!(verdict, Err(R::ResponderNotAuthorized(_)))
        }
        OcspKind::BadSignature => matches!(verdict, Err(R::BadSignature)),
        OcspKind::TryLater => matches!(verdict, Err(R::Unsuccessful("tryLater"))),
    }
}

/// `openssl ocsp`, or `None` (skipped, said on stderr) when the command is missing outside CI.
fn openssl_command() -> Option<()> {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(());
    }
    if std::env::var_os("CI").is_some() {
        panic!("the openssl command (Debian package openssl) is required under CI");
    }
    eprintln!("skipped: the openssl command is not installed (Debian package openssl)");
    None
}

/// A scratch directory with the CA and server certificate as PEM, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(pki: &Pki) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .subsec_nanos();
        let dir =
            std::env::temp_dir().join(format!("tlsresume-ocsp-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let pem = |der: &[u8]| {
            openssl::x509::X509::from_der(der)
                .and_then(|c| c.to_pem())
                .expect("PEM")
        };
        std::fs::write(dir.join("ca.pem"), pem(&pki.roots[0])).expect("ca.pem");
        std::fs::write(dir.join("leaf.pem"), pem(&pki.server.chain()[0])).expect("leaf.pem");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `openssl ocsp` option naming the hash of the response's certificate ID (SHA-1 when
/// there is none), so that OpenSSL looks the leaf up under the ID the response uses.
fn cert_id_hash_option(response: &[u8]) -> &'static str {
    let oid = OcspResponse::from_der(response)
        .ok()
        .and_then(|r| r.response_bytes)
        .and_then(|b| BasicOcspResponse::from_der(b.response.as_bytes()).ok())
        .and_then(|b| b.tbs_response_data.responses.first().cloned())
        .map(|s| s.cert_id.hash_algorithm.oid);
    match oid {
        Some(const_oid::db::rfc5912::ID_SHA_256) => "-sha256",
        Some(const_oid::db::rfc5912::ID_SHA_384) => "-sha384",
        Some(const_oid::db::rfc5912::ID_SHA_512) => "-sha512",
        _ => "-sha1",
    }
}

/// OpenSSL's verdict: the response verifies (signer, chain to the CA file, delegation) and
/// the status line for the leaf is a plain "good" (no "Status times invalid" warning).
fn openssl_verdict(scratch: &Scratch, response: &[u8]) -> Result<(), String> {
    let path = scratch.0.join("response.der");
    std::fs::write(&path, response).expect("response.der");
    let out = Command::new("openssl")
        .current_dir(&scratch.0)
        .args(["ocsp", "-respin", "response.der", "-issuer", "ca.pem"])
        .args(["-CAfile", "ca.pem", cert_id_hash_option(response)])
        .args(["-cert", "leaf.pem"])
        .output()
        .expect("run openssl ocsp");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let verified = stderr.contains("Response verify OK");
    let good = stdout.lines().next() == Some("leaf.pem: good");
    if out.status.success() && verified && good {
        Ok(())
    } else {
        Err(format!("{}{}", stdout.trim(), stderr.trim()))
    }
}

#[test]
fn checker_and_openssl_agree_on_every_kind() {
    let Some(()) = openssl_command() else {
        return;
    };
    let pki = Pki::generate().expect("throwaway PKI");
    let scratch = Scratch::new(&pki);
    let (leaf, ca) = (&pki.server.chain()[0], &pki.roots[0]);
    let mut table = Vec::new();
    let mut wrong = Vec::new();
    for kind in OcspKind::ALL {
        let response = pki.ocsp_response(kind).expect("response");
        let ours = check_response(&response, leaf, &[ca], UnixTime::now());
        let theirs = openssl_verdict(&scratch, &response);
        table.push(format!(
            "{kind}: rustls {ours:?} / openssl {}",
            if theirs.is_ok() { "good" } else { "rejected" }
        ));
        if ours.is_ok() != theirs.is_ok() {
            wrong.push(format!("{kind}: rustls {ours:?}, openssl {theirs:?}"));
        }
        if !as_expected(kind, &ours) {
            wrong.push(format!(
                "{kind}: rustls says {ours:?}, not what the kind is"
            ));
        }
    }
    // The harness itself: OpenSSL accepts the good response and refuses a revoked one.
    let good = pki.ocsp_response(OcspKind::Good).expect("good");
    let revoked = pki.ocsp_response(OcspKind::Revoked).expect("revoked");
    assert!(
        openssl_verdict(&scratch, &good).is_ok(),
        "harness: {table:#?}"
    );
    assert!(openssl_verdict(&scratch, &revoked).is_err());
    assert!(wrong.is_empty(), "{wrong:#?}\nall: {table:#?}");
}

/// One connection between a rustls server stapling `staple` and `client`: the client's
/// report, or its error.
fn handshake(
    pki: &Pki,
    staple: &[u8],
    client: BackendKind,
    ocsp: OcspMode,
    clock: Option<&ManualClock>,
) -> Result<SessionInfo, tlsresume::Error> {
    let mut ss = ServerSettings::new(pki.server.clone());
    ss.ocsp_response = Some(staple.to_vec());
    let server = backends::server(BackendKind::Rustls, ss).expect("server");
    let mut cs = ClientSettings::new(pki.roots.clone());
    cs.ocsp = ocsp;
    if let Some(clock) = clock {
        cs.clock = Arc::new(clock.clone());
    }
    let client = backends::client(client, cs).expect("client");

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server_side = thread::spawn(move || -> io::Result<()> {
        let (tcp, peer) = listener.accept()?;
        tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
        let params = ServerParams::new(peer, tcp.local_addr()?);
        let mut tls = server
            .accept(Box::new(tcp), &params)
            .map_err(io::Error::other)?;
        tls.write_all(b"220 hello\r\n")?;
        tls.flush()?;
        let mut line = String::new();
        BufReader::new(&mut tls).read_line(&mut line)?;
        let _ = tls.shutdown();
        Ok(())
    });
    let params = ClientParams::new("mx.tlsresume.test", addr);
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let result = client.connect(Box::new(tcp), &params).map(|mut tls| {
        let mut greeting = [0u8; 11];
        tls.read_exact(&mut greeting).expect("greeting");
        tls.write_all(b"QUIT\r\n").expect("quit");
        tls.flush().expect("flush");
        tls.info()
    });
    let served = server_side.join().expect("server thread");
    if result.is_ok() {
        served.expect("server side of a good connection");
    }
    result
}

#[test]
fn rustls_client_reports_every_kind_over_a_real_handshake() {
    let pki = Pki::generate().expect("throwaway PKI");
    let (leaf, ca) = (&pki.server.chain()[0], &pki.roots[0]);
    let mut wrong = Vec::new();
    for kind in OcspKind::ALL {
        let response = pki.ocsp_response(kind).expect("response");
        let direct = check_response(&response, leaf, &[ca], UnixTime::now());
        if !as_expected(kind, &direct) {
            wrong.push(format!("{kind}: checker says {direct:?}"));
        }

        let info = handshake(
            &pki,
            &response,
            BackendKind::Rustls,
            OcspMode::Request,
            None,
        )
        .expect("a requested (not required) staple never fails the connection");
        assert_eq!(info.verification, Verification::Verified, "{kind}");
        let (status, detail) = match &direct {
            Ok(()) => (OcspStatus::Verified, None),
            Err(why) => (OcspStatus::Failed, Some(why.to_string())),
        };
        if (info.ocsp, &info.ocsp_detail) != (status, &detail) {
            wrong.push(format!(
                "{kind}: handshake {} {:?}, checker {status} {detail:?}",
                info.ocsp, info.ocsp_detail
            ));
        }

        let required = handshake(
            &pki,
            &response,
            BackendKind::Rustls,
            OcspMode::Require,
            None,
        );
        if required.is_ok() != direct.is_ok() {
            wrong.push(format!("{kind}: required OCSP gives {required:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn rustls_client_applies_five_minutes_of_skew_on_the_virtual_clock() {
    let now = now_secs();
    let pki = Pki::generate().expect("throwaway PKI");
    let status_at = |staple: &[u8], t: u64| {
        let clock = ManualClock::new(tlsresume::UnixTime::from_secs(t));
        let info = handshake(
            &pki,
            staple,
            BackendKind::Rustls,
            OcspMode::Request,
            Some(&clock),
        )
        .expect("handshake");
        assert_eq!(info.verification, Verification::Verified, "at {t}");
        (info.ocsp, info.ocsp_detail)
    };
    // Made 29 days ago: nextUpdate is a day from now (the certificates last 30 days).
    let old = pki
        .ocsp_response_at(OcspKind::Good, now - 29 * DAY)
        .expect("old response");
    let next_update = now + DAY;
    assert_eq!(
        status_at(&old, next_update + 299),
        (OcspStatus::Verified, None)
    );
    let (status, detail) = status_at(&old, next_update + 300);
    assert_eq!(status, OcspStatus::Failed);
    assert!(
        detail.as_deref().is_some_and(|d| d.contains("expired")),
        "{detail:?}"
    );
    // Made two hours from now: thisUpdate is an hour from now.
    let early = pki
        .ocsp_response_at(OcspKind::Good, now + 2 * 3600)
        .expect("early response");
    let this_update = now + 3600;
    assert_eq!(
        status_at(&early, this_update - 300),
        (OcspStatus::Verified, None)
    );
    let (status, detail) = status_at(&early, this_update - 301);
    assert_eq!(status, OcspStatus::Failed);
    assert!(
        detail
            .as_deref()
            .is_some_and(|d| d.contains("not yet valid")),
        "{detail:?}"
    );
}

#[cfg(feature = "openssl")]
#[test]
fn openssl_backend_agrees_over_a_real_handshake() {
    let pki = Pki::generate().expect("throwaway PKI");
    let mut wrong = Vec::new();
    for kind in OcspKind::ALL {
        let response = pki.ocsp_response(kind).expect("response");
        let status = |client| {
            handshake(&pki, &response, client, OcspMode::Request, None)
                .expect("handshake")
                .ocsp
        };
        let (rustls, openssl) = (status(BackendKind::Rustls), status(BackendKind::Openssl));
        let agree = match kind {
            // The OpenSSL backend looks the leaf up under a SHA-1 certificate ID only
            // (docs/ocsp.md); the rustls check uses the response's hash algorithm.
            OcspKind::GoodSha256 => rustls == OcspStatus::Verified && openssl == OcspStatus::Failed,
            _ => rustls == openssl,
        };
        if !agree {
            wrong.push(format!(
                "{kind}: rustls {rustls}, openssl backend {openssl}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn truncated_and_flipped_responses_are_refused_without_panic() {
    let pki = Pki::generate().expect("throwaway PKI");
    let (leaf, ca) = (&pki.server.chain()[0], &pki.roots[0]);
    let check = |response: &[u8]| check_response(response, leaf, &[ca], UnixTime::now());
    for kind in OcspKind::ALL {
        let response = pki.ocsp_response(kind).expect("response");
        for len in 0..response.len() {
            assert!(check(&response[..len]).is_err(), "{kind} cut at {len}");
        }
        if check(&response).is_err() {
            continue;
        }
        // An accepted response: no flipped bit may keep it accepted, except in the
        // certificates it carries after the signature when the signer is the trust anchor
        // (they play no part then).
        let carried = response.windows(ca.len()).position(|w| w == ca.as_slice());
        for i in 0..response.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = response.clone();
                bad[i] ^= bit;
                let in_carried_ca = carried.is_some_and(|at| (at..at + ca.len()).contains(&i));
                if check(&bad).is_ok() && !in_carried_ca {
                    panic!("{kind}: flipping {bit:#04x} at {i} is still accepted");
                }
            }
        }
    }
    // Garbage everywhere.
    for garbage in [&b""[..], b"\x30", b"\x30\x80\x00\x00", &[0xff; 64]] {
        assert!(check_response(garbage, garbage, &[garbage], at(0)).is_err());
        assert!(check_response(garbage, leaf, &[ca], UnixTime::now()).is_err());
        let good = pki.ocsp_response(OcspKind::Good).expect("good");
        assert!(check_response(&good, garbage, &[ca], UnixTime::now()).is_err());
        assert!(check_response(&good, leaf, &[garbage], UnixTime::now()).is_err());
    }
}
