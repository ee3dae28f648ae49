//! The SMTP client as an MTA uses it, on every backend, with real STARTTLS handshakes over
//! loopback against the crate's server session: what it queues on (a failure's class — a 550
//! is permanent, a 451 temporary, a certificate that does not verify is the certificate class
//! with the TLS library's error as its `source()` — its stage, the server's reply with its
//! enhanced status), and several messages over one connection with early pipelining and
//! session resumption. Each test on both clients, the blocking one and the tokio one.

#[macro_use]
#[path = "../../smtp/tests/common/fronts.rs"]
mod fronts;

use std::error::Error as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use fronts::{Front, Sender};
use tlsresume::backends;
use tlsresume_compare::{serve_smtp, Pki};
use tlsresume_core::{
    BackendKind, ClientContext, ClientSettings, ErrorKind, Identity, ServerContext, ServerSettings,
};
use tlsresume_smtp::server::Policy;
use tlsresume_smtp::{
    ClientConfig, ErrorClass, Message, SendError, ServerConfig, ServerSession, Stage, TlsUpgrade,
};

/// Refuses `perm@…` for good and `temp@…` for now.
#[derive(Debug)]
struct Refusals;

impl Policy for Refusals {
    fn rcpt(&self, path: &str) -> Option<String> {
        if path.starts_with("perm@") {
            Some("550 5.1.1 no such user".into())
        } else if path.starts_with("temp@") {
            Some("451 4.3.0 try again later".into())
        } else {
            None
        }
    }
}

/// One delivery to `rcpt` from a `kind` client to a `kind` server presenting `identity`.
fn deliver(
    front: Front,
    kind: BackendKind,
    identity: Identity,
    rcpt: &str,
) -> Result<(), SendError> {
    let pki = Pki::committed().expect("pki");
    let server = backends::server(kind, ServerSettings::new(identity)).expect("server");
    let client = backends::client(kind, ClientSettings::new(pki.roots.clone())).expect("client");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let peer = listener.local_addr().expect("addr");
    let session = ServerSession::new(
        ServerConfig::new("mx.tlsresume.test")
            .starttls(true)
            .policy(Arc::new(Refusals)),
    );
    let served = thread::spawn(move || serve_smtp(&listener, server.as_ref(), session));
    let mut config = ClientConfig::new("client.tlsresume.test").expect("name");
    config.timeout = Duration::from_secs(20);
    let message = Message {
        mail_from: "a@example.test".into(),
        rcpt_to: vec![rcpt.into()],
        content: b"Subject: test\r\n\r\nhello\r\n".to_vec(),
        dsn: Default::default(),
    };
    let tls = TlsUpgrade::new(client).server_name("mx.tlsresume.test");
    let sent = Sender::new(front, config)
        .connect(peer, None, Some(&tls), &message)
        .map(drop);
    // The server's side ends with the client's QUIT, or with the failed handshake.
    let _ = served.join();
    sent
}

fronts! {
fn every_failure_has_its_class_on_every_backend(front) {
    let pki = Pki::committed().expect("pki");
    for kind in backends::available() {
        deliver(front, kind, pki.server.clone(), "b@example.test")
            .unwrap_or_else(|e| panic!("{kind:?}: the accepted recipient: {e}"));

        let e = deliver(front, kind, pki.server.clone(), "perm@example.test").expect_err("550");
        assert_eq!(
            (e.class(), e.stage),
            (ErrorClass::Permanent, Stage::Rcpt),
            "{kind:?}: {e}"
        );
        assert!(!e.is_temporary(), "{kind:?}: {e}");
        let reply = e.reply.as_ref().expect("the server's reply");
        assert_eq!(reply.code(), 550, "{kind:?}");
        let status = reply.enhanced_status().map(|s| s.to_string());
        assert_eq!(status.as_deref(), Some("5.1.1"), "{kind:?}");

        let e = deliver(front, kind, pki.server.clone(), "temp@example.test").expect_err("451");
        assert_eq!(
            (e.class(), e.stage),
            (ErrorClass::Temporary, Stage::Rcpt),
            "{kind:?}: {e}"
        );
        assert!(e.is_temporary(), "{kind:?}: {e}");
        assert_eq!(e.reply.as_ref().map(|r| r.code()), Some(451), "{kind:?}");

        let e = deliver(front, kind, pki.untrusted.clone(), "b@example.test").expect_err("untrusted");
        assert_eq!(
            (e.class(), e.stage),
            (ErrorClass::Certificate, Stage::StartTls),
            "{kind:?}: {e}"
        );
        let source = e.source().expect("the library's error as the source");
        let tls = source
            .downcast_ref::<tlsresume_core::Error>()
            .expect("a tlsresume::Error");
        assert_eq!(tls.kind(), ErrorKind::Certificate, "{kind:?}: {tls}");
        assert!(e.tls_error().is_some(), "{kind:?}");
        assert!(e.reply.is_none(), "{kind:?}: no SMTP reply to blame");
    }
}
}

/// The server's side of `connections` connections on `listener`: PIPECONNECT offered, SIZE
/// 10 000, `perm@…` refused. The messages each accepted.
fn serve_many(
    listener: TcpListener,
    server: Arc<dyn ServerContext>,
    connections: usize,
) -> thread::JoinHandle<Vec<Result<Vec<String>, String>>> {
    thread::spawn(move || {
        (0..connections)
            .map(|_| {
                let session = ServerSession::new(
                    ServerConfig::new("mx.tlsresume.test")
                        .starttls(true)
                        .pipe_connect(true)
                        .max_message(10_000)
                        .policy(Arc::new(Refusals)),
                );
                let (_, mut session) = serve_smtp(&listener, server.as_ref(), session)?;
                let accepted = session.take_accepted();
                Ok(accepted.into_iter().map(|a| a.mail_from).collect())
            })
            .collect()
    })
}

fn message(from: &str, rcpt: &str, octets: usize) -> Message {
    let mut content = b"Subject: queued\r\n\r\n".to_vec();
    while content.len() < octets {
        content.extend_from_slice(&[b'x'; 70]);
        content.extend_from_slice(b"\r\n");
    }
    Message {
        mail_from: from.into(),
        rcpt_to: vec![rcpt.into()],
        content,
        dsn: Default::default(),
    }
}

fronts! {
fn several_messages_on_one_connection_early_and_resumed_on_every_backend(front) {
    let pki = Pki::committed().expect("pki");
    for kind in backends::available() {
        let server =
            backends::server(kind, ServerSettings::new(pki.server.clone())).expect("server");
        let client: Arc<dyn ClientContext> =
            backends::client(kind, ClientSettings::new(pki.roots.clone())).expect("client");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let peer = listener.local_addr().expect("addr");
        let served = serve_many(listener, server, 4);
        let mut config = ClientConfig::new("client.tlsresume.test").expect("name");
        config.timeout = Duration::from_secs(20);
        config.hosts_pipe_connect = "*".parse().expect("host list");
        let tls = TlsUpgrade::new(client).server_name("mx.tlsresume.test");
        // Accepted, refused (550), over SIZE (refused unsent), accepted.
        let queue = [
            message("one@example.test", "b@example.test", 200),
            message("two@example.test", "perm@example.test", 200),
            message("three@example.test", "b@example.test", 20_000),
            message("four@example.test", "c@example.test", 3_000),
        ];
        // BDAT twice, then DATA twice (dot-stuffed, the SIZE checked at the final dot).
        for round in 0..4 {
            let mut config = config.clone();
            config.chunking = round < 2;
            let smtp = Sender::new(front, config);
            let sent = smtp
                .connect_many(peer, None, Some(&tls), &queue)
                .unwrap_or_else(|e| panic!("{kind:?} round {round}: {e}"));
            assert_eq!(sent.len(), 4, "{kind:?}");
            let first = sent[0].as_ref().unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            let e = sent[1].as_ref().expect_err("550");
            assert_eq!(
                (e.class(), e.stage),
                (ErrorClass::Permanent, Stage::Rcpt),
                "{kind:?}"
            );
            let e = sent[2].as_ref().expect_err("over SIZE");
            assert_eq!(
                (e.class(), e.stage),
                (ErrorClass::Permanent, Stage::Mail),
                "{kind:?}"
            );
            assert!(e.reply.is_none(), "{kind:?}: refused before sending: {e}");
            let last = sent[3].as_ref().unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert_eq!(last.chunking, round < 2, "{kind:?}");
            assert_eq!(last.accepted, ["c@example.test"], "{kind:?}");
            assert!(
                !last.early(),
                "{kind:?}: only the first message can go early"
            );
            let resumed = first.tls_info.as_ref().map(|i| i.resumed);
            if round == 0 {
                assert!(!first.early(), "{kind:?}: nothing cached yet");
                assert_eq!(resumed, Some(false), "{kind:?}");
            } else {
                assert_eq!(first.sent_early, ["EHLO", "STARTTLS"], "{kind:?}");
                assert!(!first.sent_early_tls.is_empty(), "{kind:?}");
                assert_eq!(first.l_field(), Some("L*"), "{kind:?}");
                assert_eq!(
                    resumed,
                    Some(true),
                    "{kind:?}: the second connection resumes"
                );
            }
        }
        // The server took the first and the last message of each connection, nothing else.
        for (i, accepted) in served
            .join()
            .expect("server thread")
            .into_iter()
            .enumerate()
        {
            let accepted = accepted.unwrap_or_else(|e| panic!("{kind:?} connection {i}: {e}"));
            assert_eq!(
                accepted,
                ["one@example.test", "four@example.test"],
                "{kind:?}"
            );
        }
    }
}
}
