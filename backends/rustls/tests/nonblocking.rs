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

/// What `r` (non-blocking) gives until its end, or until `enough` of it came when nothing more
/// is ready now; a test fails rather than waits more than 30 seconds for it.
fn read_until(r: &mut impl Read, enough: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if enough(&got) {
                    return got;
                }
                assert!(std::time::Instant::now() < deadline, "nothing more in 30 s");
                std::thread::yield_now();
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
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
        assert_eq!(read_until(&mut c, |_| false), b"221 bye\r\n", "{version}");

        // The socket closed without close_notify: an unexpected end, not a clean 0.
        let (mut c, s, _) = handshake(&client, &server, pair());
        drop(s);
        let mut buf = [0u8; 64];
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
    let alert = read_until(&mut c, |got| got.len() >= 7);
    assert_eq!(alert.len(), 7, "no alert record");
    assert_eq!(alert[0], 0x15, "not an alert record: {alert:?}");
}

/// A small deterministic generator (xorshift), so a failing case can be run again.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// `flight` damaged one way or another: bytes flipped, cut short, doubled, or grown.
fn damaged(flight: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = flight.to_vec();
    match rng.below(4) {
        0 => {
            for _ in 0..=rng.below(8) {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
        }
        1 => bytes.truncate(rng.below(bytes.len())),
        2 => bytes.extend_from_slice(flight),
        _ => bytes.extend((0..rng.below(300)).map(|_| rng.next() as u8)),
    }
    bytes
}

/// What one side sends first over a fresh pair when the other side answers nothing: the client's
/// hello, or (with `answer`) the server's flight in answer to `answer`.
fn first_flight(start: impl FnOnce(TcpStream) -> Handshake<TcpStream>, answer: &[u8]) -> Vec<u8> {
    let (mut peer, end) = pair();
    peer.write_all(answer).expect("answer");
    let hs = start(end);
    // One step: it writes its flight and stops for want of more.
    let _held = match hs.resume() {
        Ok(Handshaking::WouldBlock(hs)) => hs,
        Ok(Handshaking::Done(_)) => panic!("a handshake ended on one flight"),
        Err(e) => panic!("first step failed: {e}"),
    };
    read_until(&mut peer, |flight| !flight.is_empty())
}

/// Feeds `bytes` then the end of the stream to a handshake: it must end in an error (it cannot
/// finish without its peer), in a bounded number of steps, without a panic escaping.
fn refuses(hs: Handshake<TcpStream>, mut peer: TcpStream, bytes: &[u8]) -> Error {
    peer.set_nonblocking(false).expect("blocking");
    peer.write_all(bytes).expect("write");
    peer.shutdown(std::net::Shutdown::Write).expect("shutdown");
    peer.set_nonblocking(true).expect("non-blocking");
    let mut hs = hs;
    let mut sink = [0u8; 4096];
    for _ in 0..10_000 {
        // What it answers is read and dropped, so its writes never block for good.
        while matches!(peer.read(&mut sink), Ok(n) if n > 0) {}
        match hs.resume() {
            Ok(Handshaking::WouldBlock(again)) => hs = again,
            Ok(Handshaking::Done(_)) => panic!("a handshake without its peer finished"),
            Err(e) => return e,
        }
    }
    panic!("no end after 10 000 steps on {} bytes", bytes.len());
}

/// Client parameters for a connection over `end` (to its peer's address).
fn client_params(end: &TcpStream) -> ClientParams {
    ClientParams::new("mx.tlsresume.test", end.peer_addr().expect("addr"))
}

/// Server parameters for a connection over `end`.
fn server_params(end: &TcpStream) -> ServerParams {
    ServerParams::new(
        end.peer_addr().expect("addr"),
        end.local_addr().expect("addr"),
    )
}

#[test]
fn damaged_flights_end_each_side_in_an_error_never_a_panic_or_a_hang() {
    for (version, seed) in [
        (ProtocolVersion::Tls12, 0x9E37_79B9_7F4A_7C15),
        (ProtocolVersion::Tls13, 0xD1B5_4A32_D192_ED03),
    ] {
        let (client, server) = ends(version);
        let start_client = |end: TcpStream| {
            let params = client_params(&end);
            client.start(end, &params).expect("client start")
        };
        let start_server = |end: TcpStream| {
            let params = server_params(&end);
            server.start(end, &params).expect("server start")
        };
        let hello = first_flight(start_client, &[]);
        let reply = first_flight(start_server, &hello);
        assert!(
            hello.len() > 50 && reply.len() > 50,
            "{version}: flights recorded"
        );
        let mut rng = Rng(seed);
        let mut kinds = std::collections::BTreeMap::new();
        for _ in 0..150 {
            let (peer, end) = pair();
            let e = refuses(start_server(end), peer, &damaged(&hello, &mut rng));
            *kinds.entry(format!("server {:?}", e.kind())).or_insert(0) += 1;
            let (peer, end) = pair();
            let e = refuses(start_client(end), peer, &damaged(&reply, &mut rng));
            *kinds.entry(format!("client {:?}", e.kind())).or_insert(0) += 1;
        }
        // The damage reached rustls's parser on both sides (refused as a protocol error), and
        // some flights were cut short (the end of the stream mid-handshake).
        for side in ["server", "client"] {
            assert!(
                kinds.contains_key(&format!("{side} Protocol")),
                "{version}: {kinds:?}"
            );
        }
        assert!(
            kinds.keys().any(|k| k.ends_with("Io")),
            "{version}: {kinds:?}"
        );
    }
}
