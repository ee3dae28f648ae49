//! RFC 5321 §4.5.3.2's deadlines, whole and however the peer paces its bytes: the server
//! session's per command, per line of content and per message (both fronts), and the client's
//! per reply. Real sockets on loopback; deadlines of a second, peers dribbling every 150 ms.

#[macro_use]
#[path = "common/fronts.rs"]
mod fronts;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use fronts::Sender;
use tlsresume_smtp::server::{self, DeadlineKind, Stop};
use tlsresume_smtp::{
    ClientConfig, Deadlines, ErrorClass, Message, ServerConfig, ServerSession, Stage,
};

const DEADLINES: Deadlines = Deadlines {
    command: Duration::from_millis(1000),
    data_block: Duration::from_millis(1000),
    message: Duration::from_millis(1600),
};

/// A connected pair: (the server's end, the client's end), with an idle read timeout far
/// longer than the deadlines (a dribbling peer never lets it pass).
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    for s in [&server, &client] {
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.set_nodelay(true).expect("nodelay");
    }
    (server, client)
}

/// Sends `lead` at once, then `dribble` a byte every 150 ms (until the connection breaks).
fn dribbler(mut client: TcpStream, lead: &'static [u8], dribble: &'static [u8]) {
    thread::spawn(move || {
        let mut sink = client.try_clone().expect("clone");
        thread::spawn(move || {
            let _ = std::io::copy(&mut sink, &mut std::io::sink());
        });
        if client.write_all(lead).is_err() {
            return;
        }
        for b in dribble.iter().cycle() {
            thread::sleep(Duration::from_millis(150));
            if client.write_all(&[*b]).is_err() {
                return;
            }
        }
    });
}

/// Runs the session over the server's end; the error and how long it took.
fn cut(server: &mut TcpStream) -> (std::io::Error, Duration) {
    let mut session = ServerSession::new(ServerConfig::new("mx.test").deadlines(DEADLINES));
    session.greet();
    let started = Instant::now();
    let stop = server::drive(&mut session, server);
    (stop.expect_err("cut by a deadline"), started.elapsed())
}

fn assert_cut(kind: DeadlineKind, lead: &'static [u8], dribble: &'static [u8], within: Duration) {
    let (mut server, client) = pair();
    dribbler(client, lead, dribble);
    let (e, took) = cut(&mut server);
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
    assert_eq!(e.to_string(), format!("the SMTP {kind} deadline passed"));
    assert!(
        took >= within && took < within + Duration::from_millis(900),
        "{kind}: {took:?}"
    );
}

#[test]
fn a_dribbled_command_is_cut_at_the_command_deadline() {
    assert_cut(DeadlineKind::Command, b"", b"NOOP", DEADLINES.command);
}

#[test]
fn a_dribbled_line_of_content_is_cut_at_the_data_block_deadline() {
    let lead = b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n";
    assert_cut(DeadlineKind::DataBlock, lead, b"xyz", DEADLINES.data_block);
}

#[test]
fn content_in_timely_lines_is_cut_at_the_message_deadline() {
    // Each line within the data block deadline; the message never ends.
    let lead = b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n";
    assert_cut(DeadlineKind::Message, lead, b"x\r\n", DEADLINES.message);
}

#[test]
fn commands_in_time_are_not_cut_however_long_the_session() {
    let (mut server, mut client) = pair();
    let talk = thread::spawn(move || {
        let mut replies = Vec::new();
        let mut buf = [0u8; 512];
        let n = client.read(&mut buf).expect("banner");
        replies.extend_from_slice(&buf[..n]);
        // Eight commands 250 ms apart: 2 s in all, each well within its deadline.
        for _ in 0..8 {
            thread::sleep(Duration::from_millis(250));
            client.write_all(b"NOOP\r\n").expect("send");
            let n = client.read(&mut buf).expect("reply");
            replies.extend_from_slice(&buf[..n]);
        }
        client.write_all(b"QUIT\r\n").expect("quit");
        String::from_utf8_lossy(&replies).into_owned()
    });
    let mut session = ServerSession::new(ServerConfig::new("mx.test").deadlines(DEADLINES));
    session.greet();
    assert_eq!(
        server::drive(&mut session, &mut server).expect("QUIT"),
        Stop::Quit
    );
    assert_eq!(talk.join().expect("client").matches("250 OK").count(), 8);
}

#[cfg(feature = "tokio")]
#[test]
fn the_tokio_front_cuts_a_dribbled_command_at_its_deadline() {
    let (server, client) = pair();
    dribbler(client, b"", b"NOOP");
    server.set_nonblocking(true).expect("nonblocking");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (e, took) = rt.block_on(async move {
        let mut server = tokio::net::TcpStream::from_std(server).expect("tokio stream");
        let mut session = ServerSession::new(ServerConfig::new("mx.test").deadlines(DEADLINES));
        session.greet();
        let started = Instant::now();
        let stop = tlsresume_smtp::tokio::drive(&mut session, &mut server).await;
        (stop.expect_err("cut"), started.elapsed())
    });
    assert_eq!(e.to_string(), "the SMTP command deadline passed");
    assert!(
        took >= DEADLINES.command && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

fronts! {
fn the_client_cuts_a_dribbled_banner_at_its_reply_deadline(front) {
    let (client_end, mut server_end) = pair();
    thread::spawn(move || {
        for b in b"220 mx.test ESMTP a banner that takes its time\r\n".iter() {
            if server_end.write_all(&[*b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(150));
        }
    });
    let mut config = ClientConfig::new("client.test").expect("name");
    config.deadlines = DEADLINES;
    let message = Message {
        mail_from: "a@example.test".into(),
        rcpt_to: vec!["b@example.test".into()],
        content: b"hello\r\n".to_vec(),
        dsn: Default::default(),
    };
    let peer = client_end.peer_addr().expect("peer");
    let started = Instant::now();
    let e = Sender::new(front, config)
        .send(peer, client_end, &message)
        .expect_err("cut");
    let took = started.elapsed();
    assert_eq!(
        (e.stage, e.class()),
        (Stage::Banner, ErrorClass::Temporary),
        "{e}"
    );
    let io = e.io_error().expect("an I/O error");
    assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(io.to_string(), "the SMTP reply deadline passed");
    assert!(
        took >= DEADLINES.command && took < Duration::from_millis(1500),
        "{took:?}"
    );
}
}
