//! TCP Fast Open through the SMTP client on loopback, with the kernel's own word on each side:
//! the second connection's early flight goes in the SYN when the kernel allows it, and the
//! same deliveries go the normal way, saying why, when it does not.
//!
//! The tests set `net.ipv4.tcp_fastopen` for their run and restore it, which needs root; where
//! they cannot, they fail under `CI` and say SKIPPED elsewhere.

mod common;

use std::time::Duration;

use common::{ConnPlan, RustlsStartTls, ServerConfig, TestServer};
use tlsresume_smtp::fastopen::{Accepted, KernelSetting, Refusal, ScopedSetting};
use tlsresume_smtp::{Client, ClientConfig, Delivery, FastOpen, Message, NoTls, Stage, StartTls};

const OFFER: &[&str] = &["PIPELINING", "PIPECONNECT", "8BITMIME"];
const OFFER_TLS: &[&str] = &["PIPELINING", "PIPECONNECT", "STARTTLS"];

fn message() -> Message {
    Message {
        mail_from: "sender@client.test".into(),
        rcpt_to: vec!["one@server.test".into()],
        content: b"Subject: fast open\n\nbody\n".to_vec(),
        dsn: Default::default(),
    }
}

/// A client that pipelines early and tries Fast Open with every server.
fn client() -> Client {
    let mut config = ClientConfig::new("client.test").expect("name");
    config.hosts_pipe_connect = "*".parse().expect("host list");
    config.hosts_try_fastopen = "*".parse().expect("host list");
    config.timeout = Duration::from_secs(10);
    Client::new(config)
}

/// The kernel's setting at `value` for the test, or `None` (SKIPPED; a failure under `CI`).
fn kernel_at(value: u32) -> Option<ScopedSetting> {
    match KernelSetting(value).set_for_now() {
        Ok(scoped) => Some(scoped),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root and must set net.ipv4.tcp_fastopen: {e}"
            );
            eprintln!("SKIPPED: cannot set net.ipv4.tcp_fastopen to {value} (needs root): {e}");
            None
        }
    }
}

/// A server in clear offering early pipelining, Fast Open on its listener.
fn clear_server() -> TestServer {
    TestServer::start_fast_open(ServerConfig::clear(
        vec![ConnPlan::new(OFFER, &[])],
        Duration::from_millis(500),
    ))
}

/// Two deliveries over Fast Open connections, `tls` for STARTTLS.
fn twice<U: StartTls<std::net::TcpStream>>(
    server: &TestServer,
    tls: Option<&U>,
) -> (Delivery, Delivery) {
    let client = client();
    let first = client
        .connect(server.addr, None, tls, &message())
        .expect("first delivery");
    let second = client
        .connect(server.addr, None, tls, &message())
        .expect("second delivery");
    (first, second)
}

#[test]
fn the_early_flight_goes_in_the_syn_when_the_kernel_allows_it() {
    let Some(_kernel) = kernel_at(3) else { return };
    let server = clear_server();
    let (first, second) = twice::<NoTls>(&server, None);
    // The first connection had nothing to send before the banner: its SYN asked for a cookie
    // (or carried one this machine's kernel kept from an earlier run).
    assert!(
        matches!(first.fast_open, FastOpen::NoCookie | FastOpen::NoData),
        "{:?}",
        first.fast_open
    );
    assert!(first.sent_early.is_empty());
    // The second: EHLO, MAIL, RCPT, DATA in the SYN, taken by the server.
    assert_eq!(second.sent_early, ["EHLO", "MAIL", "RCPT", "DATA"]);
    let FastOpen::SynData { bytes } = second.fast_open else {
        panic!(
            "the early flight did not go in the SYN: {}",
            second.fast_open
        );
    };
    assert!(bytes > "EHLO client.test\r\n".len(), "{bytes}");
    assert_eq!(second.waits_before_data, 1);
    let records = server.records(2);
    assert_eq!(records[1].accepted, Some(Accepted::SynData), "{records:?}");
    assert_eq!(records[1].commands[0], "EHLO client.test");
    assert!(records[1].early && records[1].l_field == "L*");
    assert_eq!(server.message_count(), 2, "each message once");
}

#[test]
fn ehlo_and_starttls_go_in_the_syn_and_tls_follows() {
    let Some(_kernel) = kernel_at(3) else { return };
    let server = TestServer::start_fast_open(ServerConfig {
        plans: vec![ConnPlan::new(OFFER_TLS, &["PIPELINING", "PIPECONNECT"])],
        pre_banner_wait: Duration::from_millis(500),
        tls: Some(common::rustls_server()),
        tls_on_connect: false,
    });
    let tls = RustlsStartTls::new();
    let (first, second) = twice(&server, Some(&tls));
    assert!(first.tls && second.tls);
    assert_eq!(second.sent_early, ["EHLO", "STARTTLS"]);
    assert!(second.fast_open.syn_data(), "{}", second.fast_open);
    let records = server.records(2);
    assert_eq!(records[1].accepted, Some(Accepted::SynData));
    assert!(records[1].tls);
    assert_eq!(server.message_count(), 2);
}

#[test]
fn a_kernel_that_forbids_it_gives_normal_connections_and_says_why() {
    let Some(_kernel) = kernel_at(0) else { return };
    let server = clear_server();
    let (first, second) = twice::<NoTls>(&server, None);
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

#[test]
fn nobody_listening_is_a_connect_failure() {
    // Whatever the kernel's setting: a port nobody listens on.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let e = client()
        .connect::<NoTls>(addr, None, None, &message())
        .expect_err("nobody listens");
    assert_eq!(e.stage, Stage::Connect, "{e}");
    assert!(e.is_temporary());
    assert!(e.detail.contains(&addr.to_string()), "{e}");
}
