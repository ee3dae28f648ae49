//! Cipher settings over real handshakes on loopback, every backend pair: one suite named on
//! either end is the suite the libraries negotiate (as each reports it), disjoint lists fail
//! the handshake with an error naming the reason, a list a backend cannot carry out is refused
//! when the context is made, naming the backend, and a session stored under one client list is
//! not offered under another; a client offering only `DHE` suites is served by OpenSSL and
//! GnuTLS (their servers have Diffie-Hellman parameters).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

#[allow(dead_code)] // only its `gnutls_turn` is used here
mod common;

use common::gnutls_turn;
use tlsresume::backends;
use tlsresume_compare::Pki;
use tlsresume_core::settings::ciphers::CipherList;
use tlsresume_core::{
    BackendKind, ClientContext, ClientParams, ClientSettings, Error, ErrorKind, ServerContext,
    ServerParams, ServerSettings,
};

/// What each end of one connection saw: the negotiated suite's IANA name (or the error).
struct Seen {
    client: Result<(String, bool), Error>,
    server: Result<String, Error>,
}

/// One connection from `client` to `server` on a new port; both ends' view of it.
fn handshake(server: &dyn ServerContext, client: &dyn ClientContext) -> Seen {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    handshake_on(&listener, server, client)
}

/// One connection from `client` to `server` listening on `listener` (the port is part of the
/// session cache key).
fn handshake_on(
    listener: &TcpListener,
    server: &dyn ServerContext,
    client: &dyn ClientContext,
) -> Seen {
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel();
    thread::scope(|scope| {
        scope.spawn(|| {
            let Ok((tcp, _)) = listener.accept() else {
                return;
            };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
            let (Ok(peer), Ok(local)) = (tcp.peer_addr(), tcp.local_addr()) else {
                return;
            };
            let result = server
                .accept(Box::new(tcp), &ServerParams::new(peer, local))
                .map(|mut tls| {
                    let iana = tls.info().cipher.iana.to_string();
                    let _ = tls.write_all(b"hi");
                    let _ = tls.flush();
                    let mut buf = [0u8; 2];
                    let _ = tls.read_exact(&mut buf);
                    let _ = tls.shutdown();
                    iana
                });
            let _ = tx.send(result);
        });
        let tcp = TcpStream::connect(addr).expect("connect");
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
        let client = client
            .connect(Box::new(tcp), &ClientParams::new("mx.tlsresume.test", addr))
            .and_then(|mut tls| {
                let mut buf = [0u8; 2];
                tls.read_exact(&mut buf)?;
                tls.write_all(b"ok")?;
                let info = tls.info();
                let seen = (info.cipher.iana.to_string(), info.resumed);
                let _ = tls.shutdown();
                Ok(seen)
            });
        let server = rx
            .recv_timeout(Duration::from_secs(15))
            .unwrap_or_else(|_| Err(Error::Config("the server end did not finish".into())));
        Seen { client, server }
    })
}

fn list(text: &str) -> CipherList {
    text.parse().expect("a valid list")
}

fn server(
    kind: BackendKind,
    pki: &Pki,
    ciphers: Option<&str>,
) -> std::sync::Arc<dyn ServerContext> {
    let mut settings = ServerSettings::new(pki.server.clone());
    settings.ciphers = ciphers.map(list);
    backends::server(kind, settings).expect("server")
}

fn client(
    kind: BackendKind,
    pki: &Pki,
    ciphers: Option<&str>,
) -> std::sync::Arc<dyn ClientContext> {
    let mut settings = ClientSettings::new(pki.roots.clone());
    settings.ciphers = ciphers.map(list);
    backends::client(kind, settings).expect("client")
}

/// Both ends completed the handshake and their libraries report `suite`.
fn assert_negotiated(seen: Seen, suite: &str, what: &str) {
    let (iana, _) = seen
        .client
        .unwrap_or_else(|e| panic!("{what}: client: {e}"));
    let on_server = seen
        .server
        .unwrap_or_else(|e| panic!("{what}: server: {e}"));
    assert_eq!(iana, suite, "{what}: the client's library says");
    assert_eq!(on_server, suite, "{what}: the server's library says");
}

/// One TLS 1.3 and one TLS 1.2 suite (the committed server certificate is ECDSA), neither the
/// libraries' first choice by default.
const ONE_SUITE: [&str; 2] = [
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
];

#[test]
fn one_suite_on_either_end_is_the_suite_negotiated_on_every_pair() {
    let _turn = gnutls_turn();
    let pki = Pki::committed().expect("PKI");
    for s in backends::available() {
        for c in backends::available() {
            for suite in ONE_SUITE {
                for (server_list, client_list) in [(Some(suite), None), (None, Some(suite))] {
                    let seen = handshake(
                        server(s, &pki, server_list).as_ref(),
                        client(c, &pki, client_list).as_ref(),
                    );
                    let what = format!("{s} server {server_list:?}, {c} client {client_list:?}");
                    assert_negotiated(seen, suite, &what);
                }
            }
        }
    }
}

#[test]
fn disjoint_lists_fail_the_handshake_on_every_pair() {
    let _turn = gnutls_turn();
    let pki = Pki::committed().expect("PKI");
    for s in backends::available() {
        for c in backends::available() {
            for (server_list, client_list) in [
                ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"),
                (
                    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                ),
            ] {
                let seen = handshake(
                    server(s, &pki, Some(server_list)).as_ref(),
                    client(c, &pki, Some(client_list)).as_ref(),
                );
                let what = format!("{s} server {server_list}, {c} client {client_list}");
                let client_err = match seen.client {
                    Ok(_) => panic!("{what}: the handshake completed"),
                    Err(e) => e,
                };
                let server_err = match seen.server {
                    Ok(_) => panic!("{what}: the server completed the handshake"),
                    Err(e) => e,
                };
                eprintln!("{what}:\n  client: {client_err}\n  server: {server_err}");
                assert!(
                    matches!(client_err.kind(), ErrorKind::Alert | ErrorKind::Protocol),
                    "{what}: client: {:?} {client_err}",
                    client_err.kind()
                );
                let text = server_err.to_string().to_ascii_lowercase();
                assert!(
                    text.contains("cipher")
                        || text.contains("no shared")
                        || text.contains("incompatible"),
                    "{what}: the server's error names the reason: {server_err}"
                );
            }
        }
    }
}

#[test]
fn a_list_a_backend_cannot_carry_out_is_refused_naming_the_backend() {
    let _turn = gnutls_turn();
    let pki = Pki::committed().expect("PKI");
    // rustls has no CBC suites.
    let cbc = "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA";
    // GnuTLS restricts by cipher, MAC and key exchange: these two suites' parts also allow
    // TLS_AES_256_GCM_SHA384 and TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256.
    let mixed = "TLS_AES_128_GCM_SHA256:TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384";
    for kind in backends::available() {
        let refused: &[&str] = match kind {
            BackendKind::Rustls => &[cbc],
            BackendKind::Gnutls => &[mixed],
            _ => &[],
        };
        for text in refused {
            let mut s = ServerSettings::new(pki.server.clone());
            s.ciphers = Some(list(text));
            let mut c = ClientSettings::new(pki.roots.clone());
            c.ciphers = Some(list(text));
            let refusals = [
                backends::server(kind, s).map(|_| "server"),
                backends::client(kind, c).map(|_| "client"),
            ];
            for refusal in refusals {
                let err = refusal.expect_err("refused when made");
                assert_eq!(err.kind(), ErrorKind::Config, "{kind}: {err}");
                let msg = err.to_string();
                assert!(msg.contains("ciphers"), "{kind}: names the setting: {msg}");
                assert!(
                    msg.contains(&format!("the {kind} backend")),
                    "{kind}: names the backend: {msg}"
                );
                assert!(
                    msg.contains("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
                    "{kind}: names what it can do: {msg}"
                );
            }
        }
        // Every backend carries out the lists the others refuse where its library can.
        if kind != BackendKind::Rustls {
            server(kind, &pki, Some(cbc));
            client(kind, &pki, Some(cbc));
        }
        if kind != BackendKind::Gnutls {
            server(kind, &pki, Some(mixed));
            client(kind, &pki, Some(mixed));
        }
    }
}

#[test]
fn a_session_stored_under_one_client_list_is_not_offered_under_another() {
    let _turn = gnutls_turn();
    let pki = Pki::committed().expect("PKI");
    for kind in backends::available() {
        let server = server(kind, &pki, None);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let store = std::sync::Arc::new(tlsresume_core::MemoryStore::default());
        let make = |ciphers: &str| {
            let mut settings = ClientSettings::new(pki.roots.clone());
            settings.ciphers = Some(list(ciphers));
            settings.store = store.clone();
            backends::client(kind, settings).expect("client")
        };
        let first = make("TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256");
        let resumed = |c: &dyn ClientContext| {
            let seen = handshake_on(&listener, server.as_ref(), c);
            seen.client.unwrap_or_else(|e| panic!("{kind}: {e}")).1
        };
        assert!(!resumed(first.as_ref()), "{kind}: first is full");
        assert!(resumed(first.as_ref()), "{kind}: same list resumes");
        let other = make("TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384");
        assert!(
            !resumed(other.as_ref()),
            "{kind}: another list (another order) is not offered the session"
        );
        assert!(resumed(other.as_ref()), "{kind}: its own session resumes");
    }
}

/// A TLS 1.2 client that offers finite-field Diffie-Hellman suites only (`DHE_RSA`) completes
/// its handshake with an RSA certificate: the libraries negotiate these suites when the server
/// has DH parameters (`openssl s_server` and Exim give them by default), and an MTA that
/// refused such a client would send its mail in clear, or not at all. rustls has no `DHE`
/// suite at either end.
#[test]
fn a_client_offering_only_dhe_suites_completes_its_handshake() {
    let _turn = gnutls_turn();
    let pki = Pki::committed_rsa().expect("PKI");
    let dhe = [BackendKind::Openssl, BackendKind::Gnutls];
    let kinds: Vec<_> = backends::available()
        .into_iter()
        .filter(|k| dhe.contains(k))
        .collect();
    for &s in &kinds {
        for &c in &kinds {
            for suite in [
                "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
            ] {
                let seen = handshake(
                    server(s, &pki, None).as_ref(),
                    client(c, &pki, Some(suite)).as_ref(),
                );
                assert_negotiated(
                    seen,
                    suite,
                    &format!("{s} server, {c} client: {suite} only"),
                );
            }
        }
    }
}
