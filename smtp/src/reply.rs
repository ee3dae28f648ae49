//! SMTP replies (RFC 5321 §4.2): the one reply parser of the workspace.
//!
//! Every reader here refuses what a broken or hostile server may send instead of a reply — an
//! overlong line, a code that is not three digits in range, a multi-line reply whose lines
//! carry different codes, a reply the connection ends in the middle of, a reply of endless
//! lines — with a [`ReplyError`] saying which, never a panic and never unbounded memory.

use core::fmt;
use std::io::{self, Read};

/// The longest reply (or command) line accepted, CR LF included. RFC 5321 §4.5.3.1.5 sets 512
/// for reply lines; servers exceed it in practice (long EHLO keywords, verbose rejections), so
/// there is slack, but not without end.
pub const MAX_LINE: usize = 2048;

/// The most lines one reply may have. An EHLO response has a few dozen at most; a server
/// sending continuation lines without end is refused rather than followed.
pub const MAX_REPLY_LINES: usize = 256;

/// One SMTP reply: its code and its lines as received (CR LF removed).
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    /// A reply from its lines as received (`250-…`, …, `250 …`); checks them as the readers do.
    pub fn from_lines<L: AsRef<str>>(lines: &[L]) -> Result<Self, ReplyError> {
        let mut asm = Assembler::default();
        for line in lines {
            if let Some(reply) = asm.push(line.as_ref().as_bytes())? {
                return Ok(reply);
            }
        }
        Err(ReplyError::Closed {
            lines_read: asm.lines.len(),
        })
    }

    /// The three-digit code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The lines as received, code included.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The text of each line, after the code and its separator.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(|l| l.get(4..).unwrap_or(""))
    }

    /// The enhanced status code (RFC 3463) at the start of the first line's text, when the
    /// server gave one whose class matches the reply code's (`5.1.1` in `550 5.1.1 no such
    /// user`).
    pub fn enhanced_status(&self) -> Option<EnhancedStatus> {
        let word = self.texts().next()?.split_ascii_whitespace().next()?;
        let mut parts = word.split('.');
        let mut number = |max: u16| {
            let p = parts.next()?;
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            p.parse::<u16>().ok().filter(|&n| n <= max)
        };
        let class = u8::try_from(number(9)?).ok()?;
        let status = EnhancedStatus {
            class,
            subject: number(999)?,
            detail: number(999)?,
        };
        if parts.next().is_some() || u16::from(class) != self.code / 100 {
            return None;
        }
        Some(status)
    }

    /// 2xx: the command succeeded.
    pub fn is_positive(&self) -> bool {
        self.code / 100 == 2
    }

    /// 3xx: go on (354 after DATA).
    pub fn is_intermediate(&self) -> bool {
        self.code / 100 == 3
    }

    /// 4xx: a temporary failure; the same command may succeed later.
    pub fn is_transient(&self) -> bool {
        self.code / 100 == 4
    }

    /// 5xx: a permanent failure.
    pub fn is_permanent(&self) -> bool {
        self.code / 100 == 5
    }
}

impl fmt::Display for Reply {
    /// The lines joined with ` / `, cut to 300 characters (replies end up in error messages).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joined = self.lines.join(" / ");
        if joined.chars().count() > 300 {
            let cut: String = joined.chars().take(300).collect();
            write!(f, "{cut}…")
        } else {
            f.write_str(&joined)
        }
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply({self})")
    }
}

/// An enhanced status code (RFC 3463): `class.subject.detail`, as `5.1.1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnhancedStatus {
    /// 2 success, 4 persistent transient failure, 5 permanent failure.
    pub class: u8,
    /// What it is about (1 addressing, 2 mailbox, 3 mail system, 4 network and routing, 5
    /// protocol, 6 content, 7 security or policy).
    pub subject: u16,
    /// The detail within the subject.
    pub detail: u16,
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// Why no reply could be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The connection ended before the reply's last line.
    #[error("connection closed by the server ({lines_read} line(s) of the reply read)")]
    Closed {
        /// Complete lines of the unfinished reply read before the end.
        lines_read: usize,
    },
    /// A line longer than [`MAX_LINE`].
    #[error("reply line longer than {MAX_LINE} bytes")]
    LineTooLong,
    /// A line that does not start with a valid code (`2xx`–`5xx`, second digit 0–5) followed
    /// by a space, `-` or the end of the line.
    #[error("not an SMTP reply line: '{0}'")]
    BadLine(String),
    /// The lines of one reply carry different codes.
    #[error("mixed codes in one reply: {first} then {then}")]
    MixedCodes {
        /// The first line's code.
        first: u16,
        /// The differing code.
        then: u16,
    },
    /// More than [`MAX_REPLY_LINES`] lines.
    #[error("reply longer than {MAX_REPLY_LINES} lines")]
    TooManyLines,
    /// Reading failed (a timeout shows here).
    #[error("reading the reply: {0}")]
    Io(#[from] io::Error),
}

impl ReplyError {
    /// A failed read: the socket's own timeout (the OS's "Resource temporarily unavailable")
    /// says that the idle read timeout passed; any other error, the connect's among them
    /// (a connection made by its first write or read), is kept as it is.
    pub(crate) fn read(e: io::Error) -> Self {
        if e.get_ref()
            .is_some_and(|i| i.is::<crate::fastopen::ConnectError>())
        {
            return ReplyError::Io(e);
        }
        ReplyError::Io(tlsresume_core::deadline::idle_timeout(&e, "read").unwrap_or(e))
    }

    /// The error as an [`io::Error`], for callers that speak `io::Result`.
    pub fn into_io(self) -> io::Error {
        match self {
            ReplyError::Io(e) => e,
            ReplyError::Closed { .. } => io::Error::new(io::ErrorKind::UnexpectedEof, self),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// Collects lines into a reply.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    code: Option<u16>,
    lines: Vec<String>,
}

impl Assembler {
    /// Adds one line (CR LF or LF already removed or not); the reply once its last line came.
    pub(crate) fn push(&mut self, raw: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let raw = trim_eol(raw);
        if raw.len() + 2 > MAX_LINE {
            return Err(ReplyError::LineTooLong);
        }
        let text = String::from_utf8_lossy(raw).into_owned();
        let code = parse_code(raw).ok_or_else(|| ReplyError::BadLine(shorten(&text)))?;
        let last = match raw.get(3) {
            None | Some(b' ') => true,
            Some(b'-') => false,
            Some(_) => return Err(ReplyError::BadLine(shorten(&text))),
        };
        match self.code {
            Some(first) if first != code => {
                return Err(ReplyError::MixedCodes { first, then: code })
            }
            _ => self.code = Some(code),
        }
        if self.lines.len() >= MAX_REPLY_LINES {
            return Err(ReplyError::TooManyLines);
        }
        self.lines.push(text);
        if last {
            let lines = std::mem::take(&mut self.lines);
            self.code = None;
            return Ok(Some(Reply { code, lines }));
        }
        Ok(None)
    }

    pub(crate) fn lines_read(&self) -> usize {
        self.lines.len()
    }
}

fn trim_eol(raw: &[u8]) -> &[u8] {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    raw.strip_suffix(b"\r").unwrap_or(raw)
}

fn parse_code(line: &[u8]) -> Option<u16> {
    let [a, b, c] = *line.get(..3)? else {
        return None;
    };
    if !(b'2'..=b'5').contains(&a) || !(b'0'..=b'5').contains(&b) || !c.is_ascii_digit() {
        return None;
    }
    Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
}

fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(80).collect();
    if text.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// Reads one line byte by byte, so nothing after it is consumed (before STARTTLS the bytes
/// after a line belong to the TLS handshake). Returned without CR LF; longer than
/// [`MAX_LINE`] or cut off by the end of the connection is an error.
pub fn read_line_unbuffered<R: Read + ?Sized>(r: &mut R) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match r.read(&mut byte) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        line.push(byte[0]);
        if byte[0] == b'\n' {
            return Ok(String::from_utf8_lossy(trim_eol(&line)).into_owned());
        }
        if line.len() >= MAX_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                ReplyError::LineTooLong,
            ));
        }
    }
}

/// Reads one whole reply byte by byte (nothing after it is consumed).
pub fn read_reply_unbuffered<R: Read + ?Sized>(r: &mut R) -> Result<Reply, ReplyError> {
    let mut asm = Assembler::default();
    loop {
        let line = match read_line_unbuffered(r) {
            Ok(line) => line,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(ReplyError::Closed {
                    lines_read: asm.lines_read(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(ReplyError::LineTooLong)
            }
            Err(e) => return Err(ReplyError::read(e)),
        };
        if let Some(reply) = asm.push(line.as_bytes())? {
            return Ok(reply);
        }
    }
}

/// Reads a whole reply byte by byte and checks that its code starts with `code` (`"250"`,
/// `"2"`); returns its lines as received. For callers that speak `io::Result`.
pub fn read_reply_lines<R: Read + ?Sized>(r: &mut R, code: &str) -> io::Result<Vec<String>> {
    let reply = read_reply_unbuffered(r).map_err(ReplyError::into_io)?;
    if !reply.code().to_string().starts_with(code) {
        return Err(io::Error::other(format!(
            "expected an SMTP {code} reply, got '{reply}'"
        )));
    }
    Ok(reply.lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_multiline_replies_and_stops_at_the_last_line() {
        let mut input: &[u8] = b"250-mx hello\r\n250 STARTTLS\r\nTLS bytes";
        let reply = read_reply_unbuffered(&mut input).expect("reply");
        assert_eq!(reply.code(), 250);
        assert_eq!(reply.lines(), ["250-mx hello", "250 STARTTLS"]);
        assert_eq!(reply.texts().collect::<Vec<_>>(), ["mx hello", "STARTTLS"]);
        assert_eq!(input, b"TLS bytes", "nothing after the reply is consumed");
        let mut bare: &[u8] = b"221\n";
        assert_eq!(
            read_reply_unbuffered(&mut bare).expect("code only").code(),
            221
        );
    }

    #[test]
    fn enhanced_status_codes() {
        let reply = |line: &str| Reply::from_lines(&[line]).expect("a reply");
        let status = reply("550 5.1.1 no such user").enhanced_status();
        assert_eq!(status.map(|s| s.to_string()).as_deref(), Some("5.1.1"));
        assert_eq!(
            reply("451 4.3.0 try later").enhanced_status(),
            Some(EnhancedStatus {
                class: 4,
                subject: 3,
                detail: 0
            })
        );
        for none in [
            "550 no such user",
            "550 4.1.1 wrong class",
            "250 2.0",
            "250 1.2.3.4",
            "250",
        ] {
            assert_eq!(reply(none).enhanced_status(), None, "{none}");
        }
    }

    #[test]
    fn refuses_garbage() {
        let cases: [(&[u8], &str); 7] = [
            (b"HTTP/1.1 400 Bad Request\r\n", "not an SMTP reply"),
            (b"250-mx\r\n550 no\r\n", "mixed codes"),
            (b"250-partial", "closed"),
            (b"250-one\r\n", "closed"),
            (b"699 nine\r\n", "not an SMTP reply"),
            (b"2500 four digits\r\n", "not an SMTP reply"),
            (b"", "closed"),
        ];
        for (input, what) in cases {
            let mut r = input;
            let err = read_reply_unbuffered(&mut r).expect_err("garbage");
            assert!(err.to_string().contains(what), "{input:?}: {err}");
        }
        let long = [b"250 ".as_slice(), &[b'x'; 5000], b"\r\n"].concat();
        assert!(matches!(
            read_reply_unbuffered(&mut long.as_slice()),
            Err(ReplyError::LineTooLong)
        ));
        let endless: Vec<u8> = b"250-x\r\n".repeat(MAX_REPLY_LINES + 1);
        assert!(matches!(
            read_reply_unbuffered(&mut endless.as_slice()),
            Err(ReplyError::TooManyLines)
        ));
    }

    #[test]
    fn line_reader_keeps_its_old_contract() {
        let mut input: &[u8] = b"250-mx hello\r\n250 STARTTLS\r\nrest";
        let lines = read_reply_lines(&mut input, "250").expect("reply");
        assert_eq!(lines, ["250-mx hello", "250 STARTTLS"]);
        assert_eq!(input, b"rest");
        let mut bad: &[u8] = b"554 no\r\n";
        assert!(read_reply_lines(&mut bad, "250").is_err());
        let mut eof: &[u8] = b"250-partial";
        let err = read_reply_lines(&mut eof, "250").expect_err("eof");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = read_reply_unbuffered(&mut bytes.as_slice());
        }
    }
}
