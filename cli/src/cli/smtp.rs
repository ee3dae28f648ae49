//! The SMTP dialogue of `serve` (a sink that accepts mail and discards it, with RFC 2920
//! pipelining, BDAT and early pipelining) and `probe` (EHLO and QUIT), in clear, over
//! TLS-on-connect or STARTTLS, in the shape the scenario engine uses.
//!
//! What the sink takes from the wire is unambiguous on every path (clear, STARTTLS, TLS):
//! only CR LF . CR LF ends DATA, a command line over 512 octets or with a bare CR or LF is
//! refused whole, a text line over 1 000 octets or a message over SIZE is refused after its
//! end, and what came behind STARTTLS in clear is dropped.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tlsresume::smtp::MAX_COMMAND_LINE;
use tlsresume::{SessionInfo, TlsStream};
pub use tlsresume_compare::smtp::read_reply;

/// The longest text line of a message, CR LF included (RFC 5321 §4.5.3.1.6).
const MAX_TEXT_LINE: usize = 1000;

/// The largest message, advertised with SIZE (RFC 1870) and enforced.
const MAX_MESSAGE: u64 = 52_428_800;

/// The most bytes dropped from behind a STARTTLS command (see [`discard_pending`]).
const MAX_DISCARDED: usize = 64 * 1024;

/// One line as read up to its LF, however long.
#[derive(Debug)]
struct Line {
    /// Its bytes without the line ending; of a line over the limit, only the first ones.
    text: Vec<u8>,
    /// Octets on the wire, the line ending included.
    octets: usize,
    /// It ended in CR LF, not in a bare LF.
    crlf: bool,
    /// A CR not followed by LF is in it.
    bare_cr: bool,
}

impl Line {
    /// Ended in CR LF with no other CR or LF in it (RFC 5321 §2.3.8).
    fn clean(&self) -> bool {
        self.crlf && !self.bare_cr
    }
}

/// Reads one line up to and with its LF, keeping at most `max` octets of it: the rest of an
/// over-long line is read and dropped, so it can never be taken as another line.
fn read_line<R: BufRead + ?Sized>(r: &mut R, max: usize) -> io::Result<Line> {
    let mut line = Line {
        text: Vec::new(),
        octets: 0,
        crlf: false,
        bare_cr: false,
    };
    let mut after_cr = false;
    loop {
        let buf = match r.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            let what = if line.octets == 0 {
                "connection closed without QUIT"
            } else {
                "connection closed inside a line"
            };
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, what));
        }
        let lf = buf.iter().position(|&b| b == b'\n');
        let part = &buf[..lf.unwrap_or(buf.len())];
        for &b in part {
            // Nothing in `part` is an LF: a CR before any of it is a bare one.
            line.bare_cr |= after_cr;
            after_cr = b == b'\r';
        }
        let room = max.saturating_sub(line.text.len()).min(part.len());
        line.text.extend_from_slice(&part[..room]);
        let used = part.len() + usize::from(lf.is_some());
        line.octets += used;
        r.consume(used);
        if lf.is_some() {
            line.crlf = after_cr;
            break;
        }
    }
    if line.crlf && line.octets <= max {
        line.text.pop();
    }
    Ok(line)
}

/// Reads a command line: `Ok(line)`, or `Err` with the reply refusing it. A line over RFC
/// 5321's 512 octets, or with a bare CR or LF, is read to its LF and dropped whole: no part
/// of it runs as a command.
fn read_command<R: BufRead + ?Sized>(r: &mut R) -> io::Result<Result<String, &'static str>> {
    let line = read_line(r, MAX_COMMAND_LINE)?;
    Ok(if line.octets > MAX_COMMAND_LINE {
        Err("500 5.5.2 Line too long (a command line has at most 512 octets with CR LF)\r\n")
    } else if !line.clean() {
        Err("500 5.5.2 Bare CR or LF in a command line (lines end in CR LF)\r\n")
    } else {
        Ok(String::from_utf8_lossy(&line.text).into_owned())
    })
}

/// Why a message is refused, said once its end has been read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// Over [`MAX_MESSAGE`].
    TooBig,
    /// A text line over [`MAX_TEXT_LINE`].
    LongLine,
    /// A bare CR or LF.
    BareNewline,
}

impl Refusal {
    fn reply(self) -> &'static str {
        match self {
            Refusal::TooBig => "552 5.3.4 Message size exceeds the advertised SIZE\r\n",
            Refusal::LongLine => {
                "500 5.5.2 Message refused: a line over 1000 octets with CR LF\r\n"
            }
            Refusal::BareNewline => {
                "554 5.6.0 Message refused: a bare CR or LF (lines end in CR LF)\r\n"
            }
        }
    }
}

/// Reads a message after `354`, up to the one end there is: a `.` line that ends in CR LF and
/// follows a CR LF (RFC 5321 §4.1.1.4). `LF.LF`, `CR.CR`, `LF.CRLF`, `CRLF.LF`, `CR.CRLF` and
/// a `.` at the end of an over-long line are data ("SMTP smuggling", CVE-2023-51764,
/// -51765, -51766), never the end of the message and never the start of commands.
///
/// A message with a bare CR or LF is refused, as Postfix's `smtpd_forbid_bare_newline = yes`
/// does, rather than kept as data: taken, it would carry a smuggling attempt on to any server
/// behind this one that still ends DATA on `LF.LF`. Its size is counted, not stored.
fn read_data<R: BufRead + ?Sized>(r: &mut R) -> io::Result<Option<Refusal>> {
    let mut size = 0u64;
    let mut refusal = None;
    // The DATA command ended in CR LF (a bare one is refused), so a first `.` line ends.
    let mut after_crlf = true;
    loop {
        let line = read_line(r, MAX_TEXT_LINE)?;
        if after_crlf && line.crlf && line.octets == 3 && line.text == b"." {
            break;
        }
        // Octets as the message has them: a stuffed dot is the transfer's, not the message's.
        let stuffed = usize::from(line.text.first() == Some(&b'.'));
        size += (line.octets - stuffed) as u64;
        if line.octets > MAX_TEXT_LINE {
            refusal.get_or_insert(Refusal::LongLine);
        } else if !line.clean() {
            refusal.get_or_insert(Refusal::BareNewline);
        }
        after_crlf = line.crlf;
    }
    Ok(if size > MAX_MESSAGE {
        Some(Refusal::TooBig)
    } else {
        refusal
    })
}

/// The connection before TLS as a `BufRead` that takes from the socket only the bytes
/// consumed (it looks with `peek`, then reads exactly those), so nothing behind the STARTTLS
/// line, the client's TLS handshake, is taken from the TLS library.
struct Exact<'a> {
    tcp: &'a TcpStream,
    peeked: [u8; 1024],
    len: usize,
    /// A failed read in `consume`, which cannot return it, for the next `fill_buf`.
    failed: Option<io::Error>,
}

impl<'a> Exact<'a> {
    fn new(tcp: &'a TcpStream) -> Self {
        Self {
            tcp,
            peeked: [0; 1024],
            len: 0,
            failed: None,
        }
    }
}

impl Read for Exact<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let buf = self.fill_buf()?;
        let n = buf.len().min(out.len());
        out[..n].copy_from_slice(&buf[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Exact<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if self.len == 0 {
            self.len = self.tcp.peek(&mut self.peeked)?;
        }
        Ok(&self.peeked[..self.len])
    }

    fn consume(&mut self, n: usize) {
        let mut taken = [0u8; 1024];
        let n = n.min(self.len);
        if let Err(e) = (&mut &*self.tcp).read_exact(&mut taken[..n]) {
            self.failed = Some(e);
        }
        // What was peeked and not consumed is still the socket's: peeked again next time.
        self.len = 0;
    }
}

/// Reads and drops what the client has sent already, without waiting (at most
/// [`MAX_DISCARDED`] bytes); returns how many.
fn discard_pending(tcp: &TcpStream) -> io::Result<usize> {
    tcp.set_nonblocking(true)?;
    let mut buf = [0u8; 4096];
    let mut dropped = 0;
    let result = loop {
        match (&mut &*tcp).read(&mut buf) {
            Ok(0) => break Ok(dropped),
            Ok(n) => {
                dropped += n;
                if dropped >= MAX_DISCARDED {
                    break Ok(dropped);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(dropped),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    tcp.set_nonblocking(false)?;
    result
}

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
        // `serve` runs its handshakes over a (then disarmed) `Deadline`.
        let tls = self.as_mut();
        if let Some(deadline) = tls.transport_mut::<tlsresume::Deadline<TcpStream>>() {
            return input_within(deadline.get_ref(), Duration::ZERO);
        }
        // `serve --async`: a connection on tokio seen as a blocking stream.
        if let Some(bridge) = tls.transport_mut::<super::serve::on_tokio::Bridge>() {
            return bridge.input_pending();
        }
        tls.transport_mut::<TcpStream>()
            .is_some_and(|tcp| input_within(tcp, Duration::ZERO))
    }
}

/// The server's plain-text phase before STARTTLS: banner, then EHLO (advertising STARTTLS,
/// PIPELINING, and PIPECONNECT when `pipe.offer`), HELO, NOOP, RSET until STARTTLS. Returns
/// `Ok(true)` when STARTTLS was accepted (the TLS handshake comes next) and `Ok(false)` when
/// the client quit first. Nothing of the TLS handshake is read, and anything the client
/// pipelined behind STARTTLS is dropped, not taken as commands under TLS (CVE-2011-0411).
pub fn serve_plain_until_starttls(
    tcp: &mut TcpStream,
    hostname: &str,
    pipe: &mut Pipelining,
) -> io::Result<bool> {
    // Each reply in one write, so it leaves in one segment: several small ones at once may
    // wait a round trip for the client's ACK (the kernel's pacing and congestion control).
    tcp.write_all(format!("220 {hostname} ESMTP tlsresume\r\n").as_bytes())?;
    tcp.flush()?;
    loop {
        let line = match read_command(&mut Exact::new(tcp))? {
            Ok(line) => line,
            Err(refusal) => {
                tcp.write_all(refusal.as_bytes())?;
                tcp.flush()?;
                continue;
            }
        };
        if tcp.input_pending() {
            pipe.pipelined = true;
        }
        match verb(&line).as_str() {
            "EHLO" => {
                let keywords = pipe.keywords();
                tcp.write_all(
                    format!(
                        "250-{hostname} Hello\r\n250-SIZE {MAX_MESSAGE}\r\n{keywords}250 STARTTLS\r\n"
                    )
                    .as_bytes(),
                )?
            }
            "HELO" => tcp.write_all(format!("250 {hostname} Hello\r\n").as_bytes())?,
            "NOOP" | "RSET" => tcp.write_all(b"250 OK\r\n")?,
            "STARTTLS" => {
                // RFC 3207: STARTTLS ends a pipelined group. What came behind it in clear
                // (a man in the middle's injected commands) goes; what comes later still, and
                // is not the client's handshake, fails the handshake: never a command.
                discard_pending(tcp)?;
                tcp.write_all(b"220 TLS go ahead\r\n")?;
                tcp.flush()?;
                return Ok(true);
            }
            "QUIT" => {
                tcp.write_all(format!("221 {hostname} closing connection\r\n").as_bytes())?;
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
        // The transaction: MAIL given, recipients accepted, octets taken by BDAT so far.
        let (mut mail, mut rcpts, mut chunks) = (false, 0usize, None::<u64>);
        loop {
            let line = match read_command(&mut self.conn)? {
                Ok(line) => line,
                Err(refusal) => {
                    self.reply(refusal)?;
                    continue;
                }
            };
            let verb = verb(&line);
            if matches!(verb.as_str(), "MAIL" | "RCPT" | "EHLO") && self.more_waiting() {
                self.pipe.pipelined = true;
            }
            match verb.as_str() {
                "EHLO" => {
                    (mail, rcpts, chunks) = (false, 0, None);
                    let keywords = self.pipe.keywords();
                    self.reply(&format!(
                        "250-{host} Hello\r\n250-SIZE {MAX_MESSAGE}\r\n250-8BITMIME\r\n{keywords}250-CHUNKING\r\n250 HELP\r\n"
                    ))?;
                }
                "HELO" => {
                    (mail, rcpts, chunks) = (false, 0, None);
                    self.reply(&format!("250 {host} Hello\r\n"))?;
                }
                "MAIL" => {
                    (mail, rcpts, chunks) = (true, 0, None);
                    self.reply("250 OK\r\n")?;
                }
                "RCPT" if mail => {
                    rcpts += 1;
                    self.reply("250 Accepted\r\n")?;
                }
                "RCPT" => self.reply("503 sender not yet given\r\n")?,
                "DATA" if chunks.is_some() => self.reply("503 DATA after BDAT\r\n")?,
                "DATA" if rcpts > 0 => {
                    self.reply("354 Enter message, ending with \".\" on a line by itself\r\n")?;
                    let refused = read_data(&mut self.conn)?;
                    (mail, rcpts) = (false, 0);
                    match refused {
                        Some(refusal) => self.reply(refusal.reply())?,
                        None => {
                            self.messages += 1;
                            self.reply("250 OK message discarded\r\n")?;
                        }
                    }
                }
                "DATA" => self.reply("503 valid RCPT command must precede DATA\r\n")?,
                "BDAT" => {
                    let mut words = line.split_whitespace().skip(1);
                    let size = words.next().and_then(|n| n.parse::<u64>().ok());
                    let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
                    let Some(size) = size.filter(|&n| n <= MAX_MESSAGE) else {
                        // The chunk's length is unknown: the rest of the stream cannot be
                        // read as commands.
                        self.reply(&format!(
                            "501 BDAT needs a chunk size of at most {MAX_MESSAGE}\r\n"
                        ))?;
                        return Err(io::Error::other("bad BDAT size"));
                    };
                    self.chunk(size)?;
                    let total = chunks.unwrap_or(0) + size;
                    if rcpts == 0 {
                        self.reply("503 valid RCPT command must precede BDAT\r\n")?;
                    } else if total > MAX_MESSAGE {
                        // Over SIZE: the transaction ends, later chunks of it get 503.
                        (mail, rcpts, chunks) = (false, 0, None);
                        self.reply(Refusal::TooBig.reply())?;
                    } else if last {
                        self.messages += 1;
                        (mail, rcpts, chunks) = (false, 0, None);
                        self.reply("250 OK message discarded\r\n")?;
                    } else {
                        chunks = Some(total);
                        self.reply(&format!("250 {size} octets received\r\n"))?;
                    }
                }
                "RSET" => {
                    (mail, rcpts, chunks) = (false, 0, None);
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
    tcp.write_all(format!("EHLO {ehlo}\r\n").as_bytes())?;
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
    tls.write_all(format!("EHLO {ehlo}\r\n").as_bytes())?;
    tls.flush()?;
    read_reply(tls, "250")?;
    tls.write_all(b"QUIT\r\n")?;
    tls.flush()?;
    read_reply(tls, "221")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `read_data` over `bytes`, with every read buffer size from one byte (a CR and its LF
    /// in different reads) to all at once; the outcome, and what is left unread.
    fn data(bytes: &[u8]) -> (Option<Refusal>, Vec<u8>) {
        let mut outcomes = (1..=bytes.len().max(1)).map(|capacity| {
            let mut r = BufReader::with_capacity(capacity, bytes);
            let refusal = read_data(&mut r).expect("the end of the message");
            let mut rest = Vec::new();
            r.read_to_end(&mut rest).expect("the rest");
            (refusal, rest)
        });
        let first = outcomes.next().expect("one");
        assert!(outcomes.all(|o| o == first), "{first:?}");
        first
    }

    #[test]
    fn data_ends_only_on_crlf_dot_crlf() {
        assert_eq!(data(b".\r\nNOOP\r\n"), (None, b"NOOP\r\n".to_vec()));
        assert_eq!(
            data(b"a\r\n..\r\n.\r\nNOOP\r\n"),
            (None, b"NOOP\r\n".to_vec())
        );
        for form in ["\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r.\r\n"] {
            let message = format!("a{form}MAIL FROM:<x@y>\r\n.\r\nNOOP\r\n");
            assert_eq!(
                data(message.as_bytes()),
                (Some(Refusal::BareNewline), b"NOOP\r\n".to_vec()),
                "{form:?}"
            );
        }
        let long = format!("{}.\r\nRSET\r\n.\r\nNOOP\r\n", "x".repeat(MAX_TEXT_LINE));
        assert_eq!(
            data(long.as_bytes()),
            (Some(Refusal::LongLine), b"NOOP\r\n".to_vec())
        );
        let fits = format!("{}\r\n.\r\n", "x".repeat(MAX_TEXT_LINE - 2));
        assert_eq!(data(fits.as_bytes()), (None, Vec::new()));
    }

    #[test]
    fn command_lines_are_refused_whole() {
        let mut r = BufReader::with_capacity(7, &b"NOOP\r\nRSET\nx\ry\r\nQUIT\r\n"[..]);
        assert_eq!(read_command(&mut r).expect("line"), Ok("NOOP".into()));
        assert!(read_command(&mut r).expect("line").is_err(), "bare LF");
        assert!(read_command(&mut r).expect("line").is_err(), "bare CR");
        assert_eq!(read_command(&mut r).expect("line"), Ok("QUIT".into()));
        let fits = format!("NOOP {}", "x".repeat(MAX_COMMAND_LINE - 7));
        let long = format!("{fits}\r\n{fits}x\r\nQUIT\r\n");
        let mut r = BufReader::with_capacity(64, long.as_bytes());
        assert_eq!(read_command(&mut r).expect("line"), Ok(fits), "512 octets");
        assert!(read_command(&mut r).expect("line").is_err(), "513 octets");
        assert_eq!(read_command(&mut r).expect("line"), Ok("QUIT".into()));
    }
}
