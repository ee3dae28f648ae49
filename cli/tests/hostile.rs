//! Hostile peers against `serve` and `probe`, over loopback, bounded in count and time: a
//! tarpit holding the probe, silent peers (timeouts said as timeouts, in the log and in
//! `probe --json`), one address holding more than its share (`--max-per-address`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::{run, Server};

const BACKENDS: [&str; 3] = ["openssl", "gnutls", "rustls"];

/// A server that reads what comes first and answers `answer` five bytes a second, for up to
/// `hold`; gives its address.
fn tarpit(answer: &'static [u8], hold: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    thread::spawn(move || {
        let Ok((mut tcp, _)) = listener.accept() else {
            return;
        };
        let _ = tcp.set_read_timeout(Some(Duration::from_millis(500)));
        let mut first = [0u8; 4096];
        let _ = tcp.read(&mut first);
        let started = Instant::now();
        for byte in answer.iter().cycle() {
            if started.elapsed() > hold || tcp.write_all(&[*byte]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(200));
        }
    });
    addr
}

/// The connection object of a `probe --json` run (its first line).
fn connection_json(stdout: &str) -> serde_json::Value {
    let first = stdout.lines().next().unwrap_or_default();
    serde_json::from_str(first).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// `probe --timeout 3` against a server answering its ClientHello five bytes a second (a
/// handshake record announcing 16 KiB, then its body) ends at its overall deadline (twice
/// --timeout) with an I/O error saying the connection deadline passed, on every backend.
#[test]
fn probe_against_a_tarpit_ends_at_its_deadline() {
    let mut record = vec![22u8, 3, 3, 0x40, 0x00];
    record.extend([0u8; 59]);
    let record: &'static [u8] = record.leak();
    let runs: Vec<_> = BACKENDS
        .iter()
        .map(|backend| {
            let addr = tarpit(record, Duration::from_secs(30));
            thread::spawn(move || {
                let started = Instant::now();
                let r = run(&[
                    "probe",
                    &addr,
                    "--backend",
                    backend,
                    "--timeout",
                    "3",
                    "--count",
                    "1",
                    "--json",
                ]);
                (backend, started.elapsed(), r)
            })
        })
        .collect();
    for handle in runs {
        let (backend, took, r) = handle.join().expect("probe run");
        assert_eq!(r.code, Some(1), "{backend}: {r:?}");
        let v = connection_json(&r.stdout);
        let error = v["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("the connection deadline passed"),
            "{backend}: {r:?}"
        );
        assert_eq!(v["error_kind"], "io", "{backend}: {r:?}");
        assert!(
            took >= Duration::from_secs(6) && took < Duration::from_secs(8),
            "{backend}: probe ended after {took:?}"
        );
    }
}

/// A server that says nothing: `probe --starttls smtp` says its idle read timeout passed (not
/// "Resource temporarily unavailable"), as text and in `--json` (an I/O failure).
#[test]
fn probe_says_its_idle_timeout_passed() {
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr").to_string();
    let held = thread::spawn(move || {
        let conns: Vec<TcpStream> = silent.incoming().take(2).filter_map(Result::ok).collect();
        thread::sleep(Duration::from_secs(3));
        drop(conns);
    });
    let base = ["probe", &addr, "--starttls", "smtp", "--timeout", "1"];
    let text = run(&[&base[..], &["--count", "1"]].concat());
    assert!(
        text.stdout
            .contains("failed: SMTP before STARTTLS: the idle read timeout passed"),
        "{text:?}"
    );
    let json = run(&[&base[..], &["--count", "1", "--json"]].concat());
    let v = connection_json(&json.stdout);
    assert_eq!(
        v["error"], "SMTP before STARTTLS: the idle read timeout passed",
        "{json:?}"
    );
    assert_eq!(v["error_kind"], "io", "{json:?}");
    let _ = held.join();
}

/// A client that connects and says nothing: `serve` logs that the idle read timeout passed
/// during the handshake (TLS from the first byte, every backend) and before STARTTLS.
#[test]
fn serve_says_its_idle_timeout_passed() {
    for backend in BACKENDS {
        let srv = Server::start(&["--backend", backend, "--timeout", "1"]);
        let _quiet = TcpStream::connect(&srv.addr).expect("connect");
        let line = srv.line();
        assert!(
            line.contains(
                "TLS error on connection: I/O: the idle read timeout passed during the handshake"
            ),
            "{backend}: {line}"
        );
    }
    let srv = Server::start(&["--starttls", "smtp", "--timeout", "1"]);
    let _quiet = TcpStream::connect(&srv.addr).expect("connect");
    let line = srv.line();
    assert!(
        line.contains("SMTP error before STARTTLS: the idle read timeout passed"),
        "{line}"
    );
}

/// A TCP connection to `addr` from the loopback address `from` (127.0.0.2, …: every 127/8
/// address is this host's, so one test plays several clients).
fn connect_from(from: &str, addr: &str) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let from: SocketAddr = format!("{from}:0").parse().expect("source address");
    let to: SocketAddr = addr.parse().expect("server address");
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.bind(&from.into()).expect("bind the source address");
    socket.connect(&to.into()).expect("connect");
    let tcp = TcpStream::from(socket);
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    tcp
}

/// What the server says first (up to 200 bytes, or until it closes).
fn first_words(tcp: &mut TcpStream) -> String {
    let mut buf = [0u8; 200];
    let n = tcp.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Past `--max-per-address` in clear SMTP, an address gets `421` and a close, logged once for
/// the burst; another address is served meanwhile; a freed place serves the first again.
#[test]
fn one_address_past_its_share_gets_421_logged_once() {
    let srv = Server::start(&[
        "--starttls",
        "smtp",
        "--max-concurrent",
        "50",
        "--max-per-address",
        "3",
    ]);
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut tcp = connect_from("127.0.0.2", &srv.addr);
            assert!(first_words(&mut tcp).starts_with("220 "));
            tcp
        })
        .collect();
    for _ in 0..5 {
        let mut refused = connect_from("127.0.0.2", &srv.addr);
        let mut reply = String::new();
        refused.read_to_string(&mut reply).expect("421 then close");
        assert!(
            reply.starts_with("421 ") && reply.contains("from your address"),
            "{reply:?}"
        );
    }
    // Another address is served while the first is refused.
    let mut other = connect_from("127.0.0.3", &srv.addr);
    assert!(first_words(&mut other).starts_with("220 "));
    // One line for the burst of five, then the line of a held connection ending.
    let mut first = held.remove(0);
    first.write_all(b"QUIT\r\n").expect("quit");
    let _ = first_words(&mut first);
    let burst = srv.line();
    assert!(
        burst.starts_with("H=[127.0.0.2]:")
            && burst.contains("refused with 421: 3 connections already open from this address (--max-per-address 3)"),
        "{burst}"
    );
    let next = srv.line();
    assert!(
        next.starts_with("H=[127.0.0.2]:") && !next.contains("refused"),
        "only one line for the burst: {next}"
    );
    // Its place is free again (the worker ends just after its line: try for a few seconds).
    let started = Instant::now();
    loop {
        let mut again = connect_from("127.0.0.2", &srv.addr);
        if first_words(&mut again).starts_with("220 ") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never served again"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// With TLS from the first byte, a connection past `--max-per-address` is closed at once
/// (before any handshake), while another address completes a handshake.
#[test]
fn one_address_past_its_share_is_closed_with_tls_first() {
    let srv = Server::start(&["--max-concurrent", "50", "--max-per-address", "2"]);
    let _held: Vec<TcpStream> = (0..2)
        .map(|_| connect_from("127.0.0.2", &srv.addr))
        .collect();
    thread::sleep(Duration::from_millis(200));
    let mut refused = connect_from("127.0.0.2", &srv.addr);
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = refused.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without a byte");
    assert!(started.elapsed() < Duration::from_secs(2), "closed at once");
    let line = srv.line();
    assert!(
        line.starts_with("H=[127.0.0.2]:") && line.contains("closed: 2 connections already open"),
        "{line}"
    );
    let client = common::tls_client("rustls");
    let tcp = connect_from("127.0.0.3", &srv.addr);
    let peer: SocketAddr = srv.addr.parse().expect("addr");
    let tls = client.connect(
        Box::new(tcp),
        &tlsresume::ClientParams::new("mx.tlsresume.test", peer),
    );
    assert!(tls.is_ok(), "another address is served: {:?}", tls.err());
}
