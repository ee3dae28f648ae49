//! The rustls backend's own I/O loops (the handshake, reads and writes: `io.rs`) over
//! non-blocking loopback TCP, both ends stepped in turn on one thread: every step that would
//! block says so and goes on later from where it stopped, no byte is lost or sent twice under
//! back-pressure, and the end of a connection reads as the peer ended it.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;

use tlsresume_core::*;
use tlsresume_rustls::{Client, Handshake, Server, Stream};

fn pki(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/pki")
        .join(name)
}

/// A connected pair of non-blocking loopback sockets: (client end, server end).
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    for end in [&client, &server] {
        end.set_nonblocking(true).expect("non-blocking");
        end.set_nodelay(true).expect("nodelay");
    }
    (client, server)
}

fn ends(version: ProtocolVersion) -> (Client, Server) {
    let identity = Identity::from_pem_files(&pki("server-ecdsa.pem"), &pki("server-ecdsa.key"))
        .expect("identity");
    let mut server = ServerSettings::new(identity);
    server.versions = Versions::only(version);
    let mut client = ClientSettings::new(certificates_from_pem_file(&pki("ca.pem")).expect("ca"));
    client.versions = Versions::only(version);
    (
        Client::new(client).expect("client"),
        Server::new(server).expect("server"),
    )
}

/// A side of a handshake stepped in turn with the other.
enum Step {
    Going(Handshake<TcpStream>),
    Done(Box<Stream<TcpStream>>),
}

/// Steps both handshakes in turn until both are done; how many steps would have blocked.
fn handshake(
    client: &Client,
    server: &Server,
    (c, s): (TcpStream, TcpStream),
) -> (Stream<TcpStream>, Stream<TcpStream>, usize) {
    let peer = c.local_addr().expect("addr");
    let local = s.local_addr().expect("addr");
    let params = ClientParams::new("mx.tlsresume.test", local);
    let mut sides = [
        Some(Step::Going(client.start(c, &params).expect("client start"))),
        Some(Step::Going(
            server
                .start(s, &ServerParams::new(peer, local))
                .expect("server start"),
        )),
    ];
    let mut blocked = 0;
    for _ in 0..1000 {
        for side in sides.iter_mut() {
            *side = Some(match side.take().expect("a side") {
                Step::Going(hs) => match hs.resume().expect("handshake step") {
                    Handshaking::Done(stream) => Step::Done(Box::new(stream)),
                    Handshaking::WouldBlock(hs) => {
                        blocked += 1;
                        Step::Going(hs)
                    }
                },
                done => done,
            });
        }
        if let [Some(Step::Done(_)), Some(Step::Done(_))] = &sides {
            break;
        }
    }
    match sides {
        [Some(Step::Done(c)), Some(Step::Done(s))] => (*c, *s, blocked),
        _ => panic!("the handshake did not end in 1000 steps of each side"),
    }
}

fn would_block<T>(result: io::Result<T>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[test]
fn handshakes_step_over_non_blocking_sockets_on_both_versions() {
    for version in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let (client, server) = ends(version);
        let (mut c, s, blocked) = handshake(&client, &server, pair());
        // The client's first step sends its hello and has nothing to read yet.
        assert!(blocked >= 1, "{version}: no step would have blocked");
        assert_eq!(c.info().protocol, version);
        assert_eq!(s.info().protocol, version);
        // Nothing sent yet: the read would block (after taking a TLS 1.3 ticket, if any).
        let mut byte = [0u8; 1];
        assert!(would_block(c.read(&mut byte)).is_none(), "{version}");
    }
}

#[test]
fn back_pressure_loses_and_repeats_nothing() {
    for version in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let (client, server) = ends(version);
        let (mut c, mut s, _) = handshake(&client, &server, pair());
        // More than loopback buffers hold, so the server's writes and flushes block many times
        // while the client is not reading.
        let sent: Vec<u8> = (0..16_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut offset = 0;
        let mut received = Vec::with_capacity(sent.len());
        let mut buf = vec![0u8; 70_000];
        let mut writes_blocked = 0;
        while offset < sent.len() || received.len() < sent.len() {
            if offset < sent.len() {
                let end = (offset + 100_000).min(sent.len());
                match would_block(s.write(&sent[offset..end])) {
                    Some(n) => {
                        assert!(n > 0 && n <= end - offset);
                        offset += n;
                    }
                    None => writes_blocked += 1,
                }
            } else {
                let _ = would_block(s.flush());
            }
            // The client reads only every other turn, so the server's side fills up.
            if writes_blocked % 2 == 1 || offset == sent.len() {
                if let Some(n) = would_block(c.read(&mut buf)) {
                    assert!(n > 0, "{version}: the connection ended early");
                    received.extend_from_slice(&buf[..n]);
                }
            }
        }
        assert!(writes_blocked > 0, "{version}: no write would have blocked");
        assert_eq!(received.len(), sent.len(), "{version}");
        assert!(received == sent, "{version}: the bytes received differ");
    }
}

#[test]
fn the_end_of_a_connection_reads_as_the_peer_ended_it() {
    for version in [ProtocolVersion::Tls12, ProtocolVersion::Tls13] {
        let (client, server) = ends(version);
        // close_notify after data: the data, then 0.
        let (mut c, mut s, _) = handshake(&client, &server, pair());
        loop {
            if would_block(s.write(b"221 bye\r\n")).is_some() {
                break;
            }
        }
        s.shutdown().expect("close_notify");
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match c.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{version}: {e}"),
            }
        }
        assert_eq!(got, b"221 bye\r\n", "{version}");

        // The socket closed without close_notify: an unexpected end, not a clean 0.
        let (mut c, s, _) = handshake(&client, &server, pair());
        drop(s);
        let end = loop {
            match c.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => break other,
            }
        };
        match end {
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{version}: {e}"),
            Ok(n) => panic!("{version}: an abrupt close read as {n} bytes"),
        }
    }
}

#[test]
fn bytes_that_are_not_tls_fail_the_servers_handshake_with_a_protocol_error_and_an_alert() {
    let (_, server) = ends(ProtocolVersion::Tls13);
    let (mut c, s) = pair();
    let peer = c.local_addr().expect("addr");
    let local = s.local_addr().expect("addr");
    // A handshake record header whose body is no ClientHello.
    c.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0xff])
        .expect("write");
    let mut hs = server
        .start(s, &ServerParams::new(peer, local))
        .expect("server start");
    let error = loop {
        match hs.resume() {
            Ok(Handshaking::WouldBlock(again)) => hs = again,
            Ok(Handshaking::Done(_)) => panic!("a handshake on bytes that are not TLS succeeded"),
            Err(e) => break e,
        }
    };
    assert_eq!(error.kind(), ErrorKind::Protocol, "{error}");
    // The alert that says why went out: a TLS alert record.
    let mut alert = [0u8; 7];
    let mut got = 0;
    while got < alert.len() {
        match c.read(&mut alert[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, 7, "no alert record");
    assert_eq!(alert[0], 0x15, "not an alert record: {alert:?}");
}
