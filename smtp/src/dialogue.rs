//! The client's whole dialogue without I/O: banner, EHLO (from the cache before the banner
//! when early pipelining is allowed, and the fallback when the cache was wrong), STARTTLS and
//! the point where the front runs the TLS handshake, then one transaction per message (MAIL,
//! RCPT…, DATA or BDAT, the content, RSET between messages, pipelined when the server offers
//! it) and QUIT.
//!
//! A [`Dialogue`] is driven by a front: it asks for the next [`Step`] (bytes to write, a read
//! within a deadline, the TLS handshake, the next piece of a streamed body, or the end), and
//! is told what came of it ([`Dialogue::received`], [`Dialogue::upgraded`],
//! [`Dialogue::body`]…). [`Dialogue::finish`] gives what the connection did. The blocking
//! [`Client`](crate::Client) is [`drive`] over a `Read + Write`; the tokio client
//! (`tokio::Client`, feature `tokio`) is the same loop over `AsyncRead + AsyncWrite`.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tlsresume_core::deadline::deadline_passed;
use tlsresume_core::SessionInfo;

use crate::auth::{AuthClient, AuthError, Credentials, Mechanism};
use crate::body::{dot_stuff, normalise, Encoder};
use crate::client::{ClientConfig, Delivery, Message, Start, UpgradeContext};
use crate::ehlo::{EhloEntry, EhloFeatures, EhloKey, EhloResponse, Observed, Phase, Verdict};
use crate::error::{ErrorClass, SendError, Stage};
use crate::extensions::{self, Body, ParameterError, Parameters};
use crate::fastopen::FastOpen;
use crate::reply::{Assembler, Reply, ReplyError, MAX_LINE};

/// What the front does next.
#[derive(Debug)]
pub enum Step {
    /// Write these bytes (all of them) and flush; report a failure with
    /// [`Dialogue::write_failed`].
    Write(Vec<u8>),
    /// Read what the server sends and give it to [`Dialogue::received`]; when `until` passes
    /// first, call [`Dialogue::timed_out`] instead (the deadline of the whole reply awaited).
    Read {
        /// When the reply awaited must be complete.
        until: Option<Instant>,
    },
    /// Run the TLS handshake over the connection (nothing is left unread or unsent) with
    /// [`Dialogue::upgrade_context`], then call [`Dialogue::upgraded`].
    StartTls,
    /// Read the next piece of the streamed content and give it to [`Dialogue::body`] (an
    /// empty piece is its end).
    Body,
    /// The dialogue is over: call [`Dialogue::finish`].
    Done,
}

/// Which reply is awaited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Banner,
    Ehlo {
        early: bool,
    },
    Helo,
    StartTls,
    /// A reply in the AUTH exchange.
    Auth,
    Rset,
    Mail,
    Rcpt(usize),
    /// DATA's 354, or BDAT's reply.
    Data,
    /// The reply to the end of the content.
    Final,
    Quit,
    /// Owed after a failure: read and thrown away.
    Discard,
}

/// What comes when every awaited reply is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Nothing,
    Message(usize),
    Done,
}

/// Where the dialogue is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Replies,
    Upgrade,
    Body,
    Done,
}

/// How a transaction goes; built by [`plan`] from the server's features and the message.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) pipelining: bool,
    pub(crate) chunking: bool,
    /// The message's size as declared with SIZE (RFC 1870), when known.
    pub(crate) size: Option<u64>,
    /// The content, ready for the wire (dot-stuffed for DATA; empty when streamed).
    pub(crate) body: Vec<u8>,
    pub(crate) mail: String,
    /// (recipient, its RCPT command)
    pub(crate) rcpts: Vec<(String, String)>,
    /// The extensions' parameters in `mail` and `rcpts`.
    pub(crate) parameters: Parameters,
}

impl Plan {
    /// Replies the commands get up to DATA's 354 (or BDAT's final reply).
    fn replies(&self) -> usize {
        self.rcpts.len() + 2
    }

    /// DATA, or BDAT with the content.
    fn data(&self, out: &mut Vec<u8>) {
        if self.chunking {
            line(out, &format!("BDAT {} LAST", self.body.len()));
            out.extend_from_slice(&self.body);
        } else {
            line(out, "DATA");
        }
    }

    /// MAIL, RCPT…, DATA (or BDAT and the content) at once. RFC 2920: DATA and BDAT end a
    /// group; nothing may follow DATA before its 354.
    fn all(&self, out: &mut Vec<u8>, sent: &mut Vec<&'static str>) {
        line(out, &self.mail);
        sent.push("MAIL");
        for (_, cmd) in &self.rcpts {
            line(out, cmd);
            sent.push("RCPT");
        }
        self.data(out);
        sent.push(if self.chunking { "BDAT" } else { "DATA" });
    }
}

fn line(out: &mut Vec<u8>, command: &str) {
    out.extend_from_slice(command.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The transaction of a message for a server offering `features`. `streamed`: the content
/// comes from a reader (`Some(declared size)`), sent with DATA (BDAT needs each chunk's size
/// before it). `Err`: the server cannot take the message as it is ([`ParameterError`]), and
/// nothing of it is sent.
pub(crate) fn plan(
    features: EhloFeatures,
    message: &Message,
    chunking: bool,
    streamed: Option<Option<u64>>,
) -> Result<Plan, SendError> {
    let chunking = chunking && features.contains(EhloFeatures::CHUNKING) && streamed.is_none();
    let (size, body) = match streamed {
        Some(declared) => (declared, Vec::new()),
        None if chunking => {
            let body = normalise(&message.content);
            (Some(body.len() as u64), body)
        }
        None => {
            // RFC 1870: the size declared is the message's, line endings as CR LF, unstuffed.
            let size = normalise(&message.content).len() as u64;
            (Some(size), dot_stuff(&message.content))
        }
    };
    let kind = if streamed.is_some() {
        Body::Unknown
    } else {
        Body::of(&message.content)
    };
    let parameters = extensions::parameters(message, kind, size, features).map_err(unsendable)?;
    Ok(Plan {
        pipelining: features.contains(EhloFeatures::PIPELINING),
        chunking,
        size,
        body,
        mail: format!("MAIL FROM:<{}>{}", message.mail_from, parameters.mail),
        rcpts: message
            .rcpt_to
            .iter()
            .zip(&parameters.rcpt)
            .map(|(r, p)| (r.clone(), format!("RCPT TO:<{r}>{p}")))
            .collect(),
        parameters,
    })
}

/// A message the server cannot take as it is ([`ParameterError`]): refused unsent, for good;
/// an address that needs SMTPUTF8 is named as the envelope's field.
fn unsendable(e: ParameterError) -> SendError {
    let (stage, envelope) = match e {
        ParameterError::NeedsSmtpUtf8(field) => (
            match field {
                crate::EnvelopeField::MailFrom => Stage::Mail,
                _ => Stage::Rcpt,
            },
            Some(crate::EnvelopeError {
                field,
                problem: crate::AddressError::NonAscii,
            }),
        ),
        _ => (Stage::Mail, None),
    };
    let mut out = SendError::new(stage, ErrorClass::Permanent, format!("not sent: {e}"));
    out.envelope = envelope;
    out.caused_by(e)
}

/// A failed AUTH: the server's refusal (535 permanent, 454 temporary), or the client's own
/// (no TLS, no common mechanism, a reply out of place).
fn auth_failed(e: AuthError) -> SendError {
    match e {
        AuthError::Refused(reply) => SendError::refused(Stage::Auth, reply),
        e => SendError::new(Stage::Auth, ErrorClass::Protocol, e.to_string()).caused_by(e),
    }
}

/// What one message's transaction did.
#[derive(Debug, Default)]
struct PerMessage {
    waits_before_data: u32,
    time_to_data: Duration,
    time_to_reply: Duration,
    pipelining: bool,
    chunking: bool,
    parameters: Parameters,
    accepted: Vec<String>,
    rejected: Vec<(String, Reply)>,
}

/// One message's transaction that went through.
#[derive(Debug)]
struct Sent {
    reply: Reply,
    waits: u32,
    report: PerMessage,
}

/// The transaction under way.
#[derive(Debug)]
struct Tx {
    index: usize,
    plan: Plan,
    per: PerMessage,
    /// The refusal that decides a failure when every recipient is refused (a 4xx among 5xx
    /// makes it temporary).
    worst: Option<Reply>,
}

/// The client's dialogue over one connection, without I/O. See the [module](self).
///
/// ```
/// use std::time::Instant;
/// use tlsresume_smtp::dialogue::{Dialogue, Step};
/// use tlsresume_smtp::{ClientConfig, Message, Start};
///
/// let config = ClientConfig::new("client.example")?;
/// let message = Message::new("a@example.net", ["b@example.org"], "hi\n.\n");
/// let peer = "192.0.2.1:25".parse()?;
/// let at = (None, Instant::now());
/// let mut d = Dialogue::new(&config, (peer, None), Start::Clear, false, vec![message], at);
/// let mut wire = Vec::new();
/// let server: [&[u8]; 5] = [
///     b"220 mx ESMTP\r\n",
///     b"250-mx.example.org\r\n250 PIPELINING\r\n",
///     b"250 ok\r\n250 ok\r\n354 go on\r\n",
///     b"250 queued\r\n",
///     b"221 bye\r\n",
/// ];
/// for bytes in server {
///     while let Step::Write(out) = d.step() {
///         wire.extend(out);
///     }
///     d.received(Ok(bytes));
/// }
/// assert!(matches!(d.step(), Step::Done));
/// let wire = String::from_utf8_lossy(&wire);
/// assert!(wire.contains("MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"));
/// assert!(wire.contains("hi\r\n..\r\n.\r\nQUIT\r\n"), "CR LF and dot-stuffed");
/// let sent = d.finish(None)?;
/// assert_eq!(sent[0].as_ref().map(|d| d.waits_before_data).ok(), Some(3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Dialogue {
    helo: String,
    chunking: bool,
    command_deadline: Duration,
    message_deadline: Duration,
    cache: crate::ehlo::EhloCache,
    key: EhloKey,
    peer: SocketAddr,
    peer_name: Option<String>,
    willing: bool,
    cached: Option<EhloEntry>,
    start: Start,
    phase: Phase,
    /// STARTTLS is wanted and not yet done.
    starttls: bool,
    messages: Vec<Message>,
    /// The content comes from the front ([`Step::Body`]), with its declared size.
    streamed: Option<Option<u64>>,
    started: Instant,

    out: Vec<u8>,
    rbuf: Vec<u8>,
    asm: Assembler,
    awaited: VecDeque<Want>,
    until: Option<Instant>,
    owes_wait: bool,
    waits: u32,
    state: State,
    next: Next,

    /// The first message's plan, its commands sent early.
    early_plan: Option<Plan>,
    /// Replies owed to the early flight beyond those awaited in the opening.
    owed_early: usize,
    /// STARTTLS was sent early, behind EHLO.
    early_starttls: bool,
    ehlo: Option<EhloResponse>,
    sent_early: Vec<&'static str>,
    sent_early_tls: Vec<&'static str>,
    tls: bool,
    cache_report: Vec<(Phase, Verdict)>,
    /// The cache disagreed with the server on an early connection: failures are temporary.
    mismatch: bool,
    /// PIPECONNECT was withdrawn: no more early pipelining on this connection.
    early_off: bool,
    /// The server waits for content that will not come: nothing more goes over it.
    broken: bool,
    /// Where the connection was lost: nothing more is sent.
    lost: Option<Stage>,
    /// The connection failed before any message could go.
    fatal: Option<SendError>,
    tx: Option<Tx>,
    encoder: Option<Encoder>,
    results: Vec<Result<Sent, SendError>>,
    /// AUTH's credentials ([`ClientConfig::auth`]).
    auth: Option<Credentials>,
    /// The AUTH exchange under way.
    auth_client: Option<AuthClient>,
    /// The mechanism AUTH succeeded with.
    authenticated: Option<Mechanism>,
}

impl Dialogue {
    /// The dialogue of a connection to `peer` (its host name `peer_name` when known) that
    /// starts as `start`, sends `messages` (their envelopes checked already:
    /// [`Message::check`]) and, with `starttls`, requires STARTTLS. `streamed`: the one
    /// message's content comes from the front ([`Step::Body`]), with this declared size.
    /// `started`: when the attempt began (for [`Delivery::time_to_data`]).
    pub fn new(
        config: &ClientConfig,
        (peer, peer_name): (SocketAddr, Option<&str>),
        start: Start,
        starttls: bool,
        messages: Vec<Message>,
        (streamed, started): (Option<Option<u64>>, Instant),
    ) -> Self {
        let key = EhloKey::new(peer);
        let willing = config.hosts_pipe_connect.matches(peer.ip(), peer_name);
        // A store that fails is a cache miss, not a failed delivery.
        let cached = if willing {
            config.ehlo_cache.lookup(&key).ok().flatten()
        } else {
            None
        };
        let phase = match start {
            Start::Clear => Phase::Clear,
            Start::TlsOnConnect => Phase::Tls,
        };
        let mut d = Self {
            helo: config.helo_name().to_owned(),
            chunking: config.chunking,
            command_deadline: config.deadlines.command,
            message_deadline: config.deadlines.message,
            cache: config.ehlo_cache.clone(),
            key,
            peer,
            peer_name: peer_name.map(str::to_owned),
            willing,
            cached,
            start,
            phase,
            starttls: starttls && start == Start::Clear,
            messages,
            streamed,
            started,
            out: Vec::new(),
            rbuf: Vec::new(),
            asm: Assembler::default(),
            awaited: VecDeque::new(),
            until: None,
            owes_wait: true,
            waits: 0,
            state: State::Replies,
            next: Next::Nothing,
            early_plan: None,
            owed_early: 0,
            early_starttls: false,
            ehlo: None,
            sent_early: Vec::new(),
            sent_early_tls: Vec::new(),
            tls: false,
            cache_report: Vec::new(),
            mismatch: false,
            early_off: false,
            broken: false,
            lost: None,
            fatal: None,
            tx: None,
            encoder: None,
            results: Vec::new(),
            auth: config.auth.clone(),
            auth_client: None,
            authenticated: None,
        };
        if d.messages.is_empty() {
            d.state = State::Done;
            return d;
        }
        d.open();
        d
    }

    /// The banner, and what goes before it when the cache allows.
    fn open(&mut self) {
        let starttls = self.starttls;
        let early_view = self
            .cached
            .as_ref()
            .and_then(|e| e.view(self.phase))
            .filter(|v| {
                v.permits_early() && (!starttls || v.features.contains(EhloFeatures::STARTTLS))
            })
            .cloned();
        self.awaited.push_back(Want::Banner);
        // A transaction goes early only when it can go as planned.
        let early_plan = match &early_view {
            Some(view) if !starttls => self.early_plan(view.features),
            _ => None,
        };
        if early_view.is_some() && (starttls || early_plan.is_some()) {
            line(&mut self.out, &format!("EHLO {}", self.helo));
            self.awaited.push_back(Want::Ehlo { early: true });
            let mut sent = vec!["EHLO"];
            if starttls {
                line(&mut self.out, "STARTTLS");
                sent.push("STARTTLS");
                self.awaited.push_back(Want::StartTls);
                self.early_starttls = true;
            } else if let Some(p) = early_plan {
                self.early_flight(p, &mut sent);
            }
            self.sent_early = sent;
        }
    }

    /// The first message's plan from the cached features, when it may go early: not ahead of
    /// AUTH, and not when the message cannot go to such a server.
    fn early_plan(&self, features: EhloFeatures) -> Option<Plan> {
        if self.auth.is_some() {
            return None;
        }
        self.plan(features, 0).ok()
    }

    /// The first message's transaction sent from the cached features.
    fn early_flight(&mut self, p: Plan, sent: &mut Vec<&'static str>) {
        p.all(&mut self.out, sent);
        self.owed_early = p.replies();
        self.early_plan = Some(p);
    }

    fn plan(&self, features: EhloFeatures, index: usize) -> Result<Plan, SendError> {
        plan(
            features,
            &self.messages[index],
            self.chunking,
            self.streamed,
        )
    }

    /// What the TLS handshake needs to know of the dialogue (the EHLO host name for the
    /// session cache key).
    pub fn upgrade_context(&self) -> UpgradeContext<'_> {
        UpgradeContext::new(self.peer)
            .peer_name(self.peer_name.as_deref())
            .ehlo_host(
                self.ehlo
                    .as_ref()
                    .map(|e| e.host.as_str())
                    .filter(|h| !h.is_empty()),
            )
    }

    /// How many times the client has waited for the server so far.
    pub fn waits(&self) -> u32 {
        self.waits
    }

    /// What to do next.
    pub fn step(&mut self) -> Step {
        loop {
            if !self.out.is_empty() {
                self.owes_wait = true;
                return Step::Write(std::mem::take(&mut self.out));
            }
            match self.state {
                State::Done => return Step::Done,
                State::Upgrade => return Step::StartTls,
                State::Body => return Step::Body,
                State::Replies => {}
            }
            if self.awaited.is_empty() {
                self.advance();
                continue;
            }
            if self.owes_wait {
                self.waits += 1;
                self.owes_wait = false;
            }
            match self.next_reply() {
                Ok(Some(reply)) => {
                    self.until = None;
                    self.on_reply(reply);
                }
                Ok(None) => {
                    let limit = match self.awaited.front() {
                        Some(Want::Final) => self.message_deadline,
                        Some(Want::Data) if self.tx.as_ref().is_some_and(|t| t.plan.chunking) => {
                            self.message_deadline
                        }
                        _ => self.command_deadline,
                    };
                    let until = *self.until.get_or_insert_with(|| Instant::now() + limit);
                    return Step::Read { until: Some(until) };
                }
                Err(e) => self.on_error(e),
            }
        }
    }

    /// A reply from the bytes read so far, if one is complete.
    fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        loop {
            let Some(end) = self.rbuf.iter().position(|&b| b == b'\n') else {
                if self.rbuf.len() >= MAX_LINE {
                    return Err(ReplyError::LineTooLong);
                }
                return Ok(None);
            };
            let rest = self.rbuf.split_off(end + 1);
            let line = std::mem::replace(&mut self.rbuf, rest);
            if let Some(reply) = self.asm.push(&line)? {
                return Ok(Some(reply));
            }
        }
    }

    /// The outcome of one read: the bytes, the end of the stream (`Ok` of nothing) or the
    /// error (an interrupted read is nothing).
    pub fn received(&mut self, read: io::Result<&[u8]>) {
        match read {
            Ok([]) => {
                let e = ReplyError::Closed {
                    lines_read: self.asm.lines_read(),
                };
                self.on_error(e);
            }
            Ok(bytes) => self.rbuf.extend_from_slice(bytes),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => self.on_error(ReplyError::read(e)),
        }
    }

    /// The deadline of [`Step::Read`] passed.
    pub fn timed_out(&mut self) {
        let what = if self.command_limit() {
            "SMTP reply"
        } else {
            "SMTP final reply"
        };
        self.on_error(ReplyError::Io(deadline_passed(what)));
    }

    fn command_limit(&self) -> bool {
        match self.awaited.front() {
            Some(Want::Final) => false,
            Some(Want::Data) => !self.tx.as_ref().is_some_and(|t| t.plan.chunking),
            _ => true,
        }
    }

    /// A [`Step::Write`] failed.
    pub fn write_failed(&mut self, e: io::Error) {
        if self.state == State::Body || self.encoder.is_some() {
            self.encoder = None;
            self.state = State::Replies;
            self.finish_message(Err(SendError::io(Stage::Content, &e)));
            self.stop_reading();
            return;
        }
        self.on_error(ReplyError::Io(e));
    }

    /// The outcome of [`Step::StartTls`]: `Err` with the handshake's failure
    /// ([`ErrorClass`] as the upgrade classes it).
    pub fn upgraded(&mut self, result: Result<(), SendError>) {
        if self.state != State::Upgrade {
            return;
        }
        self.state = State::Replies;
        self.starttls = false;
        if let Err(e) = result {
            self.fail(e);
            self.stop_reading();
            return;
        }
        self.tls = true;
        self.phase = Phase::Tls;
        let view = self
            .cached
            .as_ref()
            .and_then(|e| e.view(Phase::Tls))
            .filter(|v| v.permits_early() && !self.early_off)
            .cloned();
        let early_plan = view.and_then(|v| self.early_plan(v.features));
        line(&mut self.out, &format!("EHLO {}", self.helo));
        self.awaited.push_back(Want::Ehlo {
            early: early_plan.is_some(),
        });
        if let Some(p) = early_plan {
            let mut sent = vec!["EHLO"];
            self.early_flight(p, &mut sent);
            self.sent_early_tls = sent;
        }
    }

    /// The TLS handshake failed with `e`, of the class `classify` gives it: the end of the
    /// dialogue, its outcome ([`finish`](Self::finish)).
    pub fn handshake_failed<E: std::error::Error + Send + Sync + 'static>(
        mut self,
        e: E,
        classify: impl FnOnce(&E) -> ErrorClass,
    ) -> Result<Vec<Result<Delivery, SendError>>, SendError> {
        let class = classify(&e);
        self.upgraded(Err(SendError::tls(e, class)));
        self.finish(None)
    }

    /// The next piece of the streamed content ([`Step::Body`]): bytes, its end (`Ok` of
    /// nothing), or the reader's error (an interrupted read is nothing).
    pub fn body(&mut self, piece: io::Result<&[u8]>) {
        if self.state != State::Body {
            return;
        }
        let encoder = self.encoder.get_or_insert_with(|| Encoder::new(true));
        match piece {
            Ok([]) => {
                encoder.finish(&mut self.out);
                self.encoder = None;
                line(&mut self.out, ".");
                self.awaited.push_back(Want::Final);
                self.state = State::Replies;
            }
            Ok(bytes)
                if bytes.iter().any(|&b| b > 0x7f)
                    && !self
                        .tx
                        .as_ref()
                        .is_some_and(|t| t.plan.parameters.eight_bit_mime) =>
            {
                self.encoder = None;
                self.state = State::Replies;
                // No end of data goes: the server drops what it has, nothing is delivered.
                self.broken = true;
                self.finish_message(Err(SendError::new(
                    Stage::Data,
                    ErrorClass::Permanent,
                    format!("{}; the connection was dropped before the message's end, so nothing was delivered", ParameterError::NeedsEightBitMime),
                )));
                self.stop_reading();
            }
            Ok(bytes) => encoder.push(bytes, &mut self.out),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                self.encoder = None;
                self.state = State::Replies;
                // No end of data goes: the server drops what it has, nothing is delivered.
                self.broken = true;
                self.finish_message(Err(SendError::new(
                    Stage::Data,
                    ErrorClass::Temporary,
                    format!("reading the message failed: {e}; the connection was dropped before the message's end, so nothing was delivered"),
                )
                .caused_by(e)));
                self.stop_reading();
            }
        }
    }

    /// The connection is not read again.
    fn stop_reading(&mut self) {
        self.awaited.clear();
        self.rbuf.clear();
        self.until = None;
    }

    /// A failure before any message could go.
    fn fail(&mut self, e: SendError) {
        if self.fatal.is_none() {
            self.fatal = Some(e);
        }
        self.next = Next::Done;
    }

    /// Every awaited reply is in: what comes next.
    fn advance(&mut self) {
        match std::mem::replace(&mut self.next, Next::Nothing) {
            Next::Message(i) => self.start_message(i),
            Next::Done | Next::Nothing => self.state = State::Done,
        }
    }

    fn on_error(&mut self, e: ReplyError) {
        let want = self.awaited.pop_front();
        // A line that is no reply leaves the stream readable: after a bad greeting the replies
        // still owed to an early flight are read and thrown away, as after a bad reply.
        let readable = matches!(
            e,
            ReplyError::BadLine(_) | ReplyError::MixedCodes { .. } | ReplyError::TooManyLines
        );
        if readable {
            self.asm = Assembler::default();
        }
        let greeting = matches!(want, Some(Want::Banner | Want::Ehlo { .. }));
        match want {
            Some(Want::Banner) => {
                self.bad_greeting(Observed::BadBanner);
                self.fail(SendError::read(Stage::Banner, e));
            }
            Some(Want::Ehlo { .. }) => {
                self.bad_greeting(Observed::BadEhlo);
                self.fail(SendError::read(Stage::Ehlo, e));
            }
            Some(Want::Helo) => self.fail(SendError::read(Stage::Ehlo, e)),
            Some(Want::StartTls) => self.fail(SendError::read(Stage::StartTls, e)),
            Some(Want::Auth) => self.fail(SendError::read(Stage::Auth, e)),
            Some(Want::Rset) => self.finish_message(Err(SendError::read(Stage::Mail, e))),
            Some(Want::Mail) => self.finish_message(Err(SendError::read(Stage::Mail, e))),
            Some(Want::Rcpt(_)) => self.finish_message(Err(SendError::read(Stage::Rcpt, e))),
            Some(Want::Data) => {
                let stage = match &self.tx {
                    Some(t) if t.plan.chunking => Stage::Content,
                    _ => Stage::Data,
                };
                self.finish_message(Err(SendError::read(stage, e)));
            }
            Some(Want::Final) => self.finish_message(Err(SendError::read(Stage::Content, e))),
            Some(Want::Discard) if self.fatal.is_none() => {
                self.lost.get_or_insert(Stage::Mail);
            }
            Some(Want::Discard | Want::Quit) | None => {}
        }
        if readable && greeting {
            return;
        }
        // Nothing more is read from a connection that failed.
        self.stop_reading();
        if self.fatal.is_none() && self.lost.is_none() {
            self.lost = Some(Stage::Mail);
        }
    }

    fn on_reply(&mut self, reply: Reply) {
        let Some(want) = self.awaited.pop_front() else {
            return;
        };
        match want {
            Want::Banner if reply.code() == 220 => {
                if self.sent_early.is_empty() {
                    line(&mut self.out, &format!("EHLO {}", self.helo));
                    self.awaited.push_back(Want::Ehlo { early: false });
                }
            }
            Want::Banner => {
                self.bad_greeting(Observed::BadBanner);
                self.fail(SendError::refused(Stage::Banner, reply));
            }
            Want::Ehlo { early } => self.on_ehlo(reply, early),
            Want::Helo => self.on_helo(reply),
            Want::StartTls if reply.code() == 220 => {
                if !self.rbuf.is_empty() {
                    let extra = self.rbuf.len();
                    self.stop_reading();
                    self.fail(SendError::new(
                        Stage::StartTls,
                        ErrorClass::Protocol,
                        format!("the server sent {extra} byte(s) after its 220 to STARTTLS, before TLS (refused: possible STARTTLS response injection)"),
                    ));
                    return;
                }
                self.state = State::Upgrade;
            }
            Want::StartTls => self.fail(SendError::refused(Stage::StartTls, reply)),
            Want::Auth => self.on_auth(reply),
            Want::Rset => {
                if let Some(tx) = &self.tx {
                    if !tx.plan.pipelining {
                        line(&mut self.out, &tx.plan.mail);
                        self.awaited.push_back(Want::Mail);
                    }
                }
            }
            Want::Mail => self.on_mail(reply),
            Want::Rcpt(k) => self.on_rcpt(k, reply),
            Want::Data => self.on_data(reply),
            Want::Final => {
                if !reply.is_positive() {
                    self.finish_message(Err(SendError::refused(Stage::Content, reply)));
                } else {
                    if let Some(tx) = &mut self.tx {
                        tx.per.time_to_reply = self.started.elapsed();
                    }
                    self.finish_message(Ok(reply));
                }
            }
            Want::Quit | Want::Discard => {}
        }
    }

    fn on_ehlo(&mut self, reply: Reply, early: bool) {
        let parsed = if reply.code() == 250 {
            EhloResponse::parse(reply.lines()).ok()
        } else {
            None
        };
        let Some(ehlo) = parsed else {
            self.bad_greeting(Observed::BadEhlo);
            if !early && reply.is_permanent() {
                // Not early: a server that does not know EHLO gets HELO (RFC 5321 §3.2).
                line(&mut self.out, &format!("HELO {}", self.helo));
                self.awaited.push_back(Want::Helo);
                return;
            }
            let mut e = SendError::refused(Stage::Ehlo, reply);
            // Over TLS a bad EHLO reply is a temporary failure (Exim: DEFER).
            if self.phase == Phase::Tls {
                e.soften();
            }
            self.fail(e);
            return;
        };
        if self.willing {
            let verdict = self
                .cache
                .reconcile(
                    &self.key,
                    self.cached.as_ref(),
                    self.phase,
                    Observed::Ehlo(&ehlo),
                )
                .unwrap_or(Verdict::Nothing);
            if early && verdict != Verdict::Keep {
                self.mismatch = true;
            }
            if matches!(verdict, Verdict::Deleted(_)) {
                self.early_off = true;
                self.cached = None;
            } else if matches!(verdict, Verdict::Stored | Verdict::Rewritten) {
                self.cached = self.cache.lookup(&self.key).ok().flatten();
            }
            self.cache_report.push((self.phase, verdict));
        }
        self.after_ehlo(ehlo);
    }

    fn on_helo(&mut self, reply: Reply) {
        if reply.code() != 250 {
            self.fail(SendError::refused(Stage::Ehlo, reply));
            return;
        }
        // A HELO reply names the server and offers nothing.
        let first = format!("250 {}", reply.texts().next().unwrap_or(""));
        match EhloResponse::parse(&[first]) {
            Ok(mut ehlo) => {
                ehlo.keywords.clear();
                ehlo.features = EhloFeatures::empty();
                ehlo.auth.clear();
                ehlo.limits = Default::default();
                self.after_ehlo(ehlo);
            }
            Err(e) => self.fail(SendError::new(
                Stage::Ehlo,
                ErrorClass::Protocol,
                e.to_string(),
            )),
        }
    }

    fn after_ehlo(&mut self, ehlo: EhloResponse) {
        let starttls_offered = ehlo.features.contains(EhloFeatures::STARTTLS);
        self.ehlo = Some(ehlo);
        if !self.starttls {
            self.start_auth();
            return;
        }
        if self.early_starttls {
            return;
        }
        if !starttls_offered {
            self.fail(SendError::new(
                Stage::StartTls,
                ErrorClass::Protocol,
                "TLS required but the server does not offer STARTTLS",
            ));
            return;
        }
        line(&mut self.out, "STARTTLS");
        self.awaited.push_back(Want::StartTls);
    }

    /// AUTH when credentials are given (refused unsent in clear), then the first message.
    fn start_auth(&mut self) {
        let Some(credentials) = &self.auth else {
            self.next = Next::Message(0);
            return;
        };
        let offered = self.ehlo.as_ref().map(|e| e.auth.as_slice()).unwrap_or(&[]);
        let tls = self.tls || self.start == Start::TlsOnConnect;
        match AuthClient::start(credentials, offered, tls) {
            Ok((client, first)) => {
                line(&mut self.out, &first);
                self.awaited.push_back(Want::Auth);
                self.auth_client = Some(client);
            }
            Err(e) => self.fail(auth_failed(e)),
        }
    }

    fn on_auth(&mut self, reply: Reply) {
        let Some(client) = self.auth_client.as_mut() else {
            return;
        };
        match client.next(&reply) {
            Ok(Some(answer)) => {
                line(&mut self.out, &answer);
                self.awaited.push_back(Want::Auth);
            }
            Ok(None) => {
                self.authenticated = Some(client.mechanism());
                self.auth_client = None;
                self.next = Next::Message(0);
            }
            Err(e) => {
                self.auth_client = None;
                self.fail(auth_failed(e));
            }
        }
    }

    /// A bad banner or EHLO reply: the entry goes, the replies still owed are read and thrown
    /// away (so nothing queued is mistaken for later), as Exim does.
    fn bad_greeting(&mut self, observed: Observed<'_>) {
        if self.willing && self.cached.is_some() {
            let verdict = self
                .cache
                .reconcile(&self.key, self.cached.as_ref(), self.phase, observed)
                .unwrap_or(Verdict::Nothing);
            self.cache_report.push((self.phase, verdict));
            self.cached = None;
        }
        if self.early() {
            // Spoken early to a server that did not greet as the cache said: the retry, with
            // the entry gone, goes the normal way, so this failure is temporary.
            self.mismatch = true;
            let owed = self.awaited.len() + std::mem::take(&mut self.owed_early);
            self.awaited.clear();
            self.awaited
                .extend(std::iter::repeat_n(Want::Discard, owed));
        } else {
            self.awaited.clear();
        }
        self.early_plan = None;
    }

    fn early(&self) -> bool {
        !self.sent_early.is_empty() || !self.sent_early_tls.is_empty()
    }

    /// Message `i`'s transaction: refused unsent when the connection was lost or the message
    /// is over the server's SIZE; RSET first after another message.
    fn start_message(&mut self, i: usize) {
        let Some(features) = self.ehlo.as_ref().map(|e| (e.features, e.size)) else {
            self.state = State::Done;
            return;
        };
        if i >= self.messages.len() {
            if self.lost.is_none() {
                // A polite end, waiting for the reply before closing (RFC 5321 §4.1.1.10: the
                // client SHOULD), so the server has finished with this connection when the
                // next one starts. The messages are the server's already.
                line(&mut self.out, "QUIT");
                self.awaited.push_back(Want::Quit);
            }
            self.next = Next::Done;
            return;
        }
        if let Some(stage) = self.lost {
            self.results.push(Err(SendError::new(
                Stage::Mail,
                ErrorClass::Temporary,
                format!("not sent: the connection was lost at {stage} of an earlier message"),
            )));
            self.next = Next::Message(i + 1);
            return;
        }
        let (features, limit) = features;
        let early = self.early_plan.take();
        self.owed_early = 0;
        let sent = early.is_some();
        let plan = match early.map_or_else(|| self.plan(features, i), Ok) {
            Ok(plan) => plan,
            Err(e) => {
                self.results.push(Err(e));
                self.next = Next::Message(i + 1);
                return;
            }
        };
        if let (Some(limit), Some(size), false) = (limit, plan.size, sent) {
            if size > limit {
                self.results.push(Err(SendError::new(
                    Stage::Mail,
                    ErrorClass::Permanent,
                    format!(
                        "not sent: the message is {size} octets and the server takes at most {limit} (SIZE)"
                    ),
                )));
                self.next = Next::Message(i + 1);
                return;
            }
        }
        if i > 0 {
            line(&mut self.out, "RSET");
            self.awaited.push_back(Want::Rset);
        }
        if plan.pipelining {
            if !sent {
                plan.all(&mut self.out, &mut Vec::new());
            }
            self.awaited.push_back(Want::Mail);
            self.awaited.extend((0..plan.rcpts.len()).map(Want::Rcpt));
            self.awaited.push_back(Want::Data);
        } else if i == 0 {
            line(&mut self.out, &plan.mail);
            self.awaited.push_back(Want::Mail);
        }
        self.tx = Some(Tx {
            index: i,
            per: PerMessage {
                pipelining: plan.pipelining,
                chunking: plan.chunking,
                parameters: plan.parameters.clone(),
                ..PerMessage::default()
            },
            plan,
            worst: None,
        });
    }

    fn on_mail(&mut self, reply: Reply) {
        let Some(tx) = &self.tx else { return };
        if !reply.is_positive() {
            if tx.plan.pipelining {
                let owed = self.awaited.len();
                self.awaited.clear();
                self.awaited
                    .extend(std::iter::repeat_n(Want::Discard, owed));
            }
            self.finish_message(Err(SendError::refused(Stage::Mail, reply)));
            return;
        }
        if !tx.plan.pipelining {
            if let Some((_, cmd)) = tx.plan.rcpts.first() {
                line(&mut self.out, cmd);
                self.awaited.push_back(Want::Rcpt(0));
            }
        }
    }

    fn on_rcpt(&mut self, k: usize, reply: Reply) {
        let Some(tx) = &mut self.tx else { return };
        let rcpt = tx
            .plan
            .rcpts
            .get(k)
            .map(|(r, _)| r.clone())
            .unwrap_or_default();
        if reply.is_positive() {
            tx.per.accepted.push(rcpt);
        } else {
            // A 4xx among 5xx makes the whole refusal temporary.
            if tx
                .worst
                .as_ref()
                .is_none_or(|w| w.is_permanent() && reply.is_transient())
            {
                tx.worst = Some(reply.clone());
            }
            tx.per.rejected.push((rcpt, reply));
        }
        if tx.plan.pipelining {
            return;
        }
        if let Some((_, cmd)) = tx.plan.rcpts.get(k + 1) {
            line(&mut self.out, cmd);
            self.awaited.push_back(Want::Rcpt(k + 1));
            return;
        }
        if tx.per.accepted.is_empty() {
            let e = refused_rcpts(tx.worst.take());
            self.finish_message(Err(e));
            return;
        }
        tx.plan.data(&mut self.out);
        self.awaited.push_back(Want::Data);
    }

    fn on_data(&mut self, reply: Reply) {
        let waits = self.waits;
        let Some(tx) = &mut self.tx else { return };
        if tx.per.accepted.is_empty() {
            // Pipelined, and every recipient refused. A server that still says 354 is left
            // waiting for content that never comes: closing drops it, nothing is delivered,
            // and nothing more can go over this connection.
            self.broken |= reply.code() == 354;
            let e = refused_rcpts(tx.worst.take());
            self.finish_message(Err(e));
            return;
        }
        tx.per.waits_before_data = waits;
        tx.per.time_to_data = self.started.elapsed();
        if tx.plan.chunking {
            if reply.is_positive() {
                tx.per.time_to_reply = self.started.elapsed();
                self.finish_message(Ok(reply));
            } else {
                self.finish_message(Err(SendError::refused(Stage::Content, reply)));
            }
            return;
        }
        if reply.code() != 354 {
            self.finish_message(Err(SendError::refused(Stage::Data, reply)));
            return;
        }
        if self.streamed.is_some() {
            self.state = State::Body;
            return;
        }
        self.out.extend_from_slice(&tx.plan.body);
        line(&mut self.out, ".");
        self.awaited.push_back(Want::Final);
    }

    /// The end of the transaction under way.
    fn finish_message(&mut self, result: Result<Reply, SendError>) {
        let Some(tx) = self.tx.take() else { return };
        self.results.push(match result {
            Ok(reply) => Ok(Sent {
                reply,
                waits: self.waits,
                report: tx.per,
            }),
            Err(e) => {
                if e.reply.is_none() || self.broken {
                    self.lost = Some(e.stage);
                }
                Err(e)
            }
        });
        self.next = Next::Message(tx.index + 1);
    }

    /// A failure as the connection makes it: whether it spoke early, and temporary when the
    /// cache disagreed with the server (the retry goes the normal way).
    fn judged(&self, mut e: SendError) -> SendError {
        e.early = self.early();
        if self.mismatch && !e.is_temporary() {
            e.soften();
            e.detail
                .push_str(" (the server's EHLO response differed from the cached one)");
        }
        e
    }

    /// What the connection did: `Err` when no message could be sent (banner, EHLO,
    /// STARTTLS, TLS), otherwise one result per message. `tls_info`: the TLS session as the
    /// front read it at the end.
    pub fn finish(
        self,
        tls_info: Option<SessionInfo>,
    ) -> Result<Vec<Result<Delivery, SendError>>, SendError> {
        let mut this = self;
        if let Some(e) = this.fatal.take() {
            return Err(this.judged(e));
        }
        let ehlo = this.ehlo.clone().unwrap_or_else(crate::session::empty_ehlo);
        let results = std::mem::take(&mut this.results);
        let mut out = Vec::with_capacity(results.len());
        for (i, sent) in results.into_iter().enumerate() {
            let sent = match sent {
                Ok(sent) => sent,
                Err(e) if i == 0 => {
                    out.push(Err(this.judged(e)));
                    continue;
                }
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            let m = sent.report;
            let first = i == 0;
            out.push(Ok(Delivery {
                sent_early: if first {
                    this.sent_early.clone()
                } else {
                    Vec::new()
                },
                sent_early_tls: if first {
                    this.sent_early_tls.clone()
                } else {
                    Vec::new()
                },
                waits_before_data: m.waits_before_data,
                waits: sent.waits,
                time_to_data: m.time_to_data,
                time_to_reply: m.time_to_reply,
                fast_open: FastOpen::NotTried,
                pipelining: m.pipelining,
                tls: this.tls || this.start == Start::TlsOnConnect,
                chunking: m.chunking,
                parameters: m.parameters,
                auth: this.authenticated,
                cache: this.cache_report.clone(),
                accepted: m.accepted,
                rejected: m.rejected,
                reply: sent.reply,
                ehlo: ehlo.clone(),
                tls_info: tls_info.clone(),
            }));
        }
        Ok(out)
    }
}

fn refused_rcpts(worst: Option<Reply>) -> SendError {
    match worst {
        Some(r) => SendError::refused(Stage::Rcpt, r),
        None => SendError::new(
            Stage::Rcpt,
            ErrorClass::Permanent,
            "every recipient refused",
        ),
    }
}

/// Where [`drive`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pause {
    /// At [`Step::StartTls`]: run the handshake, call [`Dialogue::upgraded`], drive on.
    StartTls,
    /// At [`Step::Done`].
    Done,
}

/// Runs `dialogue` over a blocking `stream` until it needs the TLS handshake or is over;
/// `body` gives a streamed message's content. Each read is bounded by the stream's own
/// timeout; a reply late past its deadline fails at the next read's end.
pub fn drive<S: Read + Write + ?Sized>(
    dialogue: &mut Dialogue,
    stream: &mut S,
    mut body: Option<&mut (dyn Read + '_)>,
) -> Pause {
    let mut buf = [0u8; 4096];
    let mut piece = Vec::new();
    loop {
        match dialogue.step() {
            Step::Write(mut bytes) => {
                if let Err(e) = stream.write_all(&bytes).and_then(|()| stream.flush()) {
                    dialogue.write_failed(e);
                }
                // What went may hold an AUTH response: wiped, not left to the allocator.
                zeroize::Zeroize::zeroize(&mut bytes);
            }
            Step::Read { until } => {
                if until.is_some_and(|u| Instant::now() >= u) {
                    dialogue.timed_out();
                    continue;
                }
                let read = stream.read(&mut buf);
                dialogue.received(read.map(|n| &buf[..n]));
            }
            Step::Body => match body.as_deref_mut() {
                Some(reader) => {
                    piece.resize(64 * 1024, 0);
                    let read = reader.read(&mut piece);
                    dialogue.body(read.map(|n| &piece[..n]));
                }
                None => dialogue.body(Ok(&[])),
            },
            Step::StartTls => return Pause::StartTls,
            Step::Done => return Pause::Done,
        }
    }
}
