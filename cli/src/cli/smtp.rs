//! The SMTP dialogue of `serve` (a sink that accepts mail and discards it, with RFC 2920
//! pipelining, BDAT and early pipelining) and `probe` (EHLO and QUIT), in clear, over
//! TLS-on-connect or STARTTLS, in the shape the scenario engine uses.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tlsresume::{SessionInfo, TlsStream};
pub use tlsresume_compare::smtp::{read_line_unbuffered, read_reply};

/// The longest command line read by the sink (RFC 5321 allows 512; some slack).
const MAX_LINE: u64 = 2048;

/// The longest message line read inside DATA (RFC 5321: 1000 with CRLF; some slack).
const MAX_DATA_LINE: u64 = 64 * 1024;

/// The command verb of a line, upper-cased (`MAIL` for `mail from:<a@b>`).
fn verb(line: &str) -> String {
    line.split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// The reply the server gives a client that talked before the banner without having been told
/// it may (Exim's words), before it drops the connection.
pub const SYNC_ERROR: &str = "554 SMTP synchronization error\r\n";

/// What the server offered one client and what the client did, for Exim's `L` log field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pipelining {
    /// PIPECONNECT is offered to this client (`--pipe-connect` and the client in
    /// `--pipe-connect-hosts`).
    pub offer: bool,
    /// PIPECONNECT was advertised in an EHLO response on this connection.
    pub advertised: bool,
    /// The client's first commands were there before the banner was sent.
    pub early: bool,
    /// The client sent commands without waiting for the replies to earlier ones (RFC 2920).
    pub pipelined: bool,
}

impl Pipelining {
    /// Exim's `L` field (log selector `pipelining`): `L*` early pipelining used, `L.` early
    /// pipelining advertised but not used, `L` pipelining used, nothing otherwise.
    pub fn l_field(&self) -> Option<&'static str> {
        if self.early {
            Some("L*")
        } else if self.advertised {
            Some("L.")
        } else if self.pipelined {
            Some("L")
        } else {
            None
        }
    }

    /// The EHLO keywords that depend on it (PIPELINING always; PIPECONNECT when offered),
    /// as reply lines; notes that PIPECONNECT went out.
    fn keywords(&mut self) -> &'static str {
        if self.offer {
            self.advertised = true;
            "250-PIPELINING\r\n250-PIPECONNECT\r\n"
        } else {
            "250-PIPELINING\r\n"
        }
    }
}

/// Whether the client's bytes arrive within `wait` (looked at once when it is zero), without
/// taking them: the server's check before its banner. A closed connection is no input.
pub fn input_within(tcp: &TcpStream, wait: Duration) -> bool {
    let mut byte = [0u8; 1];
    let got = if wait.is_zero() {
        if tcp.set_nonblocking(true).is_err() {
            return false;
        }
        let r = tcp.peek(&mut byte);
        let _ = tcp.set_nonblocking(false);
        r
    } else {
        let before = tcp.read_timeout().ok().flatten();
        if tcp.set_read_timeout(Some(wait)).is_err() {
            return false;
        }
        let r = tcp.peek(&mut byte);
        let _ = tcp.set_read_timeout(before);
        r
    };
    matches!(got, Ok(n) if n > 0)
}

/// A stream that can say whether the peer has sent more than has been read: how the server
/// sees that a client pipelines.
pub trait Pending {
    /// Whether input is waiting, without blocking.
    fn input_pending(&mut self) -> bool;
}

impl Pending for TcpStream {
    fn input_pending(&mut self) -> bool {
        input_within(self, Duration::ZERO)
    }
}

impl Pending for Box<dyn TlsStream> {
    fn input_pending(&mut self) -> bool {
        // TLS records not yet read from the socket: more commands behind the current ones.
        self.as_mut()
            .transport_mut::<TcpStream>()
            .is_some_and(|tcp| input_within(tcp, Duration::ZERO))
    }
}

/// The server's plain-text phase before STARTTLS: banner, then EHLO (advertising STARTTLS,
/// PIPELINING, and PIPECONNECT when `pipe.offer`), HELO, NOOP, RSET until STARTTLS. Returns
/// `Ok(true)` when STARTTLS was accepted (the TLS handshake comes next) and `Ok(false)` when
/// the client quit first. Reads are unbuffered, so nothing of the TLS handshake is taken.
pub fn serve_plain_until_starttls(
    tcp: &mut TcpStream,
    hostname: &str,
    pipe: &mut Pipelining,
) -> io::Result<bool> {
    write!(tcp, "220 {hostname} ESMTP tlsresume\r\n")?;
    tcp.flush()?;
    loop {
        let line = read_line_unbuffered(tcp)?;
        if tcp.input_pending() {
            pipe.pipelined = true;
        }
        match verb(&line).as_str() {
            "EHLO" => {
                let keywords = pipe.keywords();
                write!(
                    tcp,
                    "250-{hostname} Hello\r\n250-SIZE 52428800\r\n{keywords}250 STARTTLS\r\n"
                )?
            }
            "HELO" => write!(tcp, "250 {hostname} Hello\r\n")?,
            "NOOP" | "RSET" => tcp.write_all(b"250 OK\r\n")?,
            "STARTTLS" => {
                tcp.write_all(b"220 TLS go ahead\r\n")?;
                tcp.flush()?;
                return Ok(true);
            }
            "QUIT" => {
                write!(tcp, "221 {hostname} closing connection\r\n")?;
                tcp.flush()?;
                return Ok(false);
            }
            _ => tcp.write_all(b"530 5.7.0 Must issue a STARTTLS command first\r\n")?,
        }
        tcp.flush()?;
    }
}

/// The server's SMTP session (over TLS, or in clear with `serve --plain`): accepts EHLO, HELO,
/// MAIL, RCPT, DATA, BDAT (RFC 3030), RSET, NOOP, pipelined or not (RFC 2920), and discards
/// every message; stops at QUIT (before answering it) or at an error.
#[derive(Debug)]
pub struct Sink<S: Read + Write + Pending> {
    conn: BufReader<S>,
    hostname: String,
    /// Messages accepted (and discarded) so far.
    pub messages: usize,
    /// What was offered and what the client did (the `L` field).
    pub pipe: Pipelining,
    /// Whether the session runs over TLS (STARTTLS is then refused as "already in TLS").
    tls: bool,
}

impl Sink<Box<dyn TlsStream>> {
    /// What the TLS stream reports now.
    pub fn info(&self) -> SessionInfo {
        self.conn.get_ref().info()
    }

    /// Answers QUIT and sends close_notify.
    pub fn finish(mut self) {
        self.quit();
        let _ = self.conn.get_mut().shutdown();
    }
}

impl<S: Read + Write + Pending> Sink<S> {
    /// A session on an established stream; `tls`: the stream is a TLS one.
    pub fn new(stream: S, hostname: &str, pipe: Pipelining, tls: bool) -> Self {
        Self {
            conn: BufReader::new(stream),
            hostname: hostname.to_owned(),
            messages: 0,
            pipe,
            tls,
        }
    }

    /// Answers QUIT.
    pub fn quit(&mut self) {
        let host = self.hostname.clone();
        let _ = self.reply(&format!("221 {host} closing connection\r\n"));
    }

    fn reply(&mut self, text: &str) -> io::Result<()> {
        let out = self.conn.get_mut();
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    fn line(&mut self, max: u64) -> io::Result<String> {
        let mut buf = Vec::new();
        let n = (&mut self.conn).take(max).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed without QUIT",
            ));
        }
        Ok(String::from_utf8_lossy(&buf).trim_end().to_owned())
    }

    /// Whether the client has sent more than the command just read.
    fn more_waiting(&mut self) -> bool {
        !self.conn.buffer().is_empty() || self.conn.get_mut().input_pending()
    }

    /// Reads and throws away the `size` octets of a BDAT chunk.
    fn chunk(&mut self, size: u64) -> io::Result<()> {
        let got = io::copy(&mut (&mut self.conn).take(size), &mut io::sink())?;
        if got < size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a BDAT chunk",
            ));
        }
        Ok(())
    }

    /// Runs the dialogue; `banner` sends the 220 greeting first (TLS-on-connect, clear).
    /// Returns `Ok(())` when the client sent QUIT; [`Sink::quit`] or `finish` answers it.
    pub fn run(&mut self, banner: bool) -> io::Result<()> {
        let host = self.hostname.clone();
        if banner {
            self.reply(&format!("220 {host} ESMTP tlsresume\r\n"))?;
        }
        let (mut mail, mut rcpts, mut chunks) = (false, 0usize, false);
        loop {
            let line = self.line(MAX_LINE)?;
            let verb = verb(&line);
            if matches!(verb.as_str(), "MAIL" | "RCPT" | "EHLO") && self.more_waiting() {
                self.pipe.pipelined = true;
            }
            match verb.as_str() {
                "EHLO" => {
                    (mail, rcpts, chunks) = (false, 0, false);
                    let keywords = self.pipe.keywords();
                    self.reply(&format!(
                        "250-{host} Hello\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n{keywords}250-CHUNKING\r\n250 HELP\r\n"
                    ))?;
                }
                "HELO" => {
                    (mail, rcpts, chunks) = (false, 0, false);
                    self.reply(&format!("250 {host} Hello\r\n"))?;
                }
                "MAIL" => {
                    (mail, rcpts, chunks) = (true, 0, false);
                    self.reply("250 OK\r\n")?;
                }
                "RCPT" if mail => {
                    rcpts += 1;
                    self.reply("250 Accepted\r\n")?;
                }
                "RCPT" => self.reply("503 sender not yet given\r\n")?,
                "DATA" if chunks => self.reply("503 DATA after BDAT\r\n")?,
                "DATA" if rcpts > 0 => {
                    self.reply("354 Enter message, ending with \".\" on a line by itself\r\n")?;
                    while self.line(MAX_DATA_LINE)? != "." {}
                    self.messages += 1;
                    (mail, rcpts) = (false, 0);
                    self.reply("250 OK message discarded\r\n")?;
                }
                "DATA" => self.reply("503 valid RCPT command must precede DATA\r\n")?,
                "BDAT" => {
                    let mut words = line.split_whitespace().skip(1);
                    let size = words.next().and_then(|n| n.parse::<u64>().ok());
                    let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
                    let Some(size) = size.filter(|&n| n <= 52_428_800) else {
                        // The chunk's length is unknown: the rest of the stream cannot be
                        // read as commands.
                        self.reply("501 BDAT needs a chunk size of at most 52428800\r\n")?;
                        return Err(io::Error::other("bad BDAT size"));
                    };
                    self.chunk(size)?;
                    if rcpts == 0 {
                        self.reply("503 valid RCPT command must precede BDAT\r\n")?;
                    } else if last {
                        self.messages += 1;
                        (mail, rcpts, chunks) = (false, 0, false);
                        self.reply("250 OK message discarded\r\n")?;
                    } else {
                        chunks = true;
                        self.reply(&format!("250 {size} octets received\r\n"))?;
                    }
                }
                "RSET" => {
                    (mail, rcpts, chunks) = (false, 0, false);
                    self.reply("250 Reset OK\r\n")?;
                }
                "NOOP" => self.reply("250 OK\r\n")?,
                "STARTTLS" if self.tls => self.reply("554 Already in TLS\r\n")?,
                "STARTTLS" => self.reply("502 STARTTLS not offered\r\n")?,
                "QUIT" => return Ok(()),
                _ => self.reply("500 unrecognized command\r\n")?,
            }
        }
    }
}

/// The client's plain-text phase: banner, EHLO, STARTTLS. Returns the host name from the first
/// line of the EHLO reply (Exim's load-balancer name, part of the session cache key).
pub fn client_starttls<S: Read + Write + ?Sized>(
    tcp: &mut S,
    ehlo: &str,
) -> io::Result<Option<String>> {
    read_reply(tcp, "220")?;
    write!(tcp, "EHLO {ehlo}\r\n")?;
    tcp.flush()?;
    let lines = read_reply(tcp, "250")?;
    if !lines.iter().any(|l| {
        l.get(4..)
            .is_some_and(|k| k.trim().eq_ignore_ascii_case("STARTTLS"))
    }) {
        return Err(io::Error::other("the server does not advertise STARTTLS"));
    }
    let lb_name = lines
        .first()
        .and_then(|l| l.get(4..))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned);
    tcp.write_all(b"STARTTLS\r\n")?;
    tcp.flush()?;
    read_reply(tcp, "220")?;
    Ok(lb_name)
}

/// The client's dialogue over TLS: (banner when TLS-on-connect), EHLO, QUIT. Reading the
/// replies also lets TLS 1.3 tickets, sent after the handshake, arrive.
pub fn client_session(tls: &mut dyn TlsStream, banner: bool, ehlo: &str) -> io::Result<()> {
    if banner {
        read_reply(tls, "220")?;
    }
    write!(tls, "EHLO {ehlo}\r\n")?;
    tls.flush()?;
    read_reply(tls, "250")?;
    tls.write_all(b"QUIT\r\n")?;
    tls.flush()?;
    read_reply(tls, "221")?;
    Ok(())
}
