//! The library as a dependency sees it, on every compiled-in backend: settings checked once in
//! core with errors naming the field, failures an application can tell apart
//! ([`Error::kind`]), and streams generic over their transport (`get_ref`/`get_mut`, `info`
//! kept current), over real loopback handshakes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use tlsresume::backends;
use tlsresume_compare::Pki;
use tlsresume_core::{
    BackendKind, ClientParams, ClientSettings, Error, ErrorKind, ManualClock, ProtocolVersion,
    ServerParams, ServerSettings, SharedClock, TicketPolicy, UnixTime, Versions,
};

const NAME: &str = "mx.tlsresume.test";

/// GnuTLS objects with different clocks may not live at once: tests that make them take turns.
fn gnutls_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

fn pki() -> Pki {
    Pki::committed().expect("committed test PKI")
}

fn setting_field(err: &Error) -> Option<&'static str> {
    match err {
        Error::Setting { field, .. } => Some(field),
        _ => None,
    }
}

#[test]
fn empty_roots_are_refused_by_every_backend_naming_the_field() {
    let _turn = gnutls_turn();
    let err = ClientSettings::builder(Vec::new())
        .build()
        .expect_err("builder refuses empty roots");
    assert_eq!(setting_field(&err), Some("roots"), "{err}");
    for kind in backends::available() {
        let err = backends::client(kind, ClientSettings::new(Vec::new()))
            .expect_err("a client without trust anchors");
        assert_eq!(setting_field(&err), Some("roots"), "{kind}: {err}");
        assert_eq!(err.kind(), ErrorKind::Config, "{kind}");
        // PEM text where DER is expected: the same error everywhere.
        let err = backends::client(kind, ClientSettings::new(vec![b"-----BEGIN CERT".to_vec()]))
            .expect_err("PEM given as DER");
        assert_eq!(setting_field(&err), Some("roots"), "{kind}: {err}");
    }
}

#[test]
fn bad_versions_and_alpn_are_refused_everywhere() {
    let _turn = gnutls_turn();
    let pki = pki();
    for kind in backends::available() {
        let mut client = ClientSettings::new(pki.roots.clone());
        client.versions = Versions {
            min: ProtocolVersion::Tls13,
            max: ProtocolVersion::Tls12,
        };
        let err = backends::client(kind, client).expect_err("empty version range");
        assert_eq!(setting_field(&err), Some("versions"), "{kind}: {err}");
        let mut server = ServerSettings::new(pki.server.clone());
        server.alpn = vec![Vec::new()];
        let err = backends::server(kind, server).expect_err("empty ALPN name");
        assert_eq!(setting_field(&err), Some("alpn"), "{kind}: {err}");
    }
}

#[test]
fn a_gnutls_server_refuses_a_rolling_policy_and_says_what_it_can_do() {
    let _turn = gnutls_turn();
    let pki = pki();
    let mut settings = ServerSettings::new(pki.server.clone());
    settings.ticket_policy = Some(TicketPolicy::OPENSSL);
    for kind in backends::available() {
        let made = backends::server(kind, settings.clone());
        match kind {
            BackendKind::Gnutls => {
                let err = made.expect_err("GnuTLS cannot roll keys");
                assert_eq!(setting_field(&err), Some("ticket_policy"), "{err}");
                let text = err.to_string();
                assert!(
                    text.contains("TicketPolicy::periodic") && text.contains("rustls"),
                    "{text}"
                );
            }
            _ => {
                made.expect("OpenSSL and rustls carry out rolling keys");
            }
        }
    }
    // Its own flavour, and periodic policies, are fine; the default is its own flavour.
    if backends::is_available(BackendKind::Gnutls) {
        let own = ServerSettings::new(pki.server.clone());
        assert_eq!(
            own.ticket_policy_for(BackendKind::Gnutls),
            TicketPolicy::GNUTLS
        );
        assert_eq!(
            own.ticket_policy_for(BackendKind::Openssl),
            TicketPolicy::OPENSSL
        );
        backends::server(BackendKind::Gnutls, own).expect("GnuTLS flavour");
        let mut periodic = ServerSettings::new(pki.server.clone());
        periodic.ticket_policy =
            Some(TicketPolicy::periodic(Duration::from_secs(3600)).expect("policy"));
        backends::server(BackendKind::Gnutls, periodic).expect("periodic policy");
    }
}

#[test]
fn a_second_gnutls_clock_is_refused_while_the_first_is_in_use() {
    if !backends::is_available(BackendKind::Gnutls) {
        eprintln!("SKIPPED: the gnutls backend is not compiled in");
        return;
    }
    let _turn = gnutls_turn();
    let pki = pki();
    let first = ManualClock::new(UnixTime::from_secs(1_800_000_000));
    let mut server = ServerSettings::new(pki.server.clone());
    server.clock = Arc::new(first.clone());
    let live = backends::server(BackendKind::Gnutls, server).expect("first clock");
    // A clone of the same clock is the same clock.
    let mut same = ClientSettings::new(pki.roots.clone());
    same.clock = Arc::new(first.clone());
    let client = backends::client(BackendKind::Gnutls, same).expect("same clock");
    // Another clock, client or server, is refused, naming the field.
    let other: SharedClock = Arc::new(ManualClock::new(UnixTime::from_secs(1)));
    let mut client_settings = ClientSettings::new(pki.roots.clone());
    client_settings.clock = other.clone();
    let err =
        backends::client(BackendKind::Gnutls, client_settings.clone()).expect_err("a second clock");
    assert_eq!(setting_field(&err), Some("clock"), "{err}");
    let mut server_settings = ServerSettings::new(pki.server.clone());
    server_settings.clock = other;
    let err = backends::server(BackendKind::Gnutls, server_settings).expect_err("a second clock");
    assert_eq!(setting_field(&err), Some("clock"), "{err}");
    // The other backends have a clock each.
    for kind in backends::available() {
        if kind != BackendKind::Gnutls {
            backends::client(kind, client_settings.clone()).expect("own clock");
        }
    }
    // Once the first objects are gone, the other clock may be used.
    drop(live);
    drop(client);
    backends::client(BackendKind::Gnutls, client_settings).expect("first clock released");
}

/// A server thread answering one connection: "hello", then waits for "ok".
fn serve_once(kind: BackendKind, pki: &Pki, listener: TcpListener) -> thread::JoinHandle<()> {
    let server = backends::server(kind, ServerSettings::new(pki.server.clone())).expect("server");
    thread::spawn(move || {
        let Ok((tcp, peer)) = listener.accept() else {
            return;
        };
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
        let local = tcp.local_addr().expect("local");
        if let Ok(mut tls) = server.accept(Box::new(tcp), &ServerParams::new(peer, local)) {
            let _ = tls.write_all(b"hello");
            let _ = tls.flush();
            let mut buf = [0u8; 2];
            let _ = tls.read_exact(&mut buf);
            let _ = tls.shutdown();
        }
    })
}

#[test]
fn dyn_streams_give_the_socket_back() {
    let _turn = gnutls_turn();
    let pki = pki();
    for kind in backends::available() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = serve_once(kind, &pki, listener);
        let client =
            backends::client(kind, ClientSettings::new(pki.roots.clone())).expect("client");
        let tcp = TcpStream::connect(addr).expect("connect");
        let mut tls = client
            .connect(Box::new(tcp), &ClientParams::new(NAME, addr))
            .expect("handshake");
        let socket = tls
            .transport_mut::<TcpStream>()
            .expect("the TcpStream is reachable");
        socket
            .set_read_timeout(Some(Duration::from_secs(7)))
            .expect("timeout");
        assert_eq!(socket.peer_addr().expect("peer"), addr, "{kind}");
        assert_eq!(
            tls.transport::<TcpStream>()
                .and_then(|t| t.read_timeout().ok().flatten()),
            Some(Duration::from_secs(7)),
            "{kind}"
        );
        assert!(tls.transport::<String>().is_none());
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).expect("read");
        tls.write_all(b"ok").expect("write");
        let _ = tls.shutdown();
        handle.join().expect("server thread");
    }
}

#[test]
fn an_untrusted_certificate_is_a_certificate_error_on_every_backend() {
    let _turn = gnutls_turn();
    let pki = pki();
    for kind in backends::available() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server =
            backends::server(kind, ServerSettings::new(pki.untrusted.clone())).expect("server");
        let handle = thread::spawn(move || {
            if let Ok((tcp, peer)) = listener.accept() {
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                let local = tcp.local_addr().expect("local");
                let _ = server.accept(Box::new(tcp), &ServerParams::new(peer, local));
            }
        });
        let client =
            backends::client(kind, ClientSettings::new(pki.roots.clone())).expect("client");
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let err = client
            .connect(Box::new(tcp), &ClientParams::new(NAME, addr))
            .expect_err("untrusted server");
        assert_eq!(err.kind(), ErrorKind::Certificate, "{kind}: {err}");
        assert!(!err.is_transient(), "{kind}");
        handle.join().expect("server thread");
    }
}

#[test]
fn a_silent_server_is_an_io_timeout_on_every_backend() {
    let _turn = gnutls_turn();
    let pki = pki();
    for kind in backends::available() {
        // Accepts the TCP connection and never says a word.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client =
            backends::client(kind, ClientSettings::new(pki.roots.clone())).expect("client");
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let err = client
            .connect(Box::new(tcp), &ClientParams::new(NAME, addr))
            .expect_err("no answer");
        assert_eq!(err.kind(), ErrorKind::Io, "{kind}: {err}");
        let io = err.as_io().expect("an I/O error");
        assert!(
            matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{kind}: {io:?}"
        );
        assert!(err.is_transient());
        drop(listener);
    }
}

#[test]
fn a_client_refused_by_the_server_sees_an_alert() {
    // A TLS 1.3-only server and a TLS 1.2-only client: the server alerts (protocol_version).
    let _turn = gnutls_turn();
    let pki = pki();
    for kind in backends::available() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut ss = ServerSettings::new(pki.server.clone());
        ss.versions = Versions::only(ProtocolVersion::Tls13);
        let server = backends::server(kind, ss).expect("server");
        let handle = thread::spawn(move || {
            if let Ok((tcp, peer)) = listener.accept() {
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                let local = tcp.local_addr().expect("local");
                let _ = server.accept(Box::new(tcp), &ServerParams::new(peer, local));
            }
        });
        let mut cs = ClientSettings::new(pki.roots.clone());
        cs.versions = Versions::only(ProtocolVersion::Tls12);
        let client = backends::client(kind, cs).expect("client");
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let err = client
            .connect(Box::new(tcp), &ClientParams::new(NAME, addr))
            .expect_err("no common version");
        assert_eq!(err.kind(), ErrorKind::Alert, "{kind}: {err}");
        assert!(
            std::error::Error::source(&err).is_some(),
            "{kind}: library error kept"
        );
        handle.join().expect("server thread");
    }
}

/// One connection through a backend's own types, on a plain `TcpStream` (no boxing): the
/// stream gives the socket back, and `info()` picks up the TLS 1.3 ticket that arrives with
/// the first read.
macro_rules! typed_roundtrip {
    ($name:ident, $feature:literal, $krate:ident) => {
        #[cfg(feature = $feature)]
        #[test]
        fn $name() {
            use tlsresume::$krate::{Client, Server};
            use tlsresume_core::Resumption;
            let _turn = gnutls_turn();
            let pki = pki();
            let server = Server::new(ServerSettings::new(pki.server.clone())).expect("server");
            let mut settings = ClientSettings::new(pki.roots.clone());
            settings.versions = Versions::only(ProtocolVersion::Tls13);
            let client = Client::new(settings).expect("client");
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let handle = thread::spawn(move || {
                let (tcp, peer) = listener.accept().expect("accept");
                let local = tcp.local_addr().expect("local");
                let mut tls = server
                    .accept(tcp, &ServerParams::new(peer, local))
                    .expect("server handshake");
                // The transport is the TcpStream itself.
                assert_eq!(tls.get_ref().peer_addr().expect("peer"), peer);
                tls.write_all(b"hello").expect("write");
                let mut buf = [0u8; 2];
                tls.read_exact(&mut buf).expect("read");
                let _ = tls.shutdown();
            });
            let tcp = TcpStream::connect(addr).expect("connect");
            let mut tls = client
                .connect(tcp, &ClientParams::new(NAME, addr))
                .expect("client handshake");
            tls.get_mut()
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            assert_eq!(tls.get_ref().peer_addr().expect("peer"), addr);
            let mut buf = [0u8; 5];
            tls.read_exact(&mut buf).expect("read");
            assert!(
                tls.info().resumption.contains(Resumption::SERVER_TICKET),
                "ticket stored on the read: {}",
                tls.info().resumption
            );
            tls.write_all(b"ok").expect("write");
            let _ = tls.shutdown();
            handle.join().expect("server thread");
        }
    };
}

typed_roundtrip!(openssl_streams_are_generic, "openssl", openssl);
typed_roundtrip!(gnutls_streams_are_generic, "gnutls", gnutls);
typed_roundtrip!(rustls_streams_are_generic, "rustls", rustls);
