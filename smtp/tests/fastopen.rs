//! TCP Fast Open through the SMTP client on loopback, on both fronts (the blocking client and
//! the tokio one), with the kernel's own word on each side and the SYNs captured off the
//! wire: the second connection's early flight goes in the SYN when the kernel allows it; with
//! no cookie it goes after the handshake; a server that does not take it gets it after the
//! handshake; and the same deliveries go the normal way, saying why, when the kernel forbids
//! it.
//!
//! The tests set `net.ipv4.tcp_fastopen` for their run and restore it, capture with `tcpdump`
//! and forget a cookie with `ip tcp_metrics` (Debian packages `tcpdump`, `iproute2`), which
//! needs root; where they cannot, they fail under `CI` and say SKIPPED elsewhere.

#[path = "common/capture.rs"]
mod capture;
mod common;
#[macro_use]
#[path = "common/fronts.rs"]
mod fronts;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Command;
use std::time::Duration;

use capture::{skip, Capture};
use common::{ConnPlan, ServerConfig, TestServer};
use fronts::{Front, Sender};
use tlsresume_smtp::fastopen::{self, Accepted, KernelSetting, Refusal, ScopedSetting};
use tlsresume_smtp::{ClientConfig, Delivery, FastOpen, Message, Stage, TlsUpgrade};

const OFFER: &[&str] = &["PIPELINING", "PIPECONNECT", "8BITMIME"];
const OFFER_TLS: &[&str] = &["PIPELINING", "PIPECONNECT", "STARTTLS"];

/// What the early flight of [`message`] in clear starts with.
const CLEAR_FLIGHT: &[u8] = b"EHLO client.test\r\nMAIL FROM:<sender@client.test>";

/// Loopback addresses of the tests that forget their cookies: no other test speaks to them.
const NO_COOKIE_HOST: Ipv4Addr = Ipv4Addr::new(127, 84, 79, 1);
const NOT_TAKEN_HOST: Ipv4Addr = Ipv4Addr::new(127, 84, 79, 2);

fn message() -> Message {
    Message {
        mail_from: "sender@client.test".into(),
        rcpt_to: vec!["one@server.test".into()],
        content: b"Subject: fast open\n\nbody\n".to_vec(),
        dsn: Default::default(),
    }
}

/// A client on `front` that pipelines early and tries Fast Open with every server.
fn client(front: Front) -> Sender {
    let mut config = ClientConfig::new("client.test").expect("name");
    config.hosts_pipe_connect = "*".parse().expect("host list");
    config.hosts_try_fastopen = "*".parse().expect("host list");
    config.timeout = Duration::from_secs(10);
    Sender::new(front, config)
}

/// The kernel's setting at `value` for the test, or `None` (SKIPPED; a failure under `CI`).
fn kernel_at(value: u32) -> Option<ScopedSetting> {
    KernelSetting(value)
        .set_for_now()
        .map_err(|e| {
            skip(&format!(
                "cannot set net.ipv4.tcp_fastopen to {value} (needs root): {e}"
            ))
        })
        .ok()
}

/// A server in clear offering early pipelining on `host`, Fast Open on its listener with
/// `fast_open`.
fn clear_server(host: Ipv4Addr, fast_open: bool) -> TestServer {
    let listener = TcpListener::bind((host, 0)).expect("bind");
    if fast_open {
        fastopen::enable_on_listener(&listener, 16).expect("TCP_FASTOPEN on the listener");
    }
    TestServer::start_on(
        listener,
        ServerConfig::clear(vec![ConnPlan::new(OFFER, &[])], Duration::from_millis(500)),
    )
}

/// A capture of the SYNs to `server`'s port, or `None` (skipped).
fn capture(server: &TestServer) -> Option<Capture> {
    Capture::start(server.addr.port())
}

/// One delivery to `server`, `tls` for STARTTLS.
fn deliver(client: &Sender, server: &TestServer, tls: Option<&TlsUpgrade>) -> Delivery {
    client
        .connect(server.addr, None, tls, &message())
        .expect("delivery")
}

/// Two deliveries to `server` on `front` (`tls` for STARTTLS) and the two SYNs' payloads;
/// `None` when the capture cannot run (skipped).
fn twice(
    front: Front,
    server: &TestServer,
    tls: Option<&TlsUpgrade>,
) -> Option<(Delivery, Delivery, Vec<Vec<u8>>)> {
    let capture = capture(server)?;
    let client = client(front);
    let first = deliver(&client, server, tls);
    let second = deliver(&client, server, tls);
    let syns = capture.payloads();
    assert_eq!(syns.len(), 2, "two SYNs: {syns:?}");
    Some((first, second, syns))
}

/// The kernel forgets the Fast Open cookie it holds for `host` (`ip tcp_metrics delete`);
/// `false` when it cannot (skipped).
fn forget_cookie(host: Ipv4Addr) -> bool {
    let host = host.to_string();
    match Command::new("ip")
        .args(["tcp_metrics", "delete", &host])
        .output()
    {
        // Nothing to forget is fine too.
        Ok(out)
            if out.status.success() || String::from_utf8_lossy(&out.stderr).contains("No such") =>
        {
            true
        }
        Ok(out) => {
            skip(&format!(
                "ip tcp_metrics delete {host}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            false
        }
        Err(e) => {
            skip(&format!("ip cannot run (Debian package iproute2): {e}"));
            false
        }
    }
}

/// The first connection had nothing to send before the banner: its SYN carried nothing and
/// asked for a cookie (or carried one the kernel kept from an earlier connection).
fn assert_first_sent_nothing(first: &Delivery, syn: &[u8]) {
    assert!(
        matches!(first.fast_open, FastOpen::NoCookie | FastOpen::NoData),
        "{:?}",
        first.fast_open
    );
    assert!(first.sent_early.is_empty());
    assert!(syn.is_empty(), "{:?}", String::from_utf8_lossy(syn));
}

fronts! {
fn the_early_flight_goes_in_the_syn_when_the_kernel_allows_it(front) {
    let Some(_kernel) = kernel_at(3) else { return };
    let server = clear_server(Ipv4Addr::LOCALHOST, true);
    let Some((first, second, syns)) = twice(front, &server, None) else { return };
    assert_first_sent_nothing(&first, &syns[0]);
    // The second: EHLO, MAIL, RCPT, DATA in the SYN, taken by the server.
    assert_eq!(second.sent_early, ["EHLO", "MAIL", "RCPT", "DATA"]);
    let FastOpen::SynData { bytes } = second.fast_open else {
        panic!("the early flight did not go in the SYN: {}", second.fast_open);
    };
    assert!(
        syns[1].starts_with(CLEAR_FLIGHT) && syns[1].ends_with(b"DATA\r\n"),
        "the second SYN: {:?}",
        String::from_utf8_lossy(&syns[1])
    );
    assert_eq!(bytes, syns[1].len(), "the bytes reported are the SYN's");
    assert_eq!(second.waits_before_data, 1);
    let records = server.records(2);
    assert_eq!(records[1].accepted, Some(Accepted::SynData), "{records:?}");
    assert_eq!(records[1].commands[0], "EHLO client.test");
    assert!(records[1].early && records[1].l_field == "L*");
    assert_eq!(server.message_count(), 2, "each message once");
}

fn ehlo_and_starttls_go_in_the_syn_and_tls_follows(front) {
    let Some(_kernel) = kernel_at(3) else { return };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    fastopen::enable_on_listener(&listener, 16).expect("TCP_FASTOPEN on the listener");
    let server = TestServer::start_on(listener, ServerConfig {
        plans: vec![ConnPlan::new(OFFER_TLS, &["PIPELINING", "PIPECONNECT"])],
        pre_banner_wait: Duration::from_millis(500),
        tls: Some(common::rustls_server()),
        tls_on_connect: false,
    });
    let tls = fronts::rustls_upgrade();
    let Some((first, second, syns)) = twice(front, &server, Some(&tls)) else { return };
    assert_first_sent_nothing(&first, &syns[0]);
    assert!(first.tls && second.tls);
    assert_eq!(second.sent_early, ["EHLO", "STARTTLS"]);
    assert_eq!(second.fast_open, FastOpen::SynData { bytes: syns[1].len() });
    assert_eq!(syns[1], b"EHLO client.test\r\nSTARTTLS\r\n");
    let records = server.records(2);
    assert_eq!(records[1].accepted, Some(Accepted::SynData));
    assert!(records[1].tls);
    assert_eq!(server.message_count(), 2);
}

fn without_a_cookie_the_early_flight_follows_the_handshake(front) {
    let Some(_kernel) = kernel_at(3) else { return };
    let server = clear_server(NO_COOKIE_HOST, true);
    let Some(capture) = capture(&server) else { return };
    let client = client(front);
    // The first connection fills the EHLO cache and gets a cookie, which the kernel forgets.
    let first = deliver(&client, &server, None);
    if !forget_cookie(NO_COOKIE_HOST) {
        return;
    }
    let second = deliver(&client, &server, None);
    let syns = capture.payloads();
    assert_eq!(syns.len(), 2, "two SYNs: {syns:?}");
    assert_first_sent_nothing(&first, &syns[0]);
    assert_eq!(second.fast_open, FastOpen::NoCookie, "{}", second.fast_open);
    assert!(syns[1].is_empty(), "no data in a SYN without a cookie: {syns:?}");
    // Early pipelining still happens: the flight went right after the handshake.
    assert_eq!(second.sent_early, ["EHLO", "MAIL", "RCPT", "DATA"]);
    let records = server.records(2);
    assert_ne!(records[1].accepted, Some(Accepted::SynData), "{records:?}");
    assert!(records[1].early && records[1].l_field == "L*", "{records:?}");
    assert_eq!(server.message_count(), 2);
}

fn a_server_that_does_not_take_the_data_gets_it_after_the_handshake(front) {
    let Some(_kernel) = kernel_at(3) else { return };
    // A cookie for the host from a server there with Fast Open; then one without it.
    let with = clear_server(NOT_TAKEN_HOST, true);
    let without = clear_server(NOT_TAKEN_HOST, false);
    let Some(capture) = capture(&without) else { return };
    let client = client(front);
    let first = deliver(&client, &without, None);
    deliver(&client, &with, None);
    let second = deliver(&client, &without, None);
    let syns = capture.payloads();
    assert_eq!(syns.len(), 2, "two SYNs: {syns:?}");
    assert!(first.sent_early.is_empty());
    // The SYN carried the flight with the cookie; the server's SYN-ACK did not take it.
    assert!(
        syns[1].starts_with(CLEAR_FLIGHT),
        "the second SYN: {:?}",
        String::from_utf8_lossy(&syns[1])
    );
    assert_eq!(
        second.fast_open,
        FastOpen::Refused(Refusal::DataNotAcked),
        "{}",
        second.fast_open
    );
    assert!(second.fast_open.to_string().contains("did not take the data in the SYN"));
    assert_eq!(second.sent_early, ["EHLO", "MAIL", "RCPT", "DATA"]);
    let records = without.records(2);
    assert_eq!(records[1].accepted, Some(Accepted::Normal), "{records:?}");
    assert_eq!(records[1].commands[0], "EHLO client.test", "sent again, whole");
    assert_eq!(without.message_count(), 2, "each message once");
}

fn a_kernel_that_forbids_it_gives_normal_connections_and_says_why(front) {
    let Some(_kernel) = kernel_at(0) else { return };
    let server = clear_server(Ipv4Addr::LOCALHOST, true);
    let Some((first, second, syns)) = twice(front, &server, None) else { return };
    assert!(syns.iter().all(Vec::is_empty), "no data in any SYN: {syns:?}");
    for d in [&first, &second] {
        assert_eq!(
            d.fast_open,
            FastOpen::Refused(Refusal::KernelSetting(Some(0))),
            "{}",
            d.fast_open
        );
    }
    assert!(second
        .fast_open
        .to_string()
        .contains("net.ipv4.tcp_fastopen is 0"));
    // Early pipelining is not Fast Open's: it still happens, nothing is lost.
    assert_eq!(second.sent_early, ["EHLO", "MAIL", "RCPT", "DATA"]);
    let records = server.records(2);
    assert_eq!(records[1].accepted, Some(Accepted::Normal));
    assert!(records[1].early);
    assert_eq!(server.message_count(), 2);
}

fn a_connect_without_an_answer_fails_at_connect_in_time(front) {
    // The kernel's setting at 0: the client connects the normal way, a SYN without data (a
    // SYN with data that went unanswered would make the kernel pause Fast Open for a while).
    let Some(_kernel) = kernel_at(0) else { return };
    // A listener whose queue is full: the kernel drops further SYNs.
    let listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("socket");
    listener
        .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .expect("bind");
    listener.listen(0).expect("listen");
    let addr = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .expect("addr");
    // Connections until one is not answered: the queue is full then (how many it takes
    // depends on when each final ACK met the queue, on a loaded machine too).
    let mut queued = Vec::new();
    let full = (0..8).any(|_| {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(tcp) => {
                queued.push(tcp);
                false
            }
            Err(_) => true,
        }
    });
    assert!(full, "the queue never filled: {} connections answered", queued.len());

    let mut config = ClientConfig::new("client.test").expect("name");
    config.hosts_try_fastopen = "*".parse().expect("host list");
    config.timeout = Duration::from_secs(1);
    let started = std::time::Instant::now();
    let e = Sender::new(front, config)
        .connect(addr, None, None, &message())
        .expect_err("no answer");
    let took = started.elapsed();
    assert_eq!(e.stage, Stage::Connect, "{e}");
    assert!(e.is_temporary());
    assert!(e.detail.contains(&addr.to_string()), "{e}");
    assert!(e.detail.contains("the TCP connect deadline passed"), "{e}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "{took:?}");
}

fn nobody_listening_is_a_connect_failure(front) {
    // Whatever the kernel's setting: a port nobody listens on.
    let addr: SocketAddr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let e = client(front)
        .connect(addr, None, None, &message())
        .expect_err("nobody listens");
    assert_eq!(e.stage, Stage::Connect, "{e}");
    assert!(e.is_temporary());
    assert!(e.detail.contains(&addr.to_string()), "{e}");
}
}
