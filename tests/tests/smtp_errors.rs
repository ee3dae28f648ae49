//! What an MTA queues on, on every backend: a delivery's failure carries its class — a 550 is
//! permanent, a 451 temporary, a certificate that does not verify is the certificate class
//! with the TLS library's error as its `source()` — its stage and the server's reply with its
//! enhanced status. Real STARTTLS handshakes over loopback against the crate's server session.

use std::error::Error as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tlsresume::backends;
use tlsresume_compare::{serve_smtp, Pki};
use tlsresume_core::{BackendKind, ClientSettings, ErrorKind, Identity, ServerSettings};
use tlsresume_smtp::server::Policy;
use tlsresume_smtp::{
    Client, ClientConfig, ErrorClass, Message, SendError, ServerConfig, ServerSession, Stage,
    TlsUpgrade,
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
fn deliver(kind: BackendKind, identity: Identity, rcpt: &str) -> Result<(), SendError> {
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
    };
    let tls = TlsUpgrade::new(client).server_name("mx.tlsresume.test");
    let sent = Client::new(config)
        .connect(peer, None, Some(&tls), &message)
        .map(drop);
    // The server's side ends with the client's QUIT, or with the failed handshake.
    let _ = served.join();
    sent
}

#[test]
fn every_failure_has_its_class_on_every_backend() {
    let pki = Pki::committed().expect("pki");
    for kind in backends::available() {
        deliver(kind, pki.server.clone(), "b@example.test")
            .unwrap_or_else(|e| panic!("{kind:?}: the accepted recipient: {e}"));

        let e = deliver(kind, pki.server.clone(), "perm@example.test").expect_err("550");
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

        let e = deliver(kind, pki.server.clone(), "temp@example.test").expect_err("451");
        assert_eq!(
            (e.class(), e.stage),
            (ErrorClass::Temporary, Stage::Rcpt),
            "{kind:?}: {e}"
        );
        assert!(e.is_temporary(), "{kind:?}: {e}");
        assert_eq!(e.reply.as_ref().map(|r| r.code()), Some(451), "{kind:?}");

        let e = deliver(kind, pki.untrusted.clone(), "b@example.test").expect_err("untrusted");
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
