//! The server's side of the SMTP dialogue, without I/O: [`ServerSession`] takes the bytes the
//! client sent ([`ServerSession::feed`]) and says what to send back
//! ([`ServerSession::output`]) and where the dialogue stands ([`ServerSession::stop`]).
//! A blocking front ([`drive`]) and a tokio one (`tokio` feature, [`tokio`][tokio-front]) run it
//! over a stream; a server with its own event loop feeds it directly.
//!
//! What it takes from the wire is unambiguous, whatever the transport:
//!
//! - only CR LF . CR LF ends DATA: `LF.LF`, `CR.CR`, `LF.CRLF`, `CRLF.LF`, `CR.CRLF` and a `.`
//!   at the end of an over-long line are data ("SMTP smuggling", CVE-2023-51764, -51765,
//!   -51766), and a message holding a bare CR or LF is refused (as Postfix's
//!   `smtpd_forbid_bare_newline = yes`), so it cannot carry such an attempt on to a server
//!   behind this one;
//! - a command line over 512 octets (RFC 5321 §4.5.3.1.4) or with a bare CR or LF is refused
//!   whole: no part of it runs as a command;
//! - a text line over 1 000 octets (§4.5.3.1.6) or a message over the advertised SIZE refuses
//!   the message once its end has come;
//! - what the client sent behind STARTTLS, in clear, is dropped (CVE-2011-0411): the first
//!   command under TLS is the first one sent under TLS.
//!
//! Memory is bounded: at most one command line is held, and message content is counted, not
//! kept.
// The tokio front is linked with or without its feature (on docs.rs, every feature is on).
//!
#![cfg_attr(feature = "tokio", doc = "[tokio-front]: crate::tokio")]
#![cfg_attr(
    not(feature = "tokio"),
    doc = "[tokio-front]: https://docs.rs/tlsresume-smtp/latest/tlsresume_smtp/tokio/"
)]

use core::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tlsresume_core::deadline::deadline_passed;

use crate::auth::{Authenticator, Mechanism, ServerAuth, ServerStep};
use crate::envelope::MAX_COMMAND_LINE;
use crate::extensions::{MailParameters, Offered, RcptParameters};

/// The longest text line of a message, CR LF included (RFC 5321 §4.5.3.1.6).
pub const MAX_TEXT_LINE: usize = 1000;

/// The SIZE a [`ServerConfig`] advertises and enforces unless told otherwise (50 MiB).
pub const DEFAULT_MAX_MESSAGE: u64 = 52_428_800;

/// The most recipients one transaction takes (RFC 5321 §4.5.3.1.8 asks for at least 100).
pub const MAX_RECIPIENTS: usize = 1000;

/// The most accepted messages a session keeps for [`ServerSession::take_accepted`].
pub const MAX_KEPT: usize = 64;

/// The reply to an address that is not ASCII in a transaction without SMTPUTF8 (RFC 6531
/// §3.6.2).
const NEEDS_SMTPUTF8: &str = "553 5.6.7 An address that is not ASCII needs SMTPUTF8\r\n";

/// The reply a server gives a client that talked before the banner without having been
/// offered PIPECONNECT (Exim's words), before it drops the connection.
pub const SYNC_ERROR: &str = "554 SMTP synchronization error\r\n";

/// The time the server gives the client for each thing it waits for (RFC 5321 §4.5.3.2): the
/// whole of it, however the client paces its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// For a command line, from the moment the server waits for it to its CR LF. Default 5
    /// minutes (the server's timeout of §4.5.3.2.7).
    pub command: Duration,
    /// For each line of message content (or each BDAT chunk). Default 3 minutes (§4.5.3.2.5,
    /// the data block).
    pub data_block: Duration,
    /// For the whole content of one message, from the 354 (or the first BDAT) to the final
    /// dot (or the last chunk). Default 10 minutes (§4.5.3.2.6).
    pub message: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            command: Duration::from_secs(300),
            data_block: Duration::from_secs(180),
            message: Duration::from_secs(600),
        }
    }
}

/// Which of the [`Deadlines`] a wait is under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeadlineKind {
    /// A command line (or a reply, on the client's side).
    Command,
    /// One line of content, or one BDAT chunk.
    DataBlock,
    /// The whole content of a message.
    Message,
}

impl DeadlineKind {
    /// Its name in messages: `command`, `data block`, `message`.
    pub fn name(self) -> &'static str {
        match self {
            DeadlineKind::Command => "command",
            DeadlineKind::DataBlock => "data block",
            DeadlineKind::Message => "message",
        }
    }
}

impl fmt::Display for DeadlineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a server built on the session says to an envelope: each method returns the reply
/// that refuses it (one line, as `550 5.1.1 no such user`; the line ending is added), or
/// `None` to accept. Called as the command is read, so the answer must not wait on I/O.
pub trait Policy: Send + Sync + fmt::Debug {
    /// `MAIL FROM:<path>` (already checked for syntax and SIZE).
    fn mail(&self, _path: &str) -> Option<String> {
        None
    }

    /// `RCPT TO:<path>`.
    fn rcpt(&self, _path: &str) -> Option<String> {
        None
    }
}

/// What the server offers and enforces; fixed per connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The name in the banner and the first line of the EHLO reply.
    pub hostname: String,
    /// SIZE advertised and enforced (RFC 1870). Default [`DEFAULT_MAX_MESSAGE`].
    pub max_message: u64,
    /// Offer PIPELINING (RFC 2920). Default yes.
    pub pipelining: bool,
    /// Offer PIPECONNECT (early pipelining) to this client. Default no.
    pub pipe_connect: bool,
    /// Offer CHUNKING (RFC 3030, BDAT). Default yes.
    pub chunking: bool,
    /// Offer STARTTLS while in clear, and refuse mail commands until TLS is up (530). Default
    /// no: the session runs in clear, or over TLS from the start.
    pub starttls: bool,
    /// The session runs over TLS from its first byte (TLS-on-connect). Default no.
    pub tls: bool,
    /// The per-command deadlines a front applies ([`ServerSession::wait`]).
    pub deadlines: Deadlines,
    /// What it says to envelopes. Default: none, every envelope is accepted (a sink).
    pub policy: Option<Arc<dyn Policy>>,
    /// Offer 8BITMIME (RFC 6152) and take `BODY=7BIT` / `BODY=8BITMIME`. Default yes.
    pub eight_bit_mime: bool,
    /// Offer SMTPUTF8 (RFC 6531) and take addresses that are not ASCII under it (without it
    /// they get 553 5.6.7). Default no.
    pub smtputf8: bool,
    /// Offer DSN (RFC 3461) and take `RET`, `ENVID`, `NOTIFY`, `ORCPT`. Default no.
    pub dsn: bool,
    /// Offer AUTH PLAIN and LOGIN (RFC 4954) under TLS, checked by this. Never offered in
    /// clear (AUTH there gets 538 5.7.11). Default: none, AUTH not offered.
    pub auth: Option<Arc<dyn Authenticator>>,
    /// The AUTH mechanisms offered, in order. Default PLAIN and LOGIN.
    pub auth_mechanisms: Vec<Mechanism>,
}

impl ServerConfig {
    /// A configuration for `hostname` with the defaults above.
    pub fn new(hostname: impl Into<String>) -> Self {
        Self {
            hostname: hostname.into(),
            max_message: DEFAULT_MAX_MESSAGE,
            pipelining: true,
            pipe_connect: false,
            chunking: true,
            starttls: false,
            tls: false,
            deadlines: Deadlines::default(),
            policy: None,
            eight_bit_mime: true,
            smtputf8: false,
            dsn: false,
            auth: None,
            auth_mechanisms: vec![Mechanism::Plain, Mechanism::Login],
        }
    }

    /// With SMTPUTF8 offered (or not).
    pub fn smtputf8(mut self, offer: bool) -> Self {
        self.smtputf8 = offer;
        self
    }

    /// With DSN offered (or not).
    pub fn dsn(mut self, offer: bool) -> Self {
        self.dsn = offer;
        self
    }

    /// With 8BITMIME offered (or not).
    pub fn eight_bit_mime(mut self, offer: bool) -> Self {
        self.eight_bit_mime = offer;
        self
    }

    /// With only these AUTH mechanisms offered.
    pub fn auth_mechanisms(mut self, mechanisms: &[Mechanism]) -> Self {
        self.auth_mechanisms = mechanisms.to_vec();
        self
    }

    /// With AUTH PLAIN and LOGIN offered under TLS, checked by `check`.
    pub fn auth(mut self, check: Arc<dyn Authenticator>) -> Self {
        self.auth = Some(check);
        self
    }

    /// With this policy for envelopes.
    pub fn policy(mut self, policy: Arc<dyn Policy>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// With PIPECONNECT offered (or not).
    pub fn pipe_connect(mut self, offer: bool) -> Self {
        self.pipe_connect = offer;
        self
    }

    /// With STARTTLS offered and required (or not).
    pub fn starttls(mut self, offer: bool) -> Self {
        self.starttls = offer;
        self
    }

    /// Running over TLS from the first byte (or not).
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// With this SIZE.
    pub fn max_message(mut self, octets: u64) -> Self {
        self.max_message = octets;
        self
    }

    /// With these deadlines.
    pub fn deadlines(mut self, deadlines: Deadlines) -> Self {
        self.deadlines = deadlines;
        self
    }
}

/// What the server offered one client and what the client did, for Exim's `L` log field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pipelining {
    /// PIPECONNECT was offered to this client.
    pub offer: bool,
    /// PIPECONNECT was advertised in an EHLO response on this connection.
    pub advertised: bool,
    /// The client's first commands were there before the banner was sent (the front sees
    /// this: [`ServerSession::set_early`]).
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
}

/// Why the dialogue stopped taking input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// STARTTLS was accepted: once the output (its 220) is written, the front runs the TLS
    /// handshake and calls [`ServerSession::tls_started`]. What the client sent behind the
    /// command in clear was dropped (so many octets).
    StartTls {
        /// Octets dropped from behind the STARTTLS line.
        dropped: usize,
    },
    /// QUIT: the 221 is in the output, for the front to send when it is ready (a server may
    /// log the connection first).
    Quit,
    /// The session cannot go on (the output holds the last reply): close the connection.
    Close(&'static str),
}

/// A message the session accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The reverse path, as given between the angle brackets.
    pub mail_from: String,
    /// The forward paths accepted.
    pub rcpt_to: Vec<String>,
    /// The message's size in octets (after dot-unstuffing).
    pub octets: u64,
    /// What `MAIL FROM` declared: SIZE, BODY, SMTPUTF8, DSN's RET and ENVID.
    pub parameters: MailParameters,
    /// What each `RCPT TO` of [`rcpt_to`](Self::rcpt_to) declared (DSN's NOTIFY and ORCPT).
    pub rcpt_parameters: Vec<RcptParameters>,
    /// The user the client authenticated as (AUTH), if it did.
    pub auth: Option<String>,
}

/// What the session waits for now, for the front's deadline ([`ServerSession::wait`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wait {
    /// The deadline that applies.
    pub kind: DeadlineKind,
    /// How long it is.
    pub limit: Duration,
    /// Changes whenever a new wait of this kind starts (a new command, a new line of content,
    /// a new message): the front restarts its clock when it sees another value.
    pub seq: u64,
}

/// A wait's sequence number and when its clock started.
type Started = (u64, Instant);

/// One line as read up to its LF, however long.
#[derive(Debug, Default)]
struct Line {
    /// Its first bytes (at most the limit), the line ending removed when it fits.
    text: Vec<u8>,
    /// Octets on the wire, the line ending included.
    octets: usize,
    /// It ended in CR LF, not in a bare LF.
    crlf: bool,
    /// A CR not followed by LF is in it.
    bare_cr: bool,
    /// The byte before was a CR.
    after_cr: bool,
}

impl Line {
    /// Ended in CR LF with no other CR or LF in it (RFC 5321 §2.3.8).
    fn clean(&self) -> bool {
        self.crlf && !self.bare_cr
    }

    /// Takes bytes of `input` up to and with an LF, keeping at most `max` octets: the rest of
    /// an over-long line is counted and dropped, so it can never be taken as another line.
    /// Returns how many bytes were taken and whether the line is complete.
    fn push(&mut self, input: &[u8], max: usize) -> (usize, bool) {
        let lf = input.iter().position(|&b| b == b'\n');
        let part = &input[..lf.unwrap_or(input.len())];
        for &b in part {
            // Nothing in `part` is an LF: a CR before any of it is a bare one.
            self.bare_cr |= self.after_cr;
            self.after_cr = b == b'\r';
        }
        let room = max.saturating_sub(self.text.len()).min(part.len());
        self.text.extend_from_slice(&part[..room]);
        let used = part.len() + usize::from(lf.is_some());
        self.octets += used;
        if lf.is_some() {
            self.crlf = self.after_cr;
            if self.crlf && self.octets <= max {
                self.text.pop();
            }
        }
        (used, lf.is_some())
    }
}

/// Why a message is refused, said once its end has been read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    TooBig,
    LongLine,
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

/// Where the session is in the dialogue.
#[derive(Debug)]
enum Reading {
    /// Command lines.
    Commands,
    /// Message content after 354.
    Data {
        size: u64,
        refusal: Option<Refusal>,
        /// The line before ended in CR LF (DATA's own line did).
        after_crlf: bool,
    },
    /// The octets of a BDAT chunk.
    Chunk { left: u64, last: bool, size: u64 },
    /// A line of an AUTH exchange.
    Auth(ServerAuth),
    /// Nothing: stopped (see [`Stop`]), or waiting for the TLS handshake.
    Nothing,
}

/// The transaction being built.
#[derive(Debug, Default)]
struct Transaction {
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    params: MailParameters,
    rcpt_params: Vec<RcptParameters>,
    /// Octets taken by BDAT so far, once one came.
    chunked: Option<u64>,
    /// Over SIZE (a BDAT chunk): the rest of the transaction's chunks are refused.
    too_big: bool,
}

/// The server's side of one SMTP connection, without I/O. See the [module](self).
///
/// ```
/// use tlsresume_smtp::server::{ServerConfig, ServerSession, Stop};
///
/// let mut s = ServerSession::new(ServerConfig::new("mx.example.net"));
/// s.greet();
/// s.feed(b"EHLO client.example\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\n");
/// s.feed(b"DATA\r\nSubject: hi\r\n\r\nhello\n.\n.\r\n.\r\nQUIT\r\n");
/// assert_eq!(s.stop(), Some(&Stop::Quit));
/// // A bare LF in the message: refused, and its `LF.LF` did not end it.
/// assert_eq!(s.messages(), 0);
/// let out = String::from_utf8_lossy(s.output());
/// assert!(out.contains("554 5.6.0"), "{out}");
/// ```
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    out: Vec<u8>,
    reading: Reading,
    line: Line,
    tx: Transaction,
    in_tls: bool,
    /// The user AUTH authenticated.
    authenticated: Option<String>,
    stop: Option<Stop>,
    messages: usize,
    accepted: Vec<Accepted>,
    pipe: Pipelining,
    /// Content deadline of the message in progress: its sequence number.
    message_seq: u64,
    seq: u64,
    /// When the waits seen last by [`expired`](Self::expired) started: (seq, at) for the
    /// current wait and for the message.
    clock: Option<(Started, Option<Started>)>,
}

impl ServerSession {
    /// A session with `config`; nothing is sent until [`greet`](Self::greet).
    pub fn new(config: ServerConfig) -> Self {
        let pipe = Pipelining {
            offer: config.pipe_connect,
            ..Pipelining::default()
        };
        Self {
            in_tls: config.tls,
            authenticated: None,
            config,
            out: Vec::new(),
            reading: Reading::Commands,
            line: Line::default(),
            tx: Transaction::default(),
            stop: None,
            messages: 0,
            accepted: Vec::new(),
            pipe,
            message_seq: 0,
            seq: 0,
            clock: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Queues the 220 banner.
    pub fn greet(&mut self) {
        let host = &self.config.hostname;
        self.out
            .extend_from_slice(format!("220 {host} ESMTP tlsresume\r\n").as_bytes());
    }

    /// Notes that the client talked before the banner (the front saw input waiting). Whether
    /// that is allowed is the front's call: [`SYNC_ERROR`] when PIPECONNECT was not offered.
    pub fn set_early(&mut self, early: bool) {
        self.pipe.early = early;
    }

    /// The bytes to send, in order.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Marks the first `n` bytes of the output as sent.
    pub fn consume_output(&mut self, n: usize) {
        self.out.drain(..n.min(self.out.len()));
    }

    /// Takes the whole output.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Why the session stopped taking input, if it did.
    pub fn stop(&self) -> Option<&Stop> {
        self.stop.as_ref()
    }

    /// Whether it takes input now.
    pub fn wants_input(&self) -> bool {
        self.stop.is_none()
    }

    /// Messages accepted so far.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// The messages accepted since the last call: the last [`MAX_KEPT`] at most (a front that
    /// wants every one takes them as they come; a sink never does, and holds no more).
    pub fn take_accepted(&mut self) -> Vec<Accepted> {
        std::mem::take(&mut self.accepted)
    }

    /// What was offered and what the client did (the `L` field).
    pub fn pipelining(&self) -> Pipelining {
        self.pipe
    }

    /// Whether the session runs over TLS.
    pub fn in_tls(&self) -> bool {
        self.in_tls
    }

    /// The TLS handshake after [`Stop::StartTls`] completed: the dialogue starts again under
    /// TLS (RFC 3207: the client's first command is EHLO; no banner).
    pub fn tls_started(&mut self) {
        if matches!(self.stop, Some(Stop::StartTls { .. })) {
            self.stop = None;
            self.in_tls = true;
            // RFC 3207 §4.2: what was learnt before TLS is forgotten.
            self.authenticated = None;
            self.reading = Reading::Commands;
            self.line = Line::default();
            self.tx = Transaction::default();
            self.seq += 1;
        }
    }

    /// What the session waits for now, and under which deadline.
    pub fn wait(&self) -> Wait {
        let d = &self.config.deadlines;
        let (kind, limit) = match self.reading {
            Reading::Data { .. } | Reading::Chunk { .. } => (DeadlineKind::DataBlock, d.data_block),
            Reading::Commands | Reading::Auth(_) | Reading::Nothing => {
                (DeadlineKind::Command, d.command)
            }
        };
        Wait {
            kind,
            limit,
            seq: self.seq,
        }
    }

    /// The deadline of the whole content of the message in progress, when one is.
    pub fn message_wait(&self) -> Option<Wait> {
        let in_message = matches!(self.reading, Reading::Data { .. } | Reading::Chunk { .. })
            || self.tx.chunked.is_some();
        in_message.then_some(Wait {
            kind: DeadlineKind::Message,
            limit: self.config.deadlines.message,
            seq: self.message_seq,
        })
    }

    /// The time left at `now` before a deadline passes, and which: the least of the current
    /// wait's ([`wait`](Self::wait)) and the message's ([`message_wait`](Self::message_wait)).
    /// A wait's clock starts at the first call that sees it, so a front calls this before
    /// each read (a blocking front checks it, a tokio one bounds the read by it).
    pub fn time_left(&mut self, now: Instant) -> (DeadlineKind, Duration) {
        let wait = self.wait();
        let message = self.message_wait();
        let (mut current, mut started_message) = self.clock.unwrap_or(((wait.seq, now), None));
        if current.0 != wait.seq {
            current = (wait.seq, now);
        }
        started_message = match (message, started_message) {
            (None, _) => None,
            (Some(m), Some((seq, at))) if seq == m.seq => Some((seq, at)),
            (Some(m), _) => Some((m.seq, now)),
        };
        self.clock = Some((current, started_message));
        let left = |limit: Duration, since: Instant| limit.saturating_sub(now - since);
        let mut out = (wait.kind, left(wait.limit, current.1));
        if let (Some(m), Some((_, at))) = (message, started_message) {
            let message_left = left(m.limit, at);
            if message_left < out.1 {
                out = (DeadlineKind::Message, message_left);
            }
        }
        out
    }

    /// `Err` (kind `TimedOut`, "the SMTP command deadline passed", or data block, or message)
    /// once a deadline has passed at `now`: a client dribbling its bytes is cut however it
    /// paces them.
    pub fn check_deadline(&mut self, now: Instant) -> io::Result<()> {
        match self.time_left(now) {
            (kind, left) if left.is_zero() => Err(deadline_passed(&format!("SMTP {kind}"))),
            _ => Ok(()),
        }
    }

    /// The error to report when the connection ends where the session stands.
    pub fn closed_error(&self) -> io::Error {
        let what = match self.reading {
            Reading::Chunk { .. } => "connection closed inside a BDAT chunk",
            Reading::Data { .. } => "connection closed inside a message",
            _ if self.line.octets > 0 => "connection closed inside a line",
            _ => "connection closed without QUIT",
        };
        io::Error::new(io::ErrorKind::UnexpectedEof, what)
    }

    /// Takes the outcome of one read from the transport, for a front: the bytes are fed; the
    /// end of the stream and a failed read are errors saying where the dialogue stood (an
    /// interrupted read is nothing).
    pub fn received(&mut self, read: io::Result<&[u8]>) -> io::Result<()> {
        match read {
            Ok([]) => Err(self.closed_error()),
            Ok(bytes) => {
                self.feed(bytes);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Takes bytes the client sent. Replies go to the output; once the session stops
    /// ([`stop`](Self::stop)), the rest is dropped.
    pub fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            if self.stop.is_some() {
                if let Some(Stop::StartTls { dropped }) = &mut self.stop {
                    *dropped += input.len();
                }
                return;
            }
            let used = match self.reading {
                Reading::Commands => {
                    let (used, done) = self.line.push(input, MAX_COMMAND_LINE);
                    if done {
                        let line = std::mem::take(&mut self.line);
                        let more = used < input.len();
                        self.seq += 1;
                        self.command(line, more);
                    }
                    used
                }
                Reading::Auth(_) => {
                    let (used, done) = self.line.push(input, MAX_COMMAND_LINE);
                    if done {
                        let line = std::mem::take(&mut self.line);
                        self.seq += 1;
                        self.auth_line(line);
                    }
                    used
                }
                Reading::Data { .. } => {
                    let (used, done) = self.line.push(input, MAX_TEXT_LINE);
                    if done {
                        let line = std::mem::take(&mut self.line);
                        self.seq += 1;
                        self.data_line(line);
                    }
                    used
                }
                Reading::Chunk { left, last, size } => {
                    let n = usize::try_from(left).map_or(input.len(), |l| l.min(input.len()));
                    let left = left - n as u64;
                    if left == 0 {
                        self.seq += 1;
                        self.chunk_end(last, size);
                    } else {
                        self.reading = Reading::Chunk { left, last, size };
                    }
                    n
                }
                Reading::Nothing => input.len(),
            };
            input = &input[used..];
        }
    }

    fn reply(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    /// A policy's refusal, as one reply line whatever it holds.
    fn refuse(&mut self, reply: &str) {
        let line: String = reply.chars().filter(|c| !c.is_control()).collect();
        let ok = line.len() > 3
            && line.as_bytes()[..3].iter().all(u8::is_ascii_digit)
            && matches!(line.as_bytes()[0], b'4' | b'5');
        self.reply(if ok { &line } else { "550 5.7.1 Refused" });
        self.reply("\r\n");
    }

    fn command(&mut self, line: Line, more: bool) {
        if line.octets > MAX_COMMAND_LINE {
            return self.reply(
                "500 5.5.2 Line too long (a command line has at most 512 octets with CR LF)\r\n",
            );
        }
        if !line.clean() {
            return self
                .reply("500 5.5.2 Bare CR or LF in a command line (lines end in CR LF)\r\n");
        }
        let Ok(text) = String::from_utf8(line.text) else {
            return self.reply("500 5.5.2 A command line that is not UTF-8\r\n");
        };
        let (verb, args) = match text.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim()),
            None => (text.trim().to_ascii_uppercase(), ""),
        };
        if more && matches!(verb.as_str(), "MAIL" | "RCPT" | "EHLO") {
            self.pipe.pipelined = true;
        }
        let host = self.config.hostname.clone();
        let needs_tls = self.config.starttls && !self.in_tls;
        match verb.as_str() {
            "EHLO" => {
                self.tx = Transaction::default();
                let ehlo = self.ehlo_reply();
                self.reply(&ehlo);
            }
            "HELO" => {
                self.tx = Transaction::default();
                self.reply(&format!("250 {host} Hello\r\n"));
            }
            "NOOP" => self.reply("250 OK\r\n"),
            "RSET" => {
                self.tx = Transaction::default();
                self.reply("250 Reset OK\r\n");
            }
            "QUIT" => {
                self.reply(&format!("221 {host} closing connection\r\n"));
                self.stop = Some(Stop::Quit);
                self.reading = Reading::Nothing;
            }
            "STARTTLS" if self.in_tls => self.reply("554 Already in TLS\r\n"),
            "STARTTLS" if !self.config.starttls => self.reply("502 STARTTLS not offered\r\n"),
            "STARTTLS" => {
                // RFC 3207: STARTTLS ends a pipelined group. What came behind it in clear (a
                // man in the middle's commands) goes, counted by `feed`.
                self.reply("220 TLS go ahead\r\n");
                self.stop = Some(Stop::StartTls { dropped: 0 });
                self.reading = Reading::Nothing;
            }
            "AUTH" => self.auth(args),
            _ if needs_tls => self.reply("530 5.7.0 Must issue a STARTTLS command first\r\n"),
            "MAIL" => self.mail(args),
            "RCPT" => self.rcpt(args),
            "DATA" => self.data(),
            "BDAT" => self.bdat(args),
            _ => self.reply("500 unrecognized command\r\n"),
        }
    }

    fn ehlo_reply(&mut self) -> String {
        let c = &self.config;
        let mut lines = vec![format!("{} Hello", c.hostname)];
        lines.push(format!("SIZE {}", c.max_message));
        if c.eight_bit_mime {
            lines.push("8BITMIME".into());
        }
        if c.smtputf8 {
            lines.push("SMTPUTF8".into());
        }
        if c.dsn {
            lines.push("DSN".into());
        }
        if c.auth.is_some() && self.in_tls && !c.auth_mechanisms.is_empty() {
            let names: Vec<&str> = c.auth_mechanisms.iter().map(|m| m.name()).collect();
            lines.push(format!("AUTH {}", names.join(" ")));
        }
        if c.pipelining {
            lines.push("PIPELINING".into());
        }
        if c.pipe_connect {
            self.pipe.advertised = true;
            lines.push("PIPECONNECT".into());
        }
        if c.chunking {
            lines.push("CHUNKING".into());
        }
        if c.starttls && !self.in_tls {
            lines.push("STARTTLS".into());
        }
        lines.push("HELP".into());
        let last = lines.len() - 1;
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
            .collect()
    }

    fn mail(&mut self, args: &str) {
        let Some((path, params)) = path_of(args, "FROM:") else {
            return self.reply("501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
        };
        if self.tx.mail_from.is_some() {
            return self.reply("503 5.5.1 Sender already given\r\n");
        }
        let parameters = match MailParameters::parse(params, self.offered()) {
            Ok(p) => p,
            Err(refusal) => return self.reply(&format!("{refusal}\r\n")),
        };
        if parameters.size.is_some_and(|n| n > self.config.max_message) {
            return self.reply("552 5.3.4 Message size exceeds the advertised SIZE\r\n");
        }
        if !path.is_ascii() && !parameters.smtputf8 {
            return self.reply(NEEDS_SMTPUTF8);
        }
        if let Some(refusal) = self.config.policy.as_ref().and_then(|p| p.mail(path)) {
            return self.refuse(&refusal);
        }
        self.tx = Transaction {
            mail_from: Some(path.to_owned()),
            params: parameters,
            ..Transaction::default()
        };
        self.reply("250 OK\r\n");
    }

    fn rcpt(&mut self, args: &str) {
        if self.tx.mail_from.is_none() {
            return self.reply("503 sender not yet given\r\n");
        }
        let Some((path, params)) = path_of(args, "TO:") else {
            return self.reply("501 5.5.4 Syntax: RCPT TO:<address>\r\n");
        };
        let parameters = match RcptParameters::parse(params, self.offered()) {
            Ok(p) => p,
            Err(refusal) => return self.reply(&format!("{refusal}\r\n")),
        };
        if !path.is_ascii() && !self.tx.params.smtputf8 {
            return self.reply(NEEDS_SMTPUTF8);
        }
        if path.is_empty() {
            return self.reply("501 5.1.3 A recipient is needed\r\n");
        }
        if self.tx.rcpt_to.len() >= MAX_RECIPIENTS {
            return self.reply("452 4.5.3 Too many recipients\r\n");
        }
        if let Some(refusal) = self.config.policy.as_ref().and_then(|p| p.rcpt(path)) {
            return self.refuse(&refusal);
        }
        self.tx.rcpt_to.push(path.to_owned());
        self.tx.rcpt_params.push(parameters);
        self.reply("250 Accepted\r\n");
    }

    fn data(&mut self) {
        if self.tx.chunked.is_some() {
            return self.reply("503 DATA after BDAT\r\n");
        }
        if self.tx.rcpt_to.is_empty() {
            return self.reply("503 valid RCPT command must precede DATA\r\n");
        }
        self.reply("354 Enter message, ending with \".\" on a line by itself\r\n");
        self.message_seq += 1;
        // The DATA command ended in CR LF (a bare one is refused), so a first `.` line ends.
        self.reading = Reading::Data {
            size: 0,
            refusal: None,
            after_crlf: true,
        };
    }

    /// One line of content, up to the one end there is: a `.` line that ends in CR LF and
    /// follows a CR LF (RFC 5321 §4.1.1.4).
    fn data_line(&mut self, line: Line) {
        let Reading::Data {
            size,
            refusal,
            after_crlf,
        } = &mut self.reading
        else {
            return;
        };
        if *after_crlf && line.crlf && line.octets == 3 && line.text == b"." {
            let refusal = if *size > self.config.max_message {
                Some(Refusal::TooBig)
            } else {
                *refusal
            };
            let size = *size;
            self.reading = Reading::Commands;
            return match refusal {
                Some(r) => {
                    self.tx = Transaction::default();
                    self.reply(r.reply());
                }
                None => self.accept(size),
            };
        }
        // Octets as the message has them: a stuffed dot is the transfer's, not the message's.
        let stuffed = usize::from(line.text.first() == Some(&b'.'));
        *size += (line.octets - stuffed) as u64;
        if line.octets > MAX_TEXT_LINE {
            refusal.get_or_insert(Refusal::LongLine);
        } else if !line.clean() {
            refusal.get_or_insert(Refusal::BareNewline);
        }
        *after_crlf = line.crlf;
    }

    fn accept(&mut self, octets: u64) {
        let tx = std::mem::take(&mut self.tx);
        self.messages += 1;
        if self.accepted.len() >= MAX_KEPT {
            self.accepted.remove(0);
        }
        self.accepted.push(Accepted {
            mail_from: tx.mail_from.unwrap_or_default(),
            rcpt_to: tx.rcpt_to,
            octets,
            parameters: tx.params,
            rcpt_parameters: tx.rcpt_params,
            auth: self.authenticated.clone(),
        });
        self.reply("250 OK message discarded\r\n");
    }

    /// The extensions offered now, whose parameters MAIL and RCPT take.
    fn offered(&self) -> Offered {
        let c = &self.config;
        Offered {
            eight_bit_mime: c.eight_bit_mime,
            smtputf8: c.smtputf8,
            dsn: c.dsn,
            auth: c.auth.is_some() && self.in_tls,
        }
    }

    /// The user AUTH authenticated on this connection, if any.
    pub fn authenticated(&self) -> Option<&str> {
        self.authenticated.as_deref()
    }

    fn auth(&mut self, args: &str) {
        let Some(check) = self.config.auth.clone() else {
            return self.reply("502 5.5.1 AUTH not offered\r\n");
        };
        if !self.in_tls {
            return self
                .reply("538 5.7.11 Encryption required for AUTH (offered under TLS only)\r\n");
        }
        if self.authenticated.is_some() {
            return self.reply("503 5.5.1 Already authenticated\r\n");
        }
        if self.tx.mail_from.is_some() {
            return self.reply("503 5.5.1 AUTH not allowed in a mail transaction\r\n");
        }
        let step = ServerAuth::start(args, &self.config.auth_mechanisms, check.as_ref());
        self.auth_step(step);
    }

    fn auth_line(&mut self, line: Line) {
        let Reading::Auth(state) = std::mem::replace(&mut self.reading, Reading::Commands) else {
            return;
        };
        let Some(check) = self.config.auth.clone() else {
            return;
        };
        let text = std::str::from_utf8(&line.text)
            .ok()
            .filter(|_| line.clean());
        match text {
            Some(text) if line.octets <= MAX_COMMAND_LINE => {
                let step = state.line(text, check.as_ref());
                self.auth_step(step);
            }
            _ => self.reply("501 5.5.2 Bad AUTH response line\r\n"),
        }
    }

    fn auth_step(&mut self, step: ServerStep) {
        match step {
            ServerStep::Continue(reply, state) => {
                self.reply(reply);
                self.reading = Reading::Auth(state);
            }
            ServerStep::Done(user) => {
                self.authenticated = Some(user);
                self.reply("235 2.7.0 Authentication succeeded\r\n");
            }
            ServerStep::Refused(reply) => self.reply(reply),
        }
    }

    fn bdat(&mut self, args: &str) {
        let mut words = args.split_ascii_whitespace();
        let size = words.next().and_then(|n| n.parse::<u64>().ok());
        let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
        let Some(size) = size.filter(|&n| n <= self.config.max_message) else {
            // The chunk's length is unknown: the rest of the stream cannot be read as commands.
            let max = self.config.max_message;
            self.reply(&format!("501 BDAT needs a chunk size of at most {max}\r\n"));
            self.stop = Some(Stop::Close("bad BDAT size"));
            self.reading = Reading::Nothing;
            return;
        };
        if self.tx.chunked.is_none() {
            self.message_seq += 1;
        }
        let total = self.tx.chunked.unwrap_or(0) + size;
        self.tx.too_big |= total > self.config.max_message;
        self.tx.chunked = Some(total);
        if size == 0 {
            self.chunk_end(last, 0);
        } else {
            self.reading = Reading::Chunk {
                left: size,
                last,
                size,
            };
        }
    }

    fn chunk_end(&mut self, last: bool, size: u64) {
        self.reading = Reading::Commands;
        let total = self.tx.chunked.unwrap_or(0);
        if self.tx.rcpt_to.is_empty() {
            self.tx.chunked = None;
            self.reply("503 valid RCPT command must precede BDAT\r\n");
        } else if self.tx.too_big {
            // Over SIZE: the transaction ends, later chunks of it get 503.
            self.tx = Transaction::default();
            self.reply(Refusal::TooBig.reply());
        } else if last {
            self.accept(total);
        } else {
            self.reply(&format!("250 {size} octets received\r\n"));
        }
    }
}

/// `<path> params` after `FROM:` or `TO:` (case-insensitive, a space allowed after the colon
/// as many clients send one).
fn path_of<'a>(args: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let head = args.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = args[keyword.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some((&rest[..end], rest[end + 1..].trim()))
}

/// Runs `session` over a blocking `stream` until it stops: writes its output (each batch of
/// replies in one write, so it leaves in one segment), reads what the client sends (at most
/// 4 KiB at a time) and feeds it. It returns with the last replies (the 220 to STARTTLS, the
/// 221 to QUIT, the reply before a close) not yet written: the caller sends them with
/// [`flush`] when it is ready (a server logs the connection first; before a 220 to STARTTLS it
/// may drop what is still in the socket). A connection that ends first is an error saying
/// where it ended.
///
/// The session's [`Deadlines`] are checked before each read and after it
/// ([`ServerSession::check_deadline`]): a read already waiting ends by the stream's own read
/// timeout, so set one (a client is then cut at most one read timeout after a deadline).
pub fn drive<S: Read + Write + ?Sized>(
    session: &mut ServerSession,
    stream: &mut S,
) -> io::Result<Stop> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(stop) = session.stop() {
            return Ok(stop.clone());
        }
        flush(session, stream)?;
        session.check_deadline(Instant::now())?;
        let read = stream.read(&mut buf);
        session.received(read.map(|n| &buf[..n]))?;
        session.check_deadline(Instant::now())?;
    }
}

/// Writes the session's output to `stream` in one write.
pub fn flush<S: Write + ?Sized>(session: &mut ServerSession, stream: &mut S) -> io::Result<()> {
    if !session.output().is_empty() {
        stream.write_all(session.output())?;
        stream.flush()?;
        session.take_output();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The replies to `bytes` (after EHLO, MAIL, RCPT, DATA) fed in pieces of every size from
    /// one byte (a CR and its LF in different pieces) to all at once: one outcome for all.
    fn after_data(bytes: &[u8]) -> (String, usize) {
        let mut outcomes = (1..=bytes.len().max(1)).map(|piece| {
            let mut s = ServerSession::new(ServerConfig::new("mx.test"));
            s.feed(b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
            s.take_output();
            for chunk in bytes.chunks(piece) {
                s.feed(chunk);
            }
            (
                String::from_utf8_lossy(&s.take_output()).into_owned(),
                s.messages(),
            )
        });
        let first = outcomes.next().expect("one");
        assert!(outcomes.all(|o| o == first), "{first:?}");
        first
    }

    #[test]
    fn data_ends_only_on_crlf_dot_crlf() {
        let ok = "250 OK message discarded\r\n250 OK\r\n";
        assert_eq!(after_data(b".\r\nNOOP\r\n"), (ok.into(), 1));
        assert_eq!(after_data(b"a\r\n..\r\n.\r\nNOOP\r\n"), (ok.into(), 1));
        for form in ["\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r.\r\n"] {
            let message = format!("a{form}MAIL FROM:<x@y>\r\n.\r\nNOOP\r\n");
            let (out, n) = after_data(message.as_bytes());
            assert!(out.starts_with("554 5.6.0"), "{form:?}: {out}");
            assert!(out.ends_with("\r\n250 OK\r\n"), "{form:?}: {out}");
            assert_eq!((out.lines().count(), n), (2, 0), "{form:?}: {out}");
        }
        let long = format!("{}.\r\nRSET\r\n.\r\nNOOP\r\n", "x".repeat(MAX_TEXT_LINE));
        let (out, n) = after_data(long.as_bytes());
        assert!(out.starts_with("500 5.5.2 Message refused"), "{out}");
        assert_eq!((out.lines().count(), n), (2, 0), "{out}");
        let fits = format!("{}\r\n.\r\n", "x".repeat(MAX_TEXT_LINE - 2));
        assert_eq!(after_data(fits.as_bytes()).1, 1);
    }

    #[test]
    fn command_lines_are_refused_whole() {
        let fits = format!("NOOP {}", "x".repeat(MAX_COMMAND_LINE - 7));
        let input = format!("NOOP\r\nRSET\nx\ry\r\n{fits}\r\n{fits}x\r\nQUIT\r\nNOOP\r\n");
        for piece in [1, 7, 64, input.len()] {
            let mut s = ServerSession::new(ServerConfig::new("mx.test"));
            for chunk in input.as_bytes().chunks(piece) {
                s.feed(chunk);
            }
            let out = String::from_utf8_lossy(s.output()).into_owned();
            let codes: Vec<&str> = out.lines().map(|l| &l[..3]).collect();
            // NOOP, bare LF, bare CR, 512 octets, 513 octets, QUIT; the NOOP after QUIT is
            // not read.
            assert_eq!(
                codes,
                ["250", "500", "500", "250", "500", "221"],
                "{piece}: {out}"
            );
            assert_eq!(s.stop(), Some(&Stop::Quit));
        }
    }

    #[test]
    fn starttls_drops_what_came_behind_it_and_starts_again() {
        let mut s = ServerSession::new(ServerConfig::new("mx.test").starttls(true));
        s.greet();
        s.feed(b"EHLO c\r\nMAIL FROM:<a@b>\r\nSTARTTLS\r\nRSET\r\nNOOP\r\n");
        let out = String::from_utf8_lossy(&s.take_output()).into_owned();
        assert!(out.contains("250-STARTTLS\r\n"), "{out}");
        assert!(out.contains("530 5.7.0"), "MAIL before TLS: {out}");
        assert!(out.ends_with("220 TLS go ahead\r\n"), "{out}");
        assert_eq!(s.stop(), Some(&Stop::StartTls { dropped: 12 }));
        s.feed(b"more");
        assert_eq!(s.stop(), Some(&Stop::StartTls { dropped: 16 }));
        s.tls_started();
        assert!(s.in_tls());
        s.feed(b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<a@b> SIZE=99999999999\r\n");
        let out = String::from_utf8_lossy(&s.take_output()).into_owned();
        assert!(!out.contains("STARTTLS"), "not offered twice: {out}");
        assert!(out.contains("554 Already in TLS"), "{out}");
        assert!(out.ends_with("552 5.3.4 Message size exceeds the advertised SIZE\r\n"));
    }

    #[test]
    fn bdat_is_counted_against_size() {
        let mut s = ServerSession::new(ServerConfig::new("mx.test").max_message(10));
        s.feed(b"MAIL FROM:<>\r\nRCPT TO:<c@d>\r\nBDAT 6\r\n123456BDAT 4 LAST\r\n1234");
        let out = String::from_utf8_lossy(&s.take_output()).into_owned();
        assert!(out.ends_with("250 6 octets received\r\n250 OK message discarded\r\n"));
        let accepted = s.take_accepted();
        assert_eq!(accepted.len(), 1);
        assert_eq!(
            (accepted[0].mail_from.as_str(), accepted[0].octets),
            ("", 10)
        );
        s.feed(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 6\r\n123456BDAT 5 LAST\r\n12345");
        let out = String::from_utf8_lossy(&s.take_output()).into_owned();
        assert!(out.ends_with("552 5.3.4 Message size exceeds the advertised SIZE\r\n"));
        assert_eq!(s.messages(), 1);
        s.feed(b"BDAT 11\r\n");
        assert_eq!(s.stop(), Some(&Stop::Close("bad BDAT size")));
    }

    #[test]
    fn extensions_are_taken_as_offered() {
        let plain = |config: ServerConfig, input: &[u8]| {
            let mut s = ServerSession::new(config);
            s.feed(input);
            (String::from_utf8_lossy(&s.take_output()).into_owned(), s)
        };
        let (out, _) = plain(
            ServerConfig::new("mx.test"),
            b"EHLO c\r\nMAIL FROM:<a@b> RET=FULL\r\nMAIL FROM:<\xc3\xa9@b>\r\nMAIL FROM:<a@b> SMTPUTF8\r\n",
        );
        assert!(
            !out.contains("DSN") && !out.contains("SMTPUTF8\r\n250-"),
            "{out}"
        );
        let codes: Vec<&str> = out.lines().skip_while(|l| l.starts_with("250")).collect();
        assert_eq!(codes.len(), 3, "{out}");
        assert!(codes[0].starts_with("555 5.5.4"), "{out}");
        assert!(codes[1].starts_with("553 5.6.7"), "{out}");
        assert!(codes[2].starts_with("555 5.5.4"), "{out}");

        let config = ServerConfig::new("mx.test").smtputf8(true).dsn(true);
        let (out, mut s) = plain(
            config,
            "EHLO c\r\nMAIL FROM:<é@b> SMTPUTF8 BODY=8BITMIME RET=HDRS ENVID=x+2By\r\n\
             RCPT TO:<ü@d> NOTIFY=FAILURE,DELAY ORCPT=rfc822;o+20r@d\r\nRCPT TO:<c@d> XX=1\r\n\
             BDAT 1 LAST\r\nx"
                .as_bytes(),
        );
        assert!(out.contains("250-SMTPUTF8\r\n250-DSN\r\n"), "{out}");
        assert!(
            out.contains("555 5.5.4"),
            "the unknown RCPT parameter: {out}"
        );
        let a = s.take_accepted().pop().expect("accepted");
        assert_eq!(a.rcpt_to, ["ü@d"]);
        assert!(a.parameters.smtputf8 && a.parameters.eight_bit_mime);
        assert_eq!(a.parameters.envid.as_deref(), Some("x+y"));
        assert_eq!(a.parameters.ret, Some(crate::Ret::Hdrs));
        let r = &a.rcpt_parameters[0];
        assert_eq!(
            r.notify.map(crate::Notify::value).as_deref(),
            Some("FAILURE,DELAY")
        );
        assert_eq!(r.orcpt, Some(("rfc822".into(), "o r@d".into())));
        assert_eq!(a.auth, None);
    }

    #[test]
    fn auth_only_under_tls_and_only_when_configured() {
        let users = crate::auth::UserTable::new()
            .with(&crate::Credentials::new("user", "pass").expect("credentials"));
        let config = ServerConfig::new("mx.test")
            .starttls(true)
            .auth(Arc::new(users));
        let mut s = ServerSession::new(config);
        s.feed(b"EHLO c\r\nAUTH PLAIN AHVzZXIAcGFzcw==\r\nSTARTTLS\r\n");
        let out = String::from_utf8_lossy(&s.take_output()).into_owned();
        assert!(!out.contains("250-AUTH"), "not offered in clear: {out}");
        assert!(out.contains("538 5.7.11"), "{out}");
        assert_eq!(s.authenticated(), None);
        s.tls_started();
        s.feed(
            b"EHLO c\r\nAUTH LOGIN\r\ndXNlcg==\r\ncGFzcz8=\r\nAUTH PLAIN\r\nAHVzZXIAcGFzcw==\r\n",
        );
        let out = String::from_utf8_lossy(&s.take_output()).into_owned();
        assert!(out.contains("250-AUTH PLAIN LOGIN\r\n"), "{out}");
        assert!(
            out.contains("334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n535 5.7.8"),
            "{out}"
        );
        assert!(
            out.ends_with("334 \r\n235 2.7.0 Authentication succeeded\r\n"),
            "{out}"
        );
        assert_eq!(s.authenticated(), Some("user"));
        s.feed(b"MAIL FROM:<a@b> AUTH=<>\r\nRCPT TO:<c@d>\r\nBDAT 1 LAST\r\nx");
        assert_eq!(s.take_accepted()[0].auth.as_deref(), Some("user"));
        let mut unconfigured = ServerSession::new(ServerConfig::new("mx.test").tls(true));
        unconfigured.feed(b"EHLO c\r\nAUTH PLAIN AHVzZXIAcGFzcw==\r\n");
        let out = String::from_utf8_lossy(unconfigured.output()).into_owned();
        assert!(!out.contains("250-AUTH") && out.ends_with("502 5.5.1 AUTH not offered\r\n"));
    }

    #[test]
    fn a_sink_keeps_only_the_last_messages() {
        let mut s = ServerSession::new(ServerConfig::new("mx.test"));
        for _ in 0..MAX_KEPT + 10 {
            s.feed(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 1 LAST\r\nx");
        }
        assert_eq!(s.messages(), MAX_KEPT + 10);
        assert_eq!(s.take_accepted().len(), MAX_KEPT);
        assert!(s.take_accepted().is_empty());
    }

    #[test]
    fn deadlines_follow_the_dialogue() {
        let mut s = ServerSession::new(ServerConfig::new("mx.test"));
        let first = s.wait();
        assert_eq!(first.kind, DeadlineKind::Command);
        assert_eq!(first.limit, Duration::from_secs(300));
        s.feed(b"MAIL FROM:<a@b>\r\nRC");
        assert_ne!(s.wait().seq, first.seq, "a new command is awaited");
        let partial = s.wait();
        s.feed(b"PT TO:<c@d>\r\nDATA\r\nSubj");
        let data = s.wait();
        assert_eq!(data.kind, DeadlineKind::DataBlock);
        assert_ne!(data.seq, partial.seq);
        let message = s.message_wait().expect("in a message");
        assert_eq!(message.limit, Duration::from_secs(600));
        s.feed(b"ect: x\r\n");
        assert_eq!(
            s.message_wait(),
            Some(message),
            "one deadline for the message"
        );
        s.feed(b".\r\n");
        assert_eq!(s.message_wait(), None);
        assert_eq!(s.wait().kind, DeadlineKind::Command);
    }
}
