//! Nothing ambiguous is taken from the wire, nothing unsafe is put on it. `serve` ends DATA
//! only on CR LF . CR LF, refuses over-long and bare-newline command lines whole, enforces
//! its SIZE and drops what was pipelined behind STARTTLS; `probe` refuses an envelope
//! address carrying a command before it connects. Raw SMTP over loopback.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::{assert_one_line_error, run, tls_client, Server};

/// The address of the report: it closes the path and adds a recipient of its own.
const INJECTED: &str = "a@example.test>\r\nRCPT TO:<injected@evil.example";

#[test]
fn probe_refuses_an_address_with_a_control_byte_before_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let addr = listener.local_addr().expect("address").to_string();
    for (option, bad, why) in [
        ("--mail-from", INJECTED, "line break"),
        ("--rcpt-to", INJECTED, "line break"),
        ("--rcpt-to", "b@example.test\u{1}", "control byte 0x01"),
        ("--mail-from", "a@example.test\tx", "control byte 0x09"),
    ] {
        let (from, to) = if option == "--mail-from" {
            (bad, "b@example.test")
        } else {
            ("a@example.test", bad)
        };
        let r = run(&[
            "probe",
            &addr,
            "--plain",
            "--mail-from",
            from,
            "--rcpt-to",
            "c@example.test",
            "--rcpt-to",
            to,
        ]);
        assert_one_line_error(&r, option);
        assert!(r.stderr.contains(why), "{r:?}");
    }
    // Every refusal came before connecting: nothing waits to be accepted.
    let pending = listener.accept().map(|_| ()).map_err(|e| e.kind());
    assert_eq!(pending, Err(ErrorKind::WouldBlock));
}

/// A raw SMTP conversation: the client's bytes exactly as given, the server's replies read
/// one by one.
struct Talk<S: Read + Write> {
    conn: BufReader<S>,
}

impl<S: Read + Write> Talk<S> {
    fn new(stream: S) -> Self {
        Self {
            conn: BufReader::new(stream),
        }
    }

    fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let out = self.conn.get_mut();
        out.write_all(bytes.as_ref()).expect("send");
        out.flush().expect("flush");
    }

    /// The next reply, every line of it.
    fn reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            let n = self.conn.read_line(&mut line).expect("a reply");
            assert!(n > 0, "connection closed; read so far: {reply:?}");
            reply.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }

    /// Sends `line` and asserts the reply's code.
    fn says(&mut self, line: &str, code: &str) -> String {
        self.send(line);
        let reply = self.reply();
        assert!(reply.starts_with(code), "{line:?} -> {reply}");
        reply
    }

    /// EHLO, MAIL, RCPT, DATA: the server waits for the message. The EHLO reply.
    fn open_data(&mut self) -> String {
        let ehlo = self.says("EHLO client.test\r\n", "250");
        self.says("MAIL FROM:<a@example.test>\r\n", "250");
        self.says("RCPT TO:<b@example.test>\r\n", "250");
        self.says("DATA\r\n", "354");
        ehlo
    }

    /// Sends QUIT; `serve`'s log line for the connection.
    fn quit(&mut self, srv: &Server) -> String {
        self.send("QUIT\r\n");
        srv.line()
    }

    /// An over-long command line is refused whole (its tail is not a command) and so is one
    /// with a bare CR or LF; the next command is answered as itself.
    fn refuses_bad_command_lines(&mut self) {
        let overlong = format!("NOOP {}RSET\r\nNOOP\r\n", "x".repeat(2043));
        self.send(overlong);
        let refused = self.reply();
        assert!(refused.starts_with("500 "), "{refused}");
        assert_eq!(self.reply(), "250 OK\r\n", "the NOOP behind it");
        // A bare LF ends the refused line; a bare CR does not, so the NOOP is part of it.
        for (bare, noop_behind) in [("RSET\nNOOP\r\n", true), ("RSET\rNOOP\r\n", false)] {
            self.send(bare);
            let refused = self.reply();
            assert!(refused.starts_with("500 "), "{bare:?} -> {refused}");
            if noop_behind {
                assert_eq!(self.reply(), "250 OK\r\n", "{bare:?}: the NOOP behind it");
            }
            self.says("NOOP\r\n", "250 OK");
        }
    }
}

/// A clear connection to `serve`, its banner read.
fn connect(addr: &str) -> Talk<TcpStream> {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut talk = Talk::new(tcp);
    let banner = talk.reply();
    assert!(banner.starts_with("220 "), "{banner}");
    talk
}

/// The smuggled transaction of the 2023 reports, behind a line ending with a dot.
const SMUGGLED: &str = "MAIL FROM:<admin@example.test>\r\nRCPT TO:<victim@example.test>\r\n\
                        DATA\r\nsmuggled\r\n.\r\n";

#[test]
fn only_crlf_dot_crlf_ends_data() {
    let srv = Server::start(&["--plain"]);
    for form in ["\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r.\r\n"] {
        let mut talk = connect(&srv.addr);
        talk.open_data();
        talk.send(format!("hello{form}{SMUGGLED}"));
        let refused = talk.reply();
        assert!(refused.starts_with("554 "), "{form:?}: {refused}");
        let line = talk.quit(&srv);
        assert!(!line.contains("messages="), "{form:?}: {line}");
        assert_eq!(talk.reply(), "221 mx.tlsresume.test closing connection\r\n");
    }
    // The same with CR LF line endings, dot-stuffed, is one message.
    let mut talk = connect(&srv.addr);
    talk.open_data();
    let stuffed = SMUGGLED.replace("\r\n.\r\n", "\r\n..\r\n.\r\n");
    talk.send(format!("hello\r\n..\r\n{stuffed}"));
    assert_eq!(talk.reply(), "250 OK message discarded\r\n");
    let line = talk.quit(&srv);
    assert!(line.ends_with(" messages=1"), "{line}");
}

#[test]
fn an_overlong_or_bare_command_line_is_refused_whole() {
    let srv = Server::start(&["--plain"]);
    let mut talk = connect(&srv.addr);
    talk.refuses_bad_command_lines();
    // Clear text before STARTTLS is read another way: the same there.
    let srv = Server::start(&["--starttls", "smtp"]);
    let mut talk = connect(&srv.addr);
    talk.refuses_bad_command_lines();
}

#[test]
fn a_long_text_line_ending_in_a_dot_does_not_end_data() {
    let srv = Server::start(&["--plain"]);
    let mut talk = connect(&srv.addr);
    talk.open_data();
    // Cut at 64 KiB, the first line's tail is a lone ".": the end of the message for a
    // server that splits long lines.
    for len in [65_536, 69_999, 1_000] {
        talk.send(format!("{}.\r\nRSET\r\n", "x".repeat(len)));
    }
    talk.send("\r\n.\r\n");
    let refused = talk.reply();
    assert!(refused.starts_with("500 "), "{refused}");
    talk.says("NOOP\r\n", "250 OK");
    let line = talk.quit(&srv);
    assert!(!line.contains("messages="), "{line}");
}

#[test]
fn a_message_over_size_is_refused() {
    let srv = Server::start(&["--plain"]);
    let mut talk = connect(&srv.addr);
    let ehlo = talk.open_data();
    let size: usize = ehlo
        .lines()
        .find_map(|l| l.strip_prefix("250-SIZE "))
        .expect("SIZE advertised")
        .parse()
        .expect("a number");
    // Lines of 1 000 octets, a thousand at a time, until past SIZE.
    let line = format!("{}\r\n", "x".repeat(998));
    let block = line.repeat(1000);
    let mut sent = 0;
    while sent <= size {
        talk.send(&block);
        sent += block.len();
    }
    talk.says(".\r\n", "552 ");
    // BDAT: a chunk that fits, then one past SIZE.
    talk.says("MAIL FROM:<a@example.test>\r\n", "250");
    talk.says("RCPT TO:<b@example.test>\r\n", "250");
    talk.send(format!("BDAT {size}\r\n"));
    let chunk = vec![b'x'; size];
    talk.send(&chunk);
    assert!(talk.reply().starts_with("250 "));
    talk.says("BDAT 1 LAST\r\nx", "552 ");
    let line = talk.quit(&srv);
    assert!(!line.contains("messages="), "{line}");
}

#[test]
fn starttls_drops_what_was_pipelined_behind_it() {
    starttls_drops_what_was_pipelined(&[]);
}

#[test]
fn starttls_on_tokio_drops_what_was_pipelined_behind_it() {
    starttls_drops_what_was_pipelined(&["--async"]);
}

fn starttls_drops_what_was_pipelined(extra: &[&str]) {
    let mut args = vec!["--starttls", "smtp", "--backend", "rustls"];
    args.extend_from_slice(extra);
    let srv = Server::start(&args);
    let mut talk = connect(&srv.addr);
    talk.says("EHLO client.test\r\n", "250");
    // A man in the middle's commands behind STARTTLS, in the same segment.
    talk.says("STARTTLS\r\nRSET\r\nNOOP\r\n", "220 ");
    assert!(talk.conn.buffer().is_empty());
    let tcp = talk.conn.into_inner();
    let client = tls_client("rustls");
    let peer = tcp.peer_addr().expect("peer");
    let tls = client
        .connect(
            Box::new(tcp),
            &tlsresume::ClientParams::new("localhost", peer),
        )
        .expect("the handshake, with nothing in front of it");
    let mut talk = Talk::new(tls);
    // The first reply under TLS is to the first command sent under TLS.
    let ehlo = talk.says("EHLO client.test\r\n", "250-mx.tlsresume.test Hello");
    assert!(!ehlo.contains("Reset"), "{ehlo}");
    // Read over TLS, command lines are checked as in clear.
    talk.refuses_bad_command_lines();
    let line = talk.quit(&srv);
    assert!(line.contains(" X=TLS"), "{line}");
}

#[test]
fn a_dribbled_command_is_cut_at_the_command_deadline() {
    dribbled_command_is_cut(&[]);
}

#[test]
fn a_dribbled_command_on_tokio_is_cut_at_the_command_deadline() {
    dribbled_command_is_cut(&["--async"]);
}

fn dribbled_command_is_cut(extra: &[&str]) {
    let mut args = vec!["--plain", "--command-timeout", "1"];
    args.extend_from_slice(extra);
    let srv = Server::start(&args);
    let mut talk = connect(&srv.addr);
    talk.says("NOOP\r\n", "250 OK");
    let started = std::time::Instant::now();
    // A byte every 200 ms: the idle --timeout (30 s) never passes, the command deadline does.
    let writer = talk.conn.get_ref().try_clone().expect("clone");
    let dribble = std::thread::spawn(move || {
        let mut writer = writer;
        for b in b"NOOP NOOP NOOP NOOP NOOP NOOP NOOP NOOP NOOP NOOP".iter() {
            std::thread::sleep(Duration::from_millis(200));
            if writer.write_all(&[*b]).is_err() {
                return;
            }
        }
    });
    let line = srv.line();
    let took = started.elapsed();
    assert!(line.contains("the SMTP command deadline passed"), "{line}");
    assert!(took < Duration::from_millis(2500), "cut after {took:?}");
    let _ = dribble.join();
}
