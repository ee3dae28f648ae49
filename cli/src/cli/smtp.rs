//! The SMTP dialogue of `serve` (a sink that accepts mail and discards it) and `probe` (EHLO and
//! QUIT), over TLS-on-connect or STARTTLS, in the shape the scenario engine uses.

use std::io::{self, BufRead, BufReader, Read, Write};

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

/// The server's plain-text phase before STARTTLS: banner, then EHLO (advertising STARTTLS),
/// HELO, NOOP, RSET until STARTTLS. Returns `Ok(true)` when STARTTLS was accepted (the TLS
/// handshake comes next) and `Ok(false)` when the client quit first.
pub fn serve_plain_until_starttls<S: Read + Write + ?Sized>(
    tcp: &mut S,
    hostname: &str,
) -> io::Result<bool> {
    write!(tcp, "220 {hostname} ESMTP tlsresume\r\n")?;
    tcp.flush()?;
    loop {
        let line = read_line_unbuffered(tcp)?;
        match verb(&line).as_str() {
            "EHLO" => write!(
                tcp,
                "250-{hostname} Hello\r\n250-SIZE 52428800\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
            )?,
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

/// The server's SMTP session over TLS: accepts EHLO, HELO, MAIL, RCPT, DATA, RSET, NOOP and
/// discards every message; stops at QUIT (before answering it) or at an error.
#[derive(Debug)]
pub struct Sink {
    conn: BufReader<Box<dyn TlsStream>>,
    hostname: String,
    /// Messages accepted (and discarded) so far.
    pub messages: usize,
}

impl Sink {
    /// A session on an established TLS stream.
    pub fn new(tls: Box<dyn TlsStream>, hostname: &str) -> Self {
        Self {
            conn: BufReader::new(tls),
            hostname: hostname.to_owned(),
            messages: 0,
        }
    }

    /// What the TLS stream reports now.
    pub fn info(&self) -> SessionInfo {
        self.conn.get_ref().info()
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

    /// Runs the dialogue; `banner` sends the 220 greeting first (TLS-on-connect). Returns
    /// `Ok(())` when the client sent QUIT; [`Sink::finish`] answers it.
    pub fn run(&mut self, banner: bool) -> io::Result<()> {
        let host = self.hostname.clone();
        if banner {
            self.reply(&format!("220 {host} ESMTP tlsresume\r\n"))?;
        }
        let (mut mail, mut rcpts) = (false, 0usize);
        loop {
            let line = self.line(MAX_LINE)?;
            match verb(&line).as_str() {
                "EHLO" => {
                    (mail, rcpts) = (false, 0);
                    self.reply(&format!(
                        "250-{host} Hello\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 HELP\r\n"
                    ))?;
                }
                "HELO" => {
                    (mail, rcpts) = (false, 0);
                    self.reply(&format!("250 {host} Hello\r\n"))?;
                }
                "MAIL" => {
                    (mail, rcpts) = (true, 0);
                    self.reply("250 OK\r\n")?;
                }
                "RCPT" if mail => {
                    rcpts += 1;
                    self.reply("250 Accepted\r\n")?;
                }
                "RCPT" => self.reply("503 sender not yet given\r\n")?,
                "DATA" if rcpts > 0 => {
                    self.reply("354 Enter message, ending with \".\" on a line by itself\r\n")?;
                    while self.line(MAX_DATA_LINE)? != "." {}
                    self.messages += 1;
                    (mail, rcpts) = (false, 0);
                    self.reply("250 OK message discarded\r\n")?;
                }
                "DATA" => self.reply("503 valid RCPT command must precede DATA\r\n")?,
                "RSET" => {
                    (mail, rcpts) = (false, 0);
                    self.reply("250 Reset OK\r\n")?;
                }
                "NOOP" => self.reply("250 OK\r\n")?,
                "STARTTLS" => self.reply("554 Already in TLS\r\n")?,
                "QUIT" => return Ok(()),
                _ => self.reply("500 unrecognized command\r\n")?,
            }
        }
    }

    /// Answers QUIT and sends close_notify.
    pub fn finish(mut self) {
        let host = self.hostname.clone();
        let _ = self.reply(&format!("221 {host} closing connection\r\n"));
        let _ = self.conn.get_mut().shutdown();
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
