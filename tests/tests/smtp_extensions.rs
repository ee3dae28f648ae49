//! The SMTP service extensions a sending MTA needs, end to end over loopback: 8BITMIME,
//! SMTPUTF8, DSN (RET, ENVID, NOTIFY, ORCPT), BDAT, and AUTH PLAIN and LOGIN under STARTTLS
//! on every backend — the client against the crate's server session, and against Exim
//! (`exim4-daemon-heavy`; a missing Exim fails under `CI` and prints SKIPPED otherwise).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tlsresume::backends;
use tlsresume_compare::{exim, serve_smtp, Pki};
use tlsresume_core::{BackendKind, ClientSettings, ServerSettings};
use tlsresume_smtp::auth::UserTable;
use tlsresume_smtp::server::{self, Accepted};
use tlsresume_smtp::{
    Client, ClientConfig, Credentials, Delivery, Dsn, EnvelopeField, ErrorClass, Mechanism,
    Message, NoTls, Notify, Ret, SendError, ServerConfig, ServerSession, Stage, StreamedMessage,
    TlsUpgrade,
};

/// A stream keeping a copy of what it reads: what the server received, byte for byte.
struct Recorded {
    tcp: TcpStream,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Read for Recorded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.tcp.read(buf)?;
        if let Ok(mut seen) = self.seen.lock() {
            seen.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

impl Write for Recorded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

type Served = JoinHandle<(Vec<Accepted>, String)>;

/// One connection in clear to a session with `config`: the messages it accepted and every
/// byte it received.
fn serve_clear(config: ServerConfig) -> (SocketAddr, Served) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let peer = listener.local_addr().expect("addr");
    let served = thread::spawn(move || {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut session = ServerSession::new(config);
        if let Ok((tcp, _)) = listener.accept() {
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
            let mut stream = Recorded {
                tcp,
                seen: seen.clone(),
            };
            session.greet();
            let _ = server::drive(&mut session, &mut stream);
            let _ = server::flush(&mut session, &mut stream);
        }
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        (
            session.take_accepted(),
            String::from_utf8_lossy(&seen).into_owned(),
        )
    });
    (peer, served)
}

fn client(chunking: bool) -> ClientConfig {
    let mut config = ClientConfig::new("client.tlsresume.test").expect("name");
    config.timeout = Duration::from_secs(20);
    config.chunking = chunking;
    config
}

/// 8-bit content, a recipient that is not ASCII, and every DSN parameter, with values that
/// need xtext.
fn international() -> Message {
    let mut m = Message::new(
        "sender@example.test",
        ["üser@exämple.test", "b@example.test"],
        "Subject: café\r\n\r\nnaïve\r\n",
    );
    m.dsn = Dsn {
        ret: Some(Ret::Hdrs),
        envid: Some("env id+1=2".into()),
        notify: Some(Notify {
            failure: true,
            delay: true,
            ..Notify::NEVER
        }),
        orcpt: vec![Some("o r@example.test".into())],
    };
    m
}

#[test]
fn eight_bit_smtputf8_and_dsn_between_client_and_session_with_data_and_bdat() {
    for chunking in [false, true] {
        let (peer, served) = serve_clear(
            ServerConfig::new("mx.tlsresume.test")
                .smtputf8(true)
                .dsn(true),
        );
        let d = Client::new(client(chunking))
            .connect::<NoTls>(peer, None, None, &international())
            .expect("delivered");
        let (accepted, wire) = served.join().expect("server");
        assert_eq!(d.chunking, chunking);
        let p = &d.parameters;
        assert!(p.eight_bit_mime && p.smtputf8 && p.dsn, "{p:?}");
        // What the session took is what the caller gave, through xtext.
        let a = &accepted[0];
        assert_eq!(a.rcpt_to, ["üser@exämple.test", "b@example.test"]);
        assert!(a.parameters.eight_bit_mime && a.parameters.smtputf8);
        assert_eq!(a.parameters.ret, Some(Ret::Hdrs));
        assert_eq!(a.parameters.envid.as_deref(), Some("env id+1=2"));
        assert_eq!(
            a.rcpt_parameters[0].orcpt,
            Some(("rfc822".into(), "o r@example.test".into()))
        );
        assert_eq!(a.rcpt_parameters[1].orcpt, None);
        assert_eq!(
            a.rcpt_parameters[1].notify.map(Notify::value).as_deref(),
            Some("FAILURE,DELAY")
        );
        assert!(
            wire.contains(" BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=env+20id+2B1+3D2\r\n"),
            "{wire}"
        );
        assert!(
            wire.contains("ORCPT=rfc822;o+20r@example.test\r\n"),
            "{wire}"
        );
        assert!(!wire.contains("env id"), "never raw: {wire}");
    }
}

#[test]
fn what_the_server_does_not_offer_is_not_sent() {
    let (peer, served) = serve_clear(ServerConfig::new("mx.tlsresume.test").eight_bit_mime(false));
    let utf8 = Message::new("a@example.test", ["üser@exämple.test"], "hi\r\n");
    let eight_bit = Message::new("a@example.test", ["b@example.test"], "caf\u{e9}\r\n");
    let mut dsn = Message::new("a@example.test", ["b@example.test"], "hi\r\n");
    dsn.dsn = international().dsn;
    dsn.dsn.orcpt.clear();
    let sent = Client::new(client(true))
        .connect_many::<NoTls>(peer, None, None, &[utf8, eight_bit, dsn])
        .expect("connected");
    let (accepted, wire) = served.join().expect("server");
    let e = sent[0].as_ref().expect_err("no SMTPUTF8");
    assert_eq!(
        (e.stage, e.class()),
        (Stage::Rcpt, ErrorClass::Permanent),
        "{e}"
    );
    assert_eq!(e.envelope.map(|e| e.field), Some(EnvelopeField::RcptTo(0)));
    assert!(e.to_string().contains("rcpt_to[0] is not ASCII"), "{e}");
    let e = sent[1].as_ref().expect_err("no 8BITMIME");
    assert_eq!(
        (e.stage, e.class()),
        (Stage::Mail, ErrorClass::Permanent),
        "{e}"
    );
    assert!(e.to_string().contains("8BITMIME"), "{e}");
    let d = sent[2].as_ref().expect("sent without DSN");
    assert!(!d.parameters.dsn, "the caller learns DSN did not go: {d:?}");
    // One transaction on the wire: the refused two sent nothing, the third no DSN parameter.
    assert_eq!(wire.matches("MAIL FROM").count(), 1, "{wire}");
    assert!(
        !wire.contains("ENVID") && !wire.contains("NOTIFY"),
        "{wire}"
    );
    assert_eq!(accepted.len(), 1);
}

#[test]
fn a_streamed_8bit_body_is_declared_when_offered_and_stopped_when_not() {
    for offered in [true, false] {
        let (peer, served) =
            serve_clear(ServerConfig::new("mx.tlsresume.test").eight_bit_mime(offered));
        let mut content: &[u8] = "Subject: x\r\n\r\nna\u{ef}ve\r\n".as_bytes();
        let message = StreamedMessage {
            mail_from: "a@example.test".into(),
            rcpt_to: vec!["b@example.test".into()],
            content: &mut content,
            size: None,
            dsn: Dsn::default(),
        };
        let sent = Client::new(client(true)).connect_streamed::<NoTls>(peer, None, None, message);
        let (accepted, wire) = served.join().expect("server");
        if offered {
            let d = sent.expect("delivered");
            assert!(d.parameters.eight_bit_mime, "{d:?}");
            assert!(accepted[0].parameters.eight_bit_mime);
        } else {
            let e = sent.expect_err("stopped");
            assert_eq!(
                (e.stage, e.class()),
                (Stage::Data, ErrorClass::Permanent),
                "{e}"
            );
            assert!(e.to_string().contains("8BITMIME"), "{e}");
            assert!(accepted.is_empty());
            assert!(!wire.contains("BODY="), "{wire}");
        }
    }
}

#[test]
fn a_line_break_in_a_dsn_value_is_refused_before_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let peer = listener.local_addr().expect("addr");
    let base = Message::new("a@example.test", ["b@example.test"], "hi\r\n");
    let mut cases = Vec::new();
    for (envid, orcpt, field) in [
        (Some("id\r\nRSET"), None, EnvelopeField::Envid),
        (Some("id\0"), None, EnvelopeField::Envid),
        (
            None,
            Some("x@y\r\nRCPT TO:<z@evil.example>"),
            EnvelopeField::Orcpt(0),
        ),
        (None, Some("x@y\n"), EnvelopeField::Orcpt(0)),
    ] {
        let mut m = base.clone();
        m.dsn.envid = envid.map(Into::into);
        m.dsn.orcpt = vec![orcpt.map(Into::into)];
        cases.push((m, field));
    }
    for (m, field) in cases {
        let e = Client::new(client(true))
            .connect::<NoTls>(peer, None, None, &m)
            .expect_err("refused");
        assert_eq!(e.envelope.map(|e| e.field), Some(field), "{e}");
        assert_eq!(e.class(), ErrorClass::Permanent);
    }
    assert_eq!(
        listener.accept().map(drop).map_err(|e| e.kind()),
        Err(io::ErrorKind::WouldBlock),
        "no connection was made"
    );
}

/// One STARTTLS connection on a `kind` server to a session with `config` and AUTH for
/// `user`/`pass`: its address, the messages it accepted, and the `kind` client's upgrade.
fn starttls_session(
    kind: BackendKind,
    config: ServerConfig,
) -> (SocketAddr, JoinHandle<Vec<Accepted>>, TlsUpgrade) {
    let pki = Pki::committed().expect("pki");
    let server = backends::server(kind, ServerSettings::new(pki.server.clone())).expect("server");
    let tls_client =
        backends::client(kind, ClientSettings::new(pki.roots.clone())).expect("client");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let peer = listener.local_addr().expect("addr");
    let users = UserTable::new().with(&Credentials::new("user", "pass").expect("credentials"));
    let session = ServerSession::new(config.starttls(true).auth(Arc::new(users)));
    let served = thread::spawn(move || {
        serve_smtp(&listener, server.as_ref(), session)
            .map(|(_, mut s)| s.take_accepted())
            .unwrap_or_default()
    });
    let tls = TlsUpgrade::new(tls_client).server_name("mx.tlsresume.test");
    (peer, served, tls)
}

/// `user`/`pass` on a session with STARTTLS offering `mechanisms`; the client's delivery.
fn auth_over_starttls(
    kind: BackendKind,
    mechanisms: &[Mechanism],
    password: &str,
) -> (Result<Delivery, SendError>, Vec<Accepted>) {
    let config = ServerConfig::new("mx.tlsresume.test").auth_mechanisms(mechanisms);
    let (peer, served, tls) = starttls_session(kind, config);
    let mut config = client(true);
    config.auth = Some(Credentials::new("user", password).expect("credentials"));
    let message = Message::new(
        "a@example.test",
        ["b@example.test"],
        "Subject: auth\r\n\r\nhi\r\n",
    );
    let sent = Client::new(config).connect(peer, None, Some(&tls), &message);
    let accepted = served.join().unwrap_or_default();
    (sent, accepted)
}

#[test]
fn the_async_client_authenticates_and_sends_the_parameters_on_every_backend() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for kind in backends::available() {
        let config = ServerConfig::new("mx.tlsresume.test")
            .smtputf8(true)
            .dsn(true);
        let (peer, served, tls) = starttls_session(kind, config);
        let tls = tlsresume::tokio::SmtpStartTls::new(tls);
        let mut config = client(true);
        config.auth = Some(Credentials::new("user", "pass").expect("credentials"));
        let client = tlsresume_smtp::tokio::Client::new(config);
        let d = rt
            .block_on(client.connect(peer, None, Some(&tls), &international()))
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(d.auth, Some(Mechanism::Plain), "{kind:?}");
        let p = &d.parameters;
        assert!(p.eight_bit_mime && p.smtputf8 && p.dsn, "{kind:?}: {p:?}");
        let accepted = served.join().expect("server");
        assert_eq!(accepted[0].auth.as_deref(), Some("user"), "{kind:?}");
        assert_eq!(
            accepted[0].parameters.envid.as_deref(),
            Some("env id+1=2"),
            "{kind:?}"
        );
    }
}

#[test]
fn auth_plain_and_login_under_starttls_on_every_backend() {
    for kind in backends::available() {
        for (mechanisms, used) in [
            (&[Mechanism::Plain, Mechanism::Login][..], Mechanism::Plain),
            (&[Mechanism::Login][..], Mechanism::Login),
        ] {
            let (sent, accepted) = auth_over_starttls(kind, mechanisms, "pass");
            let d = sent.unwrap_or_else(|e| panic!("{kind:?} {used:?}: {e}"));
            assert_eq!(d.auth, Some(used), "{kind:?}");
            assert!(d.tls);
            assert_eq!(
                accepted[0].auth.as_deref(),
                Some("user"),
                "{kind:?} {used:?}"
            );
        }
        let (sent, accepted) = auth_over_starttls(kind, &[Mechanism::Plain], "wrong");
        let e = sent.expect_err("refused");
        assert_eq!(
            (e.stage, e.class()),
            (Stage::Auth, ErrorClass::Permanent),
            "{kind:?}: {e}"
        );
        assert_eq!(e.reply.as_ref().map(|r| r.code()), Some(535), "{kind:?}");
        assert!(accepted.is_empty());
    }
}

#[test]
fn no_transaction_goes_early_ahead_of_auth() {
    let pki = Pki::committed().expect("pki");
    let kind = backends::available()[0];
    let server = backends::server(kind, ServerSettings::new(pki.server.clone())).expect("server");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let peer = listener.local_addr().expect("addr");
    let served = thread::spawn(move || {
        (0..2)
            .map(|_| {
                let users = UserTable::new().with(&Credentials::new("user", "pass").expect("user"));
                let session = ServerSession::new(
                    ServerConfig::new("mx.tlsresume.test")
                        .starttls(true)
                        .pipe_connect(true)
                        .auth(Arc::new(users)),
                );
                serve_smtp(&listener, server.as_ref(), session)
                    .map(|(_, mut s)| s.take_accepted().len())
            })
            .collect::<Vec<_>>()
    });
    let mut config = client(true);
    config.hosts_pipe_connect = "*".parse().expect("host list");
    config.auth = Some(Credentials::new("user", "pass").expect("credentials"));
    let tls_client =
        backends::client(kind, ClientSettings::new(pki.roots.clone())).expect("client");
    let tls = TlsUpgrade::new(tls_client).server_name("mx.tlsresume.test");
    let client = Client::new(config);
    let message = Message::new("a@example.test", ["b@example.test"], "hi\r\n");
    let first = client
        .connect(peer, None, Some(&tls), &message)
        .expect("first");
    let second = client
        .connect(peer, None, Some(&tls), &message)
        .expect("second");
    assert!(first.sent_early.is_empty());
    // Early pipelining still takes the banner's round trip away; under TLS, AUTH comes first.
    assert_eq!(second.sent_early, ["EHLO", "STARTTLS"]);
    assert!(second.sent_early_tls.is_empty(), "{second:?}");
    assert_eq!(second.auth, Some(Mechanism::Plain));
    let served = served.join().expect("server");
    assert_eq!(served, [Ok(1), Ok(1)]);
}

#[test]
fn credentials_never_go_in_clear_even_when_offered() {
    // A server offering AUTH in clear (the crate's session never does: it answers 538).
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let peer = listener.local_addr().expect("addr");
    let served = thread::spawn(move || {
        let (mut tcp, _) = listener.accept().expect("accept");
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = tcp.write_all(b"220 mx ESMTP\r\n");
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let mut answered = false;
        while let Ok(n @ 1..) = tcp.read(&mut buf) {
            seen.extend_from_slice(&buf[..n]);
            if !answered && seen.ends_with(b"\r\n") {
                answered = true;
                let _ = tcp.write_all(b"250-mx\r\n250-AUTH PLAIN LOGIN\r\n250 PIPELINING\r\n");
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let mut config = client(true);
    config.auth = Some(Credentials::new("user", "s3cret").expect("credentials"));
    let e = Client::new(config)
        .connect::<NoTls>(peer, None, None, &international())
        .expect_err("refused in clear");
    assert_eq!(e.stage, Stage::Auth, "{e}");
    assert!(e.to_string().contains("TLS"), "{e}");
    let wire = served.join().expect("server");
    assert_eq!(
        wire, "EHLO client.tlsresume.test\r\n",
        "nothing but EHLO went"
    );
}

/// Exim's configuration for the client's tests: every recipient accepted and queued (never
/// delivered), DSN, SMTPUTF8 and 8BITMIME advertised, AUTH PLAIN and LOGIN under TLS (PLAIN
/// not to a client saying `EHLO login.tlsresume.test`).
const EXIM_MAIN: &str = "acl_smtp_rcpt = acl_rcpt\n\
    queue_only = true\n\
    dsn_advertise_hosts = *\n\
    smtputf8_advertise_hosts = *\n\
    accept_8bitmime = true\n";
const EXIM_REST: &str = "begin acl\nacl_rcpt:\n  accept\n\
    begin routers\nbegin transports\nbegin authenticators\n\
    plain:\n  driver = plaintext\n  public_name = PLAIN\n  server_prompts = :\n\
    \x20 server_condition = ${if and {{eq{$auth2}{user}}{eq{$auth3}{pass}}}}\n\
    \x20 server_advertise_condition = ${if and {{def:tls_in_cipher}{!eq{$sender_helo_name}{login.tlsresume.test}}}}\n\
    \x20 server_set_id = $auth2\n\
    login:\n  driver = plaintext\n  public_name = LOGIN\n  server_prompts = Username:: : Password::\n\
    \x20 server_condition = ${if and {{eq{$auth1}{user}}{eq{$auth2}{pass}}}}\n\
    \x20 server_advertise_condition = ${if def:tls_in_cipher}\n\
    \x20 server_set_id = $auth1\n";

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tlsresume-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

#[test]
fn the_client_against_exim() {
    let dir = scratch("exim-extensions");
    let Some(exim) = exim::start(&dir, EXIM_MAIN, EXIM_REST) else {
        return;
    };
    let peer = exim.socket_addr();
    // In clear: 8BITMIME, SMTPUTF8 and DSN, as BDAT and as DATA.
    for chunking in [true, false] {
        let d = Client::new(client(chunking))
            .connect::<NoTls>(peer, None, None, &international())
            .unwrap_or_else(|e| panic!("exim, chunking {chunking}: {e}"));
        let p = &d.parameters;
        assert!(p.eight_bit_mime && p.smtputf8 && p.dsn, "{p:?}");
        assert_eq!(d.chunking, chunking);
    }
    let queued = exim.queued();
    assert_eq!(queued.len(), 2, "{queued:?}");
    for h in &queued {
        // What Exim made of the parameters, in its own spool (ENVID and ORCPT kept in xtext,
        // as it passes them on): SMTPUTF8, RET=HDRS (Exim's dsn_ret_hdrs, 2), and per
        // recipient the ORCPT, its length and NOTIFY=FAILURE,DELAY (rf_notify_failure 0x08 |
        // rf_notify_delay 0x10).
        assert!(h.contains("-received_protocol utf8esmtp\n"), "{h}");
        assert!(h.contains("-smtputf8\n"), "{h}");
        assert!(h.contains("-dsn_envid env+20id+2B1+3D2\n"), "{h}");
        assert!(h.contains("-dsn_ret 2\n"), "{h}");
        assert!(
            h.contains("\nüser@exämple.test rfc822;o+20r@example.test 25,24 "),
            "{h}"
        );
        assert!(h.contains("\nb@example.test  0,24 "), "{h}");
    }
    // Under STARTTLS on every backend: AUTH PLAIN, and LOGIN where PLAIN is not offered.
    let pki = Pki::committed().expect("pki");
    let mut sent = 0;
    for kind in backends::available() {
        for (helo, used) in [
            ("client.tlsresume.test", Mechanism::Plain),
            ("login.tlsresume.test", Mechanism::Login),
        ] {
            let tls_client =
                backends::client(kind, ClientSettings::new(pki.roots.clone())).expect("client");
            let tls = TlsUpgrade::new(tls_client).server_name("mx.tlsresume.test");
            let mut config = ClientConfig::new(helo).expect("name");
            config.timeout = Duration::from_secs(20);
            config.auth = Some(Credentials::new("user", "pass").expect("credentials"));
            let d = Client::new(config)
                .connect(peer, None, Some(&tls), &international())
                .unwrap_or_else(|e| panic!("exim, {kind:?} {used:?}: {e}"));
            assert_eq!((d.auth, d.tls), (Some(used), true), "{kind:?}");
            sent += 1;
        }
    }
    let authenticated = exim
        .queued()
        .iter()
        .filter(|h| h.contains("-auth_id user\n"))
        .count();
    assert_eq!(authenticated, sent);
    drop(exim);
    let _ = std::fs::remove_dir_all(&dir);
}
