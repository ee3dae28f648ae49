//! Nothing but the caller's envelope and message reaches the wire: an address carrying a
//! command is refused before the client connects or writes, and no byte sequence in a
//! message ends DATA early. Against the test server on loopback.

mod common;
#[macro_use]
#[path = "common/fronts.rs"]
mod fronts;

use std::error::Error as _;
use std::net::TcpStream;
use std::time::Duration;

use common::{ConnPlan, ServerConfig, TestServer};
use fronts::{Front, Sender};
use tlsresume_smtp::{AddressError, ClientConfig, EnvelopeField, Message, SendError, Stage};

/// The address of the report: it closes the path and adds a recipient of its own.
const INJECTED: &str = "a@example.test>\r\nRCPT TO:<injected@evil.example";

fn client(front: Front) -> Sender {
    let mut config = ClientConfig::new("client.test").expect("name");
    config.timeout = Duration::from_secs(10);
    Sender::new(front, config)
}

fn server(keywords: &[&str]) -> TestServer {
    TestServer::start(ServerConfig::clear(
        vec![ConnPlan::new(keywords, &[])],
        Duration::ZERO,
    ))
}

fn message(mail_from: &str, rcpt_to: &[&str], content: &[u8]) -> Message {
    Message {
        mail_from: mail_from.into(),
        rcpt_to: rcpt_to.iter().map(|r| r.to_string()).collect(),
        content: content.to_vec(),
        dsn: Default::default(),
    }
}

/// The error says which address and why, and carries the typed reason as its source.
fn assert_refused(e: &SendError, field: EnvelopeField, problem: AddressError) {
    let envelope = e.envelope.expect("an envelope error");
    assert_eq!((envelope.field, envelope.problem), (field, problem), "{e}");
    let stage = match field {
        EnvelopeField::MailFrom | EnvelopeField::Envid => Stage::Mail,
        EnvelopeField::RcptTo(_) | EnvelopeField::Orcpt(_) => Stage::Rcpt,
    };
    assert_eq!(e.stage, stage, "{e}");
    assert!(!e.is_temporary(), "a retry cannot help: {e}");
    assert!(e.to_string().contains(&field.to_string()), "{e}");
    assert!(e.source().is_some(), "{e}");
}

fronts! {
fn an_address_with_a_command_in_it_is_refused_before_connecting(front) {
    let server = server(&["PIPELINING"]);
    let client = client(front);
    let forms = [
        (INJECTED, AddressError::LineBreak),
        ("a@example.test\rRSET", AddressError::LineBreak),
        ("a@example.test\nRSET", AddressError::LineBreak),
        ("a@example.test\r\nRSET", AddressError::LineBreak),
        ("a@example.test\0RSET", AddressError::Nul),
    ];
    for (bad, problem) in forms {
        let e = client
            .connect(
                server.addr,
                None,
                None,
                &message(bad, &["b@example.test"], b"x\r\n"),
            )
            .expect_err("refused");
        assert_refused(&e, EnvelopeField::MailFrom, problem);
        let e = client
            .connect(
                server.addr,
                None,
                None,
                &message("a@example.test", &["b@example.test", bad], b"x\r\n"),
            )
            .expect_err("refused");
        assert_refused(&e, EnvelopeField::RcptTo(1), problem);
    }
    // A good message afterwards is the server's first connection: none of the refused ones
    // connected.
    client
        .connect(
            server.addr,
            None,
            None,
            &message("a@example.test", &["b@example.test"], b"x\r\n"),
        )
        .expect("a good message");
    assert_eq!(server.connections(), 1);
    let commands = &server.records(1)[0].commands;
    assert_eq!(
        commands[1..3],
        ["MAIL FROM:<a@example.test>", "RCPT TO:<b@example.test>"]
    );
}
}

fronts! {
fn on_a_caller_made_connection_nothing_is_written(front) {
    let server = server(&["PIPELINING"]);
    let client = client(front);
    for (i, (from, to)) in [
        (INJECTED, vec!["b@example.test"]),
        ("a@example.test", vec!["b@example.test", INJECTED]),
    ]
    .into_iter()
    .enumerate()
    {
        let stream = TcpStream::connect(server.addr).expect("connect");
        let e = client
            .send(server.addr, stream, &message(from, &to, b"x\r\n"))
            .expect_err("refused");
        let field = if i == 0 {
            EnvelopeField::MailFrom
        } else {
            EnvelopeField::RcptTo(1)
        };
        assert_refused(&e, field, AddressError::LineBreak);
        // The stream was dropped unwritten: the server saw the connection end without a
        // command.
        let records = server.records(i + 1);
        assert_eq!(records.len(), i + 1);
        assert!(records[i].commands.is_empty(), "{:?}", records[i].commands);
    }
}
}

fronts! {
fn no_content_ends_data_early(front) {
    let client = client(front);
    let sent = b"hello\r\n.\r\nMAIL FROM:<x@y>\r\n";
    let bodies: [&[u8]; 6] = [
        b"hello\n.\nMAIL FROM:<x@y>\r\n",
        b"hello\r.\rMAIL FROM:<x@y>\r\n",
        b"hello\r\n.\nMAIL FROM:<x@y>\r\n",
        b"hello\n.\r\nMAIL FROM:<x@y>\r\n",
        b"hello\r.\r\nMAIL FROM:<x@y>\r\n",
        b"hello\r\n.\rMAIL FROM:<x@y>",
    ];
    // DATA (dot-stuffed), pipelined or not, and BDAT (no stuffing): the same lines arrive.
    for keywords in [&["PIPELINING"][..], &[], &["PIPELINING", "CHUNKING"]] {
        let server = server(keywords);
        for (i, body) in bodies.iter().enumerate() {
            let shown = String::from_utf8_lossy(body);
            let delivery = client
                .connect(
                    server.addr,
                    None,
                    None,
                    &message("a@example.test", &["b@example.test"], body),
                )
                .unwrap_or_else(|e| panic!("{keywords:?} {shown:?}: {e}"));
            assert_eq!(delivery.chunking, keywords.contains(&"CHUNKING"));
            let messages = server.messages.lock().expect("messages").clone();
            assert_eq!(messages.len(), i + 1, "{keywords:?} {shown:?}: one message");
            assert_eq!(
                String::from_utf8_lossy(&messages[i]),
                String::from_utf8_lossy(sent),
                "{keywords:?} {shown:?}"
            );
        }
        for record in server.records(bodies.len()) {
            assert_eq!(
                record
                    .commands
                    .iter()
                    .filter(|c| c.starts_with("MAIL"))
                    .count(),
                1,
                "{keywords:?}: {:?}",
                record.commands
            );
        }
    }
}
}
